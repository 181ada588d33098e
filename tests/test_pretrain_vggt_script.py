"""scripts/pretrain_vggt.py and scripts/evaluate_vggt_small.py end to end on a tiny rendered dataset: trains,
checkpoints safely, resumes, exports fp16 weights that load_vggt reads, and scores them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tnerf_ns.backbone.loading import load_vggt

pytestmark = pytest.mark.slow

REPO_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_pretrain_resume_export_and_evaluate(tmp_path):
    grids, data, out = tmp_path / "grids", tmp_path / "rendered", tmp_path / "run"
    run(f"{REPO_SCRIPTS}/make_synthetic_scenes.py", "--out", str(grids), "--num-scenes", "4", "--kind", "mixed",
        "--max-res", "24", "--held-out-fraction", "0.25")  # fmt: skip
    run(f"{REPO_SCRIPTS}/render_scenes.py", "--scenes", str(grids), "--out", str(data), "--views", "4",
        "--sizes", "28x42", "42x42", "--fov-range", "30", "90", "--roll-deg", "20", "--target-jitter", "0.1",
        "--distance-scale", "0.9", "1.5", "--device", "cpu")  # fmt: skip
    common = ["--data", str(data), "--out", str(out), "--val-every", "2", "--warmup-steps", "2", "--threads", "1",
              "--max-frames", "4"]  # fmt: skip
    run(f"{REPO_SCRIPTS}/pretrain_vggt.py", *common, "--max-steps", "4")
    state = torch.load(out / "trainer_state.pt", map_location="cpu", weights_only=True)
    assert int(state["step"]) == 4 and load_file(str(out / "checkpoint.safetensors"))
    weights = tmp_path / "w.safetensors"
    log = run(f"{REPO_SCRIPTS}/pretrain_vggt.py", *common, "--max-steps", "6", "--export", str(weights))
    assert "resumed" in log and "at step 4" in log
    assert int(torch.load(out / "trainer_state.pt", weights_only=True)["step"]) == 6
    assert (out / "tb").is_dir() and len(list((out / "tb").iterdir())) >= 2
    model = load_vggt(weights, "vggt-small")
    assert next(model.parameters()).dtype == torch.float32
    run(f"{REPO_SCRIPTS}/evaluate_vggt_small.py", "--data", str(data), "--weights", str(weights), "--out",
        str(tmp_path / "eval"), "--views", "2", "3", "--samples-per-scene", "1", "--threads", "1")  # fmt: skip
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert all(set(row) == {"model", "trivial"} for row in metrics.values())
    assert "| metric |" in (tmp_path / "eval" / "metrics.md").read_text()
