"""A folder of photos to a nerfstudio dataset: ``transforms.json`` (VGGT's cameras) and ``sparse_pc.ply``.

The written world frame: VGGT's anchor frame (the first photo's camera), turned so the mean camera up is +z, centred
on the scene box and scaled so the box's longest half side is 1 (see :func:`~tnerf_ns.posing.cameras.normalise_world`;
the similarity from VGGT's frame is recorded). ``transforms.json`` follows nerfstudio's format (OpenGL camera-to-world
``transform_matrix`` and per-frame ``fl_x, fl_y, cx, cy, w, h`` at each photo's own resolution, ``ply_file_path``);
its ``tnerf_photos`` entry records the backbone, the weights, the image fingerprint and the scene box.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence

import numpy as np
import torch
from rich.console import Console

from tnerf_ns.backbone.preprocess import list_images
from tnerf_ns.posing.cameras import Posed, fov_to_intrinsics, normalise_world, predicted_to_nerfstudio, to_homogeneous
from tnerf_ns.posing.colmap import ColmapCameraModel
from tnerf_ns.posing.predict import confident_points, load_photos, predict

CONSOLE = Console()
FORMAT = 1
"""Version of the ``tnerf_photos`` record in transforms.json."""


@dataclass
class PosingConfig:
    """How photos become cameras (every field changes the result, so all are part of the cache key)."""

    backbone: Literal["vggt-1b", "vggt-small"] = "vggt-1b"
    """VGGT architecture."""
    weights: Optional[str] = None
    """Weights: a Hugging Face repo id, a file or a folder; ``random`` for an untrained model (tests only); None: the
    preset's default (``facebook/VGGT-1B``; for vggt-small the shipped ``vggt-small-synthetic.safetensors``)."""
    image_width: Optional[int] = None
    """Longer side of the photos given to VGGT (multiple of 14); None: the preset's (518 / 140)."""
    max_tokens: int = 100_000
    """Token budget of one VGGT pass (views x (patches per view + 5)); more views are processed in anchored chunks."""
    chunking: bool = True
    """Process views beyond the budget in chunks sharing the anchor photo; off: stop with an error instead."""
    conf_percentile: float = 50.0
    """Points kept per photo: depth confidence above this percentile of the photo's own."""
    max_points: int = 100_000
    """Most points written to sparse_pc.ply."""
    box_percentiles: tuple = (2.0, 98.0)
    """Robust percentiles of the points that bound the scene box, per axis."""
    box_margin: float = 0.05
    """The box is widened by this fraction of its extent on each side."""
    poser: Literal["vggt", "colmap"] = "vggt"
    """Who makes the cameras: VGGT (above), or COLMAP through pycolmap (SIFT, matching, incremental mapping; the
    points bounding the box are its triangulated ones)."""
    colmap_camera_model: ColmapCameraModel = "OPENCV"
    """COLMAP's camera model, shared by every photo (OPENCV: k1 k2 p1 p2 distortion, written per frame)."""
    colmap_matching: Literal["exhaustive", "sequential"] = "exhaustive"
    """COLMAP's matching: every pair, or neighbours in file order (video frames)."""

    def resolved_weights(self) -> str:
        from tnerf_ns.backbone.loading import PRESET_WEIGHTS

        weights = self.weights or PRESET_WEIGHTS.get(self.backbone)
        if weights is None:
            raise ValueError(
                f"{self.backbone}: the preset has no pre-trained weights; pass --weights PATH (or 'random' for an "
                "untrained model, whose cameras are meaningless)"
            )
        return weights

    def width(self) -> int:
        from tnerf_ns.backbone.loading import PRESET_INPUT_WIDTH

        return self.image_width or PRESET_INPUT_WIDTH[self.backbone]


def image_fingerprint(paths: Sequence[Path], names: bool = True) -> str:
    """SHA-256 over the photos' names and bytes (what the cameras depend on)."""
    digest = hashlib.sha256()
    for path in paths:
        if names:
            digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def settings_key(config: PosingConfig) -> str:
    """Short hash of every setting that changes the cameras."""
    settings = {**asdict(config), "weights": config.weights or "default"}
    if config.poser == "vggt":  # keys made before COLMAP posing existed stay valid
        for name in ("poser", "colmap_camera_model", "colmap_matching"):
            settings.pop(name)
    else:  # COLMAP's cameras do not depend on the VGGT settings
        for name in ("backbone", "weights", "image_width", "max_tokens", "chunking", "conf_percentile", "max_points"):
            settings.pop(name)
    settings = json.dumps(settings, sort_keys=True)
    return hashlib.sha1(settings.encode()).hexdigest()[:8]


