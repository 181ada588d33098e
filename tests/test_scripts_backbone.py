"""The backbone scripts end to end: the demo on real images and the benchmark on tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import LEGO, REPO
from PIL import Image


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def image_folder(tmp_path):
    """The lego photos when the shared data is present, generated pictures otherwise (bare CI clones)."""
    if (LEGO / "train").is_dir():
        return LEGO / "train"
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(5):
        Image.fromarray((np.random.default_rng(i).random((90, 120, 3)) * 255).astype(np.uint8)).save(
            images / f"{i}.png"
        )
    return images


def test_vggt_demo_writes_depth_confidence_and_cameras(tmp_path, image_folder):
    images = image_folder
    out = tmp_path / "out"
    proc = run_script("scripts/vggt_demo.py", "--images", str(images), "--out", str(out), "--max-images", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cams = json.loads((out / "cameras.json").read_text())
    assert len(cams["frames"]) == 3
    frame = cams["frames"][0]
    assert np.isfinite(np.array(frame["intrinsics"])).all()
    c2w = np.array(frame["transform_matrix"])
    np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-4)
    depth = np.asarray(Image.open(next(out.glob("000_*_depth.png"))))
    assert depth.shape[:2] == tuple(cams["image_hw"]) and depth.std() > 0


def test_vggt_demo_reports_bad_input_clearly(tmp_path, image_folder):
    proc = run_script("scripts/vggt_demo.py", "--images", str(tmp_path))
    assert proc.returncode == 2 and "no images" in proc.stdout
    proc = run_script(
        "scripts/vggt_demo.py", "--images", str(image_folder), "--weights", str(tmp_path / "missing.safetensors")
    )
    assert proc.returncode == 2 and "missing.safetensors" in proc.stdout


def test_benchmark_backbone_prints_a_table():
    proc = run_script(
        "scripts/benchmark_backbone.py",
        "--configs",
        "vggt-small",
        "--frames",
        "1",
        "2",
        "--sizes",
        "28",
        "--repeats",
        "1",
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "aggregator ms" in proc.stdout and "vggt-small" in proc.stdout
