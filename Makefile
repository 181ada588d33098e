# One-command entry points. `make demo` and `make test` set up .venv themselves on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.tnerf-installed

.PHONY: setup demo backbone-demo test test-fast lint bench gpu-check clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch/torchvision first, pinned to the pair nerfstudio 1.1.5 works with (served from local disk here)
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e '.[dev]'
	# ns-render needs an `ffmpeg` executable: take the one shipped in the imageio-ffmpeg wheel
	ln -sf "$$($(PY) -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" $(VENV)/bin/ffmpeg
	touch $(STAMP)

demo: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/demo.py

backbone-demo: setup
	$(PY) scripts/vggt_demo.py --images ../shared/data/nerf_synthetic/lego/train --out demo_output/vggt \
		--backbone vggt-small --max-images 4 --size 140

test: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q

test-fast: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -m "not slow"

# On a CUDA machine: every GPU check, table in docs/results/gpu.md. Uses .venv when there is one, else the machine's
# python3; on a bare machine (no nerfstudio) the script installs the missing wheels of .gpu-wheels/ (make gpu-wheels).
gpu-check:
	$(if $(wildcard $(PY)),$(PY),python3) scripts/gpu_check.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(PY) scripts/benchmark_all.py

clean-venv:
	rm -rf $(VENV)