def weights_record(weights: str) -> Dict:
    """What identifies the weights: the source as given, the resolved file, its size and (below 1 GB) its SHA-256."""
    if weights == "random":
        return {"source": "random", "note": "untrained (random init, seed 0): cameras are meaningless"}
    from tnerf_ns.backbone.loading import resolve_checkpoint

    path = resolve_checkpoint(weights)
    record = {"source": weights, "file": str(path), "bytes": path.stat().st_size}
    if record["bytes"] < 1 << 30:
        record["sha256"] = image_fingerprint([path], names=False)
    return record


def load_model(backbone: str, weights: str, device: torch.device) -> torch.nn.Module:
    from tnerf_ns.backbone import build_vggt, load_vggt

    if weights == "random":
        CONSOLE.print(f"[yellow]{backbone}: random weights, the cameras will be meaningless (tests only)")
        return build_vggt(backbone).to(device)
    return load_vggt(weights, backbone, device=device)


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Binary little-endian PLY with float x, y, z and uchar red, green, blue (what nerfstudio reads)."""
    vertex = np.empty(xyz.shape[0], dtype=[(k, "<f4") for k in "xyz"] + [(k, "u1") for k in ("red", "green", "blue")])
    for i, k in enumerate("xyz"):
        vertex[k] = xyz[:, i]
    for i, k in enumerate(("red", "green", "blue")):
        vertex[k] = np.clip(np.round(rgb[:, i] * 255), 0, 255)
    header = ("ply\nformat binary_little_endian 1.0\n" f"element vertex {xyz.shape[0]}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")  # fmt: skip
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(vertex.tobytes())


def _portable_path(path: Path, out: Path) -> str:
    """Relative to the output folder when both share a folder below the file-system root (the pair can move
    together), else absolute."""
    path, out = path.resolve(), out.resolve()
    common = Path(os.path.commonpath([path, out]))
    return os.path.relpath(path, out) if common != Path(common.anchor) else str(path)


def pose_with_vggt(files: List[Path], config: PosingConfig, device: str = "auto") -> Posed:
    """VGGT's cameras (and confident depth points) for every photo."""
    weights = config.resolved_weights()
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    model = load_model(config.backbone, weights, dev)
    pixels, original_hw = load_photos(files, config.width(), model.patch_size)
    pred = predict(model, pixels, original_hw, config.max_tokens, config.chunking, device=dev)
    net_hw = torch.tensor(pixels.shape[-2:], dtype=torch.float32).expand(len(files), 2)
    k = fov_to_intrinsics(pred.fov, net_hw)
    k_net = torch.zeros(len(files), 3, 3)
    k_net[:, 0, 0], k_net[:, 1, 1], k_net[:, 0, 2], k_net[:, 1, 2], k_net[:, 2, 2] = (
        k[:, 0],
        k[:, 1],
        k[:, 2],
        k[:, 3],
        1,
    )
    xyz, rgb = confident_points(pred, k_net, config.conf_percentile, config.max_points)
    c2w, intr = predicted_to_nerfstudio(pred.w2c, pred.fov, original_hw)
    record = {"poser": "vggt", "backbone": config.backbone, "weights": weights_record(weights),
              "network_hw": list(pixels.shape[-2:]), "passes": pred.chunks, "device": str(dev)}  # fmt: skip
    return Posed(list(files), c2w, intr, original_hw.float(), xyz, rgb, None, record)


