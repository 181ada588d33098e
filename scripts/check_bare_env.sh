#!/usr/bin/env bash
# Proof that the project runs on a bare CUDA machine: a fresh Python 3.12 venv with only the bare scientific stack
# (torch 2.11, torchvision 0.26, numpy 2, ...; no nerfstudio) plus the wheels of scripts/gpu_wheels.txt, installed
# offline-style (--no-index --no-deps). Then: import, a few tnerf / tnerf-dynamic training steps on cpu,
# get_average_eval_image_metrics, eval_setup, ns-train CLI parsing, and the import-closure check
# (scripts/bare_env_smoke.py --closure), plus the data tests.
#
#   scripts/check_bare_env.sh                  # builds /tmp/bare312 (kept afterwards)
#   VENV=/tmp/other PYTHON=python3.12 scripts/check_bare_env.sh
#   REUSE=1 scripts/check_bare_env.sh          # keep an existing venv, only reinstall wheels + project and check
#
# The torch 2.11 wheel from PyPI is a CUDA build (nvidia-* dependencies, several GB). Needs internet for step 1-2 only.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-/tmp/bare312}"
PYTHON="${PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3.12}"
WORK="${WORK:-$(mktemp -d /tmp/tnerf-bare-smoke.XXXXXX)}"
BARE=(torch==2.11.0 torchvision==0.26.0 'numpy>=2,<3' einops safetensors jaxtyping huggingface_hub rich tensorboard
      torchmetrics scipy matplotlib pillow opencv-python-headless timm pytest)

# 1. the bare machine: a fresh venv with only the bare stack (and pytest)
if [[ "${REUSE:-0}" != 1 || ! -x "$VENV/bin/python" ]]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --progress-bar off "${BARE[@]}"
fi
# 2. the wheels (make gpu-wheels), downloaded for CPython 3.12 manylinux x86_64
python3 "$REPO/scripts/gpu_wheels.py"
# 3. offline from here: the wheels without dependencies, then the project (entry points need it installed)
"$VENV/bin/pip" install --quiet --no-index --no-deps "$REPO"/.gpu-wheels/*.whl
"$VENV/bin/pip" install --quiet --no-index --no-deps --no-build-isolation -e "$REPO"
"$VENV/bin/pip" check || true  # lists nerfstudio's unmet (unused on this path) requirements: informative only
"$VENV/bin/python" -c 'import sys, torch, numpy, nerfstudio, tnerf_ns.configs; print("import ok:", sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__)'
# 4. training / eval / CLI / import closure, then the data tests
cd "$REPO"
"$VENV/bin/python" scripts/bare_env_smoke.py --work "$WORK" --closure
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/test_data_pipeline.py tests/test_grid_renderer.py \
    tests/test_synthetic.py tests/test_nerfmae_reader.py -x
echo "bare environment check passed: $VENV"
