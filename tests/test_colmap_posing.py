"""COLMAP posing through pycolmap (issue 29, item 5): a tiny generated capture (three textured planes seen from an
arc of cameras) posed end to end, scored against its true cameras; then read by the tnerf-photos dataparser."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("pycolmap")

from helpers import REPO  # noqa: E402

from tnerf_ns.geometry import opencv_w2c_to_opengl_c2w  # noqa: E402
from tnerf_ns.posing import PosingConfig, photos_to_transforms  # noqa: E402
from tnerf_ns.posing.colmap import ColmapError, opencv_params, run_colmap  # noqa: E402
from tnerf_ns.posing.metrics import aligned_errors, mean_pose_baseline  # noqa: E402


def textured_corner(out: Path, n: int = 8, hw=(120, 160), seed: int = 0):
    """Floor and two walls (2x2 each, blob textures at three scales) seen from ``n`` cameras on an arc looking at the
    corner; returns the OpenGL camera-to-worlds and the focal length in pixels."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    textures = []
    for _ in range(3):
        t = sum(gaussian_filter(rng.random((512, 512, 3)), s) * w for s, w in ((3, 1.0), (8, 2.0), (20, 3.0)))
        textures.append((t - t.min()) / (t.max() - t.min()))
    h, w = hw
    focal = 0.9 * w
    out.mkdir(parents=True, exist_ok=True)
    j, i = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    cameras = []
    for v in range(n):
        a = np.deg2rad(20 + 50 * v / (n - 1))
        centre = np.array([2.6 * np.cos(a), 2.6 * np.sin(a), 1.6])
        forward = np.array([0.6, 0.6, 0.5]) - centre
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        c2w = np.stack([right, np.cross(right, forward), -forward, centre], 1)
        cameras.append(c2w)
        d = np.stack([(j - w / 2) / focal, -(i - h / 2) / focal, -np.ones_like(j)], -1) @ c2w[:, :3].T
        image, nearest = np.ones((h, w, 3)), np.full((h, w), np.inf)
        for axis, tex in enumerate(textures):  # the plane where coordinate `axis` is 0
            t = -centre[axis] / d[..., axis]
            uv = (centre + t[..., None] * d)[..., [k for k in range(3) if k != axis]]
            hit = (t > 0) & (uv >= 0).all(-1) & (uv <= 2).all(-1) & (t < nearest)
            px = np.clip((uv / 2 * 511).astype(int), 0, 511)
            image[hit] = tex[px[..., 0], px[..., 1]][hit]
            nearest[hit] = t[hit]
        Image.fromarray((image * 255).astype(np.uint8)).save(out / f"view_{v:02d}.png")
    return torch.tensor(np.stack(cameras), dtype=torch.float32), focal


def test_camera_conventions():
    rot = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0].numpy()
    rot *= np.linalg.det(rot)
    centre = np.array([1.0, -2.0, 0.5])
    c2w = opencv_w2c_to_opengl_c2w(torch.from_numpy(np.concatenate([rot, (-rot @ centre)[:, None]], 1))).numpy()
    assert np.allclose(c2w[:, 3], centre)  # the camera centre
    assert np.allclose(c2w[:, 2], -rot[2])  # OpenGL looks down -z: -z is OpenCV's forward (the third row of R)
    assert np.allclose(opencv_params("SIMPLE_RADIAL", [100, 8, 6, 0.1]), [100, 100, 8, 6, 0.1, 0, 0, 0])
    with pytest.raises(ColmapError, match="FISHEYE"):
        opencv_params("FISHEYE", [1, 2, 3])


def test_colmap_poses_a_generated_capture_and_tnerf_photos_reads_it(tmp_path):
    truth, focal = textured_corner(tmp_path / "photos")
    config = PosingConfig(poser="colmap")  # OPENCV: distortion fitted too
    meta_file = photos_to_transforms(tmp_path / "photos", tmp_path / "posed", config)
    meta = json.loads(meta_file.read_text())
    record = meta["tnerf_photos"]
    assert record["poser"] == "colmap" and record["registered"] == 8 and not record["dropped"]
    assert (tmp_path / "posed" / "colmap" / "sparse" / "cameras.bin").is_file()
    c2w = torch.tensor([f["transform_matrix"] for f in meta["frames"]], dtype=torch.float32)[:, :3]
    fov = torch.tensor([[2 * np.degrees(np.arctan(f["w"] / 2 / f["fl_x"]))] * 2 for f in meta["frames"]])
    gt_fov = torch.full_like(fov, 2 * np.degrees(np.arctan(80 / focal)))
    errors = aligned_errors(c2w, fov, truth, gt_fov, scene_size=2.0)
    floor = mean_pose_baseline(truth, gt_fov, scene_size=2.0)
    # measured: 0.7-1.1 deg (the centres' alignment on a 50-degree arc leaves ~1 deg about its chord), 0.002, 0.2 deg;
    # the mean-pose floor: 20.8 deg, 0.32
    assert errors["rotation_deg"] < 3.0 < floor["rotation_deg"]
    assert errors["centre_rel"] < 0.02 < floor["centre_rel"]
    assert errors["fov_deg"] < 1.0

    from tnerf_ns.data.photos_dataparser import TNeRFPhotosDataParserConfig

    parser = TNeRFPhotosDataParserConfig(
        data=tmp_path / "photos", output_dir=tmp_path / "posed", poser="colmap", backbone="vggt-small"
    )  # the VGGT settings do not matter to COLMAP's cameras
    written = meta_file.stat().st_mtime_ns
    outputs = parser.setup().get_dataparser_outputs("train")
    assert meta_file.stat().st_mtime_ns == written  # same photos, same settings: the cameras are reused
    assert len(outputs.image_filenames) == 7  # every 8th photo is held out
    assert outputs.cameras.distortion_params.shape == (7, 6)


def test_colmap_errors_name_the_folder(tmp_path, monkeypatch):
    flat = tmp_path / "blank"
    flat.mkdir()
    for v in range(3):
        Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(flat / f"b{v}.png")
    with pytest.raises(ColmapError, match="blank: COLMAP registered"):
        photos_to_transforms(flat, tmp_path / "out", PosingConfig(poser="colmap"))
    assert not (tmp_path / "out" / "transforms.json").exists()  # nothing half-written
    proc = subprocess.run([sys.executable, str(REPO / "scripts/photos_to_transforms.py"), "--images", str(flat), "--out",
                           str(tmp_path / "o"), "--poser", "colmap"], capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 2 and "blank: COLMAP registered" in proc.stdout, proc.stdout + proc.stderr
    monkeypatch.setitem(sys.modules, "pycolmap", None)  # not installed
    with pytest.raises(ColmapError, match="pip install pycolmap"):
        run_colmap(sorted(flat.iterdir()))
