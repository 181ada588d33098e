# One-command entry points. `make demo` and `make test` set up .venv themselves on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.tnerf-installed

.PHONY: setup system-deps demo train-head backbone-demo test test-fast test-slow coverage fuzz lint bench results gpu-check gpu-wheels clean-venv

setup: $(STAMP)
	@# optional system packages (libusb-1.0 for open3d, hence ns-export; Chromium for the viewer's browser test): the
	@# command that installs the missing ones; without them everything else works and their tests are skipped
	@python3 tnerf_ns/system_deps.py

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# pyproject.toml states tested ranges; constraints.txt pins this machine's exact versions (served from local disk)
	# torch/torchvision first, the pair nerfstudio 1.1.5 works with
	$(PIP) install --quiet -c constraints.txt torch torchvision
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	# ns-render needs an `ffmpeg` executable: take the one shipped in the imageio-ffmpeg wheel
	ln -sf "$$($(PY) -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" $(VENV)/bin/ffmpeg
	touch $(STAMP)

# Installs the optional system packages that are missing (Debian/Ubuntu: apt-get, as root or through sudo)
system-deps:
	@pkgs="$$(python3 tnerf_ns/system_deps.py --packages)"; \
	if [ -z "$$pkgs" ]; then echo "system-deps: nothing missing"; else \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	echo "system-deps: $$sudo apt-get install -y $$pkgs"; \
	$$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$pkgs; fi

demo: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/demo.py

# The head shipped in tnerf_ns/weights (scene mode's start for vggt-small): generated scenes only, about 45 min on 2 CPU
# threads (nothing else may run meanwhile); run it again after an interruption and it resumes
train-head: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/train_head.py

backbone-demo: setup
	$(PY) scripts/vggt_demo.py --images ../shared/data/nerf_synthetic/lego/train --out demo_output/vggt \
		--backbone vggt-small --max-images 4 --size 140

# every CLI and script end to end, in at most 10 minutes here; `make test-slow` runs the tests marked `long`.
# TEST_WORKERS pytest-xdist workers (a test file stays on one worker, so its module fixtures are built once), one CPU
# thread each (tests/conftest.py): much of a CLI test is single-threaded Python (imports, start-up), so two workers on
# two cores finish sooner than one worker with two threads
TEST_WORKERS ?= 2
test: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -m "not long" -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -m "not slow and not long" -n $(TEST_WORKERS) --dist loadfile

test-slow: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -m long

# line coverage (in-process) of what `make test` runs, over tnerf_ns and scripts
coverage: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -m "not long" --cov=tnerf_ns --cov=scripts --cov-report=term

# 400 hypothesis cases per reader (NeRF-MAE files, image files, dataset JSON): 1,200 in all; counts in
# docs/results/fuzz.md (the test suite runs 40 per reader)
fuzz: setup
	rm -f docs/results/fuzz.md
	TNERF_FUZZ_EXAMPLES=400 TNERF_FUZZ_REPORT=docs/results/fuzz.md $(PY) -m pytest -q -p no:cacheprovider tests/test_fuzz.py

# On a CUDA machine: every GPU check, table in docs/results/gpu.md. Uses .venv when there is one, else the machine's
# python3; on a bare machine (no nerfstudio) the script installs the missing wheels of .gpu-wheels/ (make gpu-wheels).
gpu-check:
	$(if $(wildcard $(PY)),$(PY),python3) scripts/gpu_check.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every number README shows (about an hour on 2 CPU threads; nothing else may run meanwhile): comparisons on lego, mic
# and a generated scene, feed-forward quality against K, the dynamic evaluation, the benchmarks, then sync_readme.
# Commands and wall times land in docs/results/RESULTS_LOG.md. Trains the demo checkpoint first when there is none.
results: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/make_results.py

# Every speed benchmark (backbone, backbone cache, grid renderer, tri-plane field, encoding scaling, dynamic scenes)
# into docs/results/benchmarks.md, and the two rendering paths on the demo's checkpoint (make demo first; without
# it a tiny model is trained) into docs/results/render_speed.md; CPU here, CUDA when present.
bench: setup
	$(PY) scripts/benchmark_all.py --out docs/results/benchmarks.md
	$(PY) scripts/benchmark_render.py --out docs/results/render_speed.md \
		$(if $(wildcard demo_output/runs/demo/tnerf/run/config.yml),,--quick)

# Wheels a bare CUDA machine (Python 3.12, torch, numpy 2, scientific stack, no nerfstudio) needs besides its own
# stack, from the pinned scripts/gpu_wheels.txt into the git-ignored .gpu-wheels/ (at most 30 MiB); the proof that
# they suffice is scripts/check_bare_env.sh.
gpu-wheels:
	python3 scripts/gpu_wheels.py

clean-venv:
	rm -rf $(VENV)
