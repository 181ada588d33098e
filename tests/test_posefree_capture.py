"""scripts/evaluate_posefree_capture.py on a tiny fabricated capture (a few photos + file-level OPENCV intrinsics, like
the fox capture), posed by an untrained vggt-small: every metric beside the baseline, the table, the resumable work
folder, and the errors that name the file."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO
from PIL import Image

SCRIPT = REPO / "scripts" / "evaluate_posefree_capture.py"
METRICS = ("rotation_deg", "rotation_deg_median", "centre_rel", "centre_rel_median", "fov_deg", "auc30")


@pytest.fixture(scope="module")
def module():
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module(SCRIPT.stem)


def orbit_c2w(n: int) -> np.ndarray:
    """OpenGL cameras on a tilted ring looking at the origin."""
    out = np.zeros((n, 4, 4))
    for i, angle in enumerate(np.linspace(0, 2 * math.pi, n, endpoint=False)):
        centre = np.array([3 * math.cos(angle), 3 * math.sin(angle), 1.0 + 0.3 * math.sin(angle)])
        back = centre / np.linalg.norm(centre)
        right = np.cross([0.0, 0.0, 1.0], back)
        right /= np.linalg.norm(right)
        out[i, :3, :3] = np.stack([right, np.cross(back, right), back], -1)
        out[i, :3, 3], out[i, 3, 3] = centre, 1
    return out


def make_capture(root: Path, n: int = 6, names=None) -> Path:
    """images/ (portrait photos) and transforms.json with shared OPENCV intrinsics, like a COLMAP capture."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = (rng.random((8, 6, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((54, 96), Image.NEAREST).save(root / "images" / f"{i + 1:04d}.jpg")
    names = names or [f"images/{i + 1:04d}.jpg" for i in range(n)]
    frames = [{"file_path": name, "transform_matrix": c2w.tolist()} for name, c2w in zip(names, orbit_c2w(n))]
    meta = {"camera_model": "OPENCV", "fl_x": 69.0, "fl_y": 68.9, "cx": 27.7, "cy": 48.3, "w": 54, "h": 96,
            "k1": 0.05, "k2": -0.08, "p1": 0.0, "p2": 0.0, "frames": frames}  # fmt: skip
    (root / "transforms.json").write_text(json.dumps(meta))
    return root


def evaluation(module, capture: Path, tmp_path: Path, **kwargs):
    return module.EvaluatePoseFreeCapture(data=capture, label="tiny", backbone="vggt-small", weights="random",
                                          out=tmp_path / "out", work=tmp_path / "work", device="cpu", **kwargs)  # fmt: skip


def test_capture_scores_every_metric_beside_the_baseline(module, tmp_path):
    capture = make_capture(tmp_path / "capture")
    results = evaluation(module, capture, tmp_path).main()
    written = json.loads((tmp_path / "out" / "capture-tiny.json").read_text())
    assert written["label"] == "tiny" and written["posed"] == written["matched"] == 6 and written["photos"] == 6
    assert written["weights"]["source"] == "random" and written["passes"] == 1 and not written["reused_posing"]
    for side in ("vggt", "baseline"):
        for key in METRICS:
            assert np.isfinite(written[side][key]), (side, key)
    assert written["scene_size"] == pytest.approx(6.0, rel=1e-6)  # the ring's diameter: its centres' longest side
    assert written["baseline"]["centre_rel"] == pytest.approx(0.5, rel=0.01)  # centres about 3 from the centroid
    assert written["baseline"]["fov_deg"] == 0 and written["baseline"]["auc30"] == 0
    assert written["true_fov_deg_mean"] == pytest.approx(np.degrees([2 * math.atan(48 / 68.9), 2 * math.atan(27 / 69)]))
    assert set(written["per_camera"]) == {f"{i + 1:04d}.jpg" for i in range(6)}
    assert written["wall_seconds"] > 0 and results["vggt"] == written["vggt"]
    table = (tmp_path / "out" / "capture.md").read_text()
    assert "| capture, tiny (`vggt-small`) | 6 / 6 | 1 (" in table and "(baseline 0.501 / 0.502)" in table

    again = evaluation(module, capture, tmp_path).main()  # resumable: the posed cameras are reused
    assert again["reused_posing"] and again["vggt"] == written["vggt"]
    fewer = evaluation(module, capture, tmp_path, max_images=4).main()  # other photos: posed again
    assert not fewer["reused_posing"] and fewer["posed"] == fewer["matched"] == 4
    assert sorted(fewer["per_camera"]) == ["0001.jpg", "0003.jpg", "0004.jpg", "0006.jpg"]


def test_no_matching_names_is_an_error_naming_the_transforms_file(module, tmp_path):
    capture = make_capture(tmp_path / "capture", names=[f"images/other_{i}.png" for i in range(6)])
    with pytest.raises(module.CaptureInputError, match=rf"{capture / 'transforms.json'}: no frame's file name"):
        evaluation(module, capture, tmp_path).main()
    assert not (tmp_path / "work").exists()  # refused before posing


def test_missing_images_and_empty_transforms_are_named(module, tmp_path):
    capture = make_capture(tmp_path / "capture")
    meta = json.loads((capture / "transforms.json").read_text())
    (capture / "transforms.json").write_text(json.dumps({**meta, "frames": []}))
    with pytest.raises(module.CaptureInputError, match=rf"{capture / 'transforms.json'}: .* no frames"):
        evaluation(module, capture, tmp_path).main()
    (capture / "images").rename(capture / "photos")
    with pytest.raises(module.CaptureInputError, match=rf"{capture / 'images'}: no images folder"):
        evaluation(module, capture, tmp_path).main()
