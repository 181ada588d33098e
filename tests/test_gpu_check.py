"""scripts/gpu_check.py in its CPU dry run: every check's code path runs (tiny sizes), the report is complete, and the
committed GPU report is never touched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from helpers import REPO, env

GPU_REPORT = REPO / "docs" / "results" / "gpu.md"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.mark.slow
@pytest.mark.long  # make test-slow; gpu_check.py itself runs in make test (the two tests below)
def test_dry_run_exercises_every_check(tmp_path):
    before = digest(GPU_REPORT)
    out = tmp_path / "gpu.md"
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--dry-run", "--out", str(out)], cwd=REPO,
                          env=env(), capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    text = out.read_text()
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    checks = {r["check"].split()[0] for r in rows}
    assert checks == {"1", "2", "3", "4", "5", "6"}, checks
    assert not [r for r in rows if r["ok"] is False]
    assert "dry run" in text and "## Where the rendering time goes" in text
    golden = [r for r in rows if r["check"].startswith("1")]
    assert len(golden) == 2 and all(r["ok"] for r in golden)  # fp32 and bf16 both compared and passed
    assert digest(GPU_REPORT) == before


def test_dry_run_refuses_to_overwrite_the_gpu_report():
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--dry-run", "--out", str(GPU_REPORT), "--only",
                           "1"], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode != 0 and "never writes" in proc.stdout + proc.stderr


def test_without_cuda_the_full_check_says_how_to_proceed():
    pytest.importorskip("nerfstudio")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the real check")
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--only", "1"], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 2 and "--dry-run" in proc.stdout
