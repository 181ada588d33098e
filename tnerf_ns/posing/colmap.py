"""Cameras of a photo folder from COLMAP (through ``pycolmap``, PyPI): the path that works where the shipped small VGGT
cannot estimate a real capture's cameras (``docs/posefree.md``).

SIFT features, exhaustive (or sequential) matching and incremental mapping, as ``ns-process-data images`` runs them
with the ``colmap`` executable; one camera shared by every photo (a capture is one phone or one lens). Photos COLMAP
cannot register are left out with a warning, as nerfstudio does. The result is in the same form as VGGT's cameras
(:class:`tnerf_ns.posing.cameras.Posed`), so :func:`tnerf_ns.posing.convert.photos_to_transforms` writes both alike.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np
import torch
from rich.console import Console

from tnerf_ns.geometry import opencv_w2c_to_opengl_c2w
from tnerf_ns.posing.cameras import Posed

CONSOLE = Console()
ColmapCameraModel = Literal["OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"]
"""Camera models COLMAP fits here; all map onto nerfstudio's OPENCV (``k1 k2 p1 p2``) or pinhole cameras."""


class ColmapError(RuntimeError):
    """COLMAP is missing or could not pose the photos (the message names the folder)."""


def opencv_params(model: str, params: Sequence[float]) -> np.ndarray:
    """COLMAP camera parameters to ``fx, fy, cx, cy, k1, k2, p1, p2``."""
    p = [float(v) for v in params]
    if model == "SIMPLE_PINHOLE":
        return np.array([p[0], p[0], p[1], p[2], 0, 0, 0, 0])
    if model == "PINHOLE":
        return np.array([*p[:4], 0, 0, 0, 0])
    if model == "SIMPLE_RADIAL":
        return np.array([p[0], p[0], p[1], p[2], p[3], 0, 0, 0])
    if model == "RADIAL":
        return np.array([p[0], p[0], p[1], p[2], p[3], p[4], 0, 0])
    if model == "OPENCV":
        return np.array(p[:8])
    raise ColmapError(f"COLMAP camera model {model} is not supported here (known: {ColmapCameraModel.__args__})")


def run_colmap(
    files: Sequence[Path],
    camera_model: ColmapCameraModel = "OPENCV",
    matching: Literal["exhaustive", "sequential"] = "exhaustive",
    keep: Optional[Path] = None,
) -> Posed:
    """Pose ``files`` (one folder) with COLMAP; ``keep``: write the sparse model there (``cameras.bin`` etc.)."""
    try:
        import pycolmap
    except ImportError as err:
        raise ColmapError("COLMAP posing needs pycolmap: `pip install pycolmap` (or run `ns-process-data images` "
                          "with Debian's `colmap` and use nerfstudio-data)") from err  # fmt: skip
    folder = Path(files[0]).parent
    if any(Path(f).parent != folder for f in files):
        raise ColmapError(f"{folder}: COLMAP posing reads the photos of one folder")
    names = [Path(f).name for f in files]
    work = Path(tempfile.mkdtemp(prefix="tnerf_colmap_"))
    try:
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = camera_model
        database = work / "database.db"
        cpu = pycolmap.Device.cpu if not torch.cuda.is_available() else pycolmap.Device.auto
        with CONSOLE.status(f"COLMAP: SIFT features of {len(files)} photos"):
            pycolmap.extract_features(database, folder, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                                      reader_options=reader, device=cpu)  # fmt: skip
        with CONSOLE.status(f"COLMAP: {matching} matching"):
            match = pycolmap.match_exhaustive if matching == "exhaustive" else pycolmap.match_sequential
            match(database, device=cpu)
        with CONSOLE.status("COLMAP: incremental mapping"):
            models = pycolmap.incremental_mapping(database, folder, work / "sparse")
        if not models:
            raise ColmapError(f"{folder}: COLMAP registered none of the {len(files)} photos (too few features or "
                              "overlap; more photos, sharper photos or --colmap-matching exhaustive may help)")  # fmt: skip
        model = max(models.values(), key=lambda m: m.num_reg_images())
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            model.write(keep)
        return posed_from_model(model, files, camera_model, pycolmap.__version__)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def posed_from_model(model, files: Sequence[Path], camera_model: str, version: str) -> Posed:
    """A pycolmap Reconstruction to :class:`Posed` (registered photos only, in ``files`` order)."""
    by_name = {image.name: image for image in model.images.values() if image.has_pose}
    kept = [Path(f) for f in files if Path(f).name in by_name]
    dropped = [Path(f).name for f in files if Path(f).name not in by_name]
    if len(kept) < 2:
        raise ColmapError(f"{Path(files[0]).parent}: COLMAP registered {len(kept)} of {len(files)} photos")
    if dropped:
        CONSOLE.print(f"[yellow]COLMAP could not register {len(dropped)} of {len(files)} photos; left out: "
                      f"{', '.join(dropped[:10])}{' ...' if len(dropped) > 10 else ''}")  # fmt: skip
    w2c, params, hw = [], [], []
    for f in kept:
        image = by_name[f.name]
        cam_from_world = image.cam_from_world() if callable(image.cam_from_world) else image.cam_from_world
        w2c.append(np.asarray(cam_from_world.matrix(), dtype=np.float64))
        camera = image.camera
        params.append(opencv_params(camera.model.name, camera.params))
        hw.append([camera.height, camera.width])
    params = np.stack(params)
    points = list(model.points3D.values())
    xyz = np.array([p.xyz for p in points], dtype=np.float32).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.float32).reshape(-1, 3) / 255.0
    distortion = torch.from_numpy(params[:, 4:]).float() if np.abs(params[:, 4:]).max() > 0 else None
    record = {"poser": "colmap", "pycolmap": version, "camera_model": camera_model, "registered": len(kept),
              "dropped": dropped, "mean_reprojection_error_px": float(model.compute_mean_reprojection_error())}  # fmt: skip
    c2w = opencv_w2c_to_opengl_c2w(torch.from_numpy(np.stack(w2c))).float()
    intrinsics, hw = torch.from_numpy(params[:, :4]).float(), torch.tensor(hw, dtype=torch.float32)
    return Posed(kept, c2w, intrinsics, hw, torch.from_numpy(xyz), torch.from_numpy(rgb), distortion, record)