def photos_to_transforms(
    images: Path, out: Path, config: PosingConfig, device: str = "auto", files: Optional[List[Path]] = None
) -> Path:
    """Pose the photos of ``images`` (VGGT, or COLMAP with ``config.poser``) and write ``out/transforms.json`` and
    ``out/sparse_pc.ply`` (atomically: a half-written folder never looks finished). Returns the transforms.json path."""
    files = files or list_images(images)  # errors name the folder
    start = time.perf_counter()
    if config.poser == "colmap":
        from tnerf_ns.posing.colmap import run_colmap

        posed = run_colmap(files, config.colmap_camera_model, config.colmap_matching, keep=out / "colmap" / "sparse")
    else:
        posed = pose_with_vggt(files, config, device)
    sim, box = normalise_world(posed.c2w, posed.xyz, tuple(config.box_percentiles), config.box_margin)
    c2w, xyz = sim.c2w(posed.c2w), sim.points(posed.xyz)

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tnerf_photos_", dir=out))
    frames = []
    intr, hw = posed.intrinsics, posed.hw
    for i, path in enumerate(posed.files):
        frame = {
            "file_path": _portable_path(path, out),
            "transform_matrix": to_homogeneous(c2w[i]).tolist(),
            "fl_x": float(intr[i, 0]), "fl_y": float(intr[i, 1]), "cx": float(intr[i, 2]), "cy": float(intr[i, 3]),
            "w": int(hw[i, 1]), "h": int(hw[i, 0]),
        }  # fmt: skip
        if posed.distortion is not None:
            frame.update(zip(("k1", "k2", "p1", "p2"), map(float, posed.distortion[i])))
        frames.append(frame)
    record = dict(posed.record)
    meta = {
        "camera_model": "OPENCV",
        "frames": frames,
        "ply_file_path": "sparse_pc.ply",
        "tnerf_photos": {
            "format": FORMAT,
            "images": str(images.resolve()),
            "image_fingerprint": image_fingerprint(files),
            "settings_key": settings_key(config),
            "poser": record.pop("poser"),
            "backbone": record.pop("backbone", None),
            "weights": record.pop("weights", None),
            "settings": {k: v for k, v in asdict(config).items() if k not in ("backbone", "weights")},
            **record,
            "scene_box": box.tolist(),
            f"{config.poser}_to_world": sim.to_dict(),  # the similarity from the poser's frame
            "points": int(xyz.shape[0]),
            "seconds": round(time.perf_counter() - start, 2),
        },
    }
    (tmp / "transforms.json").write_text(json.dumps(meta, indent=2))
    write_ply(tmp / "sparse_pc.ply", xyz.numpy(), posed.rgb.numpy())
    for name in ("sparse_pc.ply", "transforms.json"):  # transforms.json last: its presence means finished
        os.replace(tmp / name, out / name)
    shutil.rmtree(tmp, ignore_errors=True)
    CONSOLE.print(f"[green]{len(posed.files)} cameras and {xyz.shape[0]} points from {images} -> "
                  f"{out / 'transforms.json'}")  # fmt: skip
    return out / "transforms.json"


def default_cache_root() -> Path:
    """``$TNERF_PHOTOS_CACHE``, else ``$XDG_CACHE_HOME/tnerf_ns/photos``, else ``~/.cache/tnerf_ns/photos``."""
    if os.environ.get("TNERF_PHOTOS_CACHE"):
        return Path(os.environ["TNERF_PHOTOS_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "tnerf_ns" / "photos"


def cache_folder(images: Path, files: Sequence[Path], config: PosingConfig, fingerprint: str) -> Path:
    """``<cache root>/<folder name>-<path hash>-<content hash>-<settings hash>``: another folder, other photos or
    other settings never reuse cameras made for different input."""
    path_hash = hashlib.sha1(str(images.resolve()).encode()).hexdigest()[:8]
    return default_cache_root() / f"{images.resolve().name}-{path_hash}-{fingerprint[:12]}-{settings_key(config)}"


def ensure_transforms(
    images: Path, config: PosingConfig, output_dir: Optional[Path] = None, device: str = "auto"
) -> Path:
    """transforms.json for these photos: reused when it was made from the same photos (fingerprint), else made once."""
    files = list_images(images)
    fingerprint = image_fingerprint(files)
    out = output_dir or cache_folder(images, files, config, fingerprint)
    meta_file = out / "transforms.json"
    if meta_file.is_file():
        if made_from(meta_file, fingerprint, config):
            CONSOLE.print(f"reusing the cameras of {meta_file}")
            return meta_file
        CONSOLE.print(f"[yellow]{meta_file} was made from other photos or settings than these: making it again")
    return photos_to_transforms(images, out, config, device, files)


def made_from(meta_file: Path, fingerprint: str, config: PosingConfig) -> bool:
    """Whether a written transforms.json was posed from photos of this fingerprint with these settings (an
    unreadable or foreign file: no)."""
    try:
        record = json.loads(meta_file.read_text()).get("tnerf_photos", {})
    except (json.JSONDecodeError, AttributeError):
        record = {}
    return (record.get("image_fingerprint"), record.get("settings_key")) == (fingerprint, settings_key(config))


def run_posing_cli(cli: type) -> None:
    """Run a posing script's tyro dataclass (``cli(...).main()``); bad photos, weights or token budgets stop with a
    red message naming the file and exit code 2 instead of a traceback."""
    import sys

    import tyro

    from tnerf_ns.backbone import VGGTLoadError
    from tnerf_ns.backbone.preprocess import ImageInputError
    from tnerf_ns.posing.colmap import ColmapError
    from tnerf_ns.posing.predict import TokenBudgetError

    try:
        tyro.cli(cli).main()
    except (ImageInputError, VGGTLoadError, TokenBudgetError, ColmapError, ValueError) as err:
        CONSOLE.print(f"[red]error: {err}", soft_wrap=True)
        sys.exit(2)
