"""``tnerf-photos``: a folder of photos without poses, posed by VGGT, for any nerfstudio method.

``ns-train tnerf tnerf-photos --data my_photos/`` (or ``nerfacto``, ``splatfacto`` ...). The first load runs VGGT on the
photos (:mod:`tnerf_ns.posing`) and writes ``transforms.json`` and ``sparse_pc.ply`` into ``--output-dir``, by default
a cache folder keyed by the photo folder's path, the photos' content and the posing settings (``$TNERF_PHOTOS_CACHE``,
else ``~/.cache/tnerf_ns/photos``), never into the photo folder (it may be read-only). Every later load with the same
photos and settings (``ns-eval``, ``ns-render``, ``ns-viewer`` re-run the dataparser) reuses that file, so the cameras
never change between runs. Parsing is nerfstudio's own ``nerfstudio-data`` parser on that file, with the written world
frame kept as is (no re-orientation or re-scaling) and the scene box taken from the predicted points.

Only dataparser code is imported at module level (nerfstudio discovers dataparsers while importing its datamanager);
VGGT is imported when the cameras are first made.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Type

import torch
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.scene_box import SceneBox


@dataclass
class TNeRFPhotosDataParserConfig(DataParserConfig):
    """Photos without poses: VGGT (or COLMAP) makes the cameras once, every later load reuses them."""

    _target: Type = field(default_factory=lambda: TNeRFPhotos)
    data: Path = Path("photos")
    """Folder of photos (png, jpg, ...); only read."""
    output_dir: Optional[Path] = None
    """Where transforms.json and sparse_pc.ply go; None: a cache folder keyed by the photo folder's path, the photos'
    content and the settings below ($TNERF_PHOTOS_CACHE, else ~/.cache/tnerf_ns/photos)."""
    backbone: Literal["vggt-1b", "vggt-small"] = "vggt-1b"
    """VGGT that predicts the cameras."""
    weights: Optional[str] = None
    """Its weights (Hugging Face repo id, file or folder); None: the preset's pre-trained default."""
    image_width: Optional[int] = None
    """Longer side of the photos given to VGGT (multiple of 14); None: the preset's (518 / 140)."""
    max_tokens: int = 100_000
    """Token budget of one VGGT pass; more photos go in chunks sharing the first photo as anchor."""
    chunking: bool = True
    """Allow anchored chunks beyond the budget (off: stop with an error naming the budget)."""
    posing_device: Literal["auto", "cpu", "cuda"] = "auto"
    """Device VGGT runs on when the cameras are made."""
    poser: Literal["vggt", "colmap"] = "vggt"
    """Who makes the cameras: VGGT, or COLMAP through pycolmap (real captures the small backbone cannot pose)."""
    eval_mode: Literal["fraction", "filename", "interval", "all"] = "interval"
    """Train/eval split of the photos (as nerfstudio-data); interval: every eval-interval-th photo is held out (the
    LLFF / Mip-NeRF 360 habit), so even a handful of photos has an eval photo."""
    train_split_fraction: float = 0.9
    """Fraction of photos for training (eval-mode fraction)."""
    eval_interval: int = 8
    """Every n-th photo (from the first) is an eval photo (eval-mode interval)."""
    load_3D_points: bool = True
    """Give the predicted points to the model (splatfacto initialises from them)."""


@dataclass
class TNeRFPhotos(DataParser):
    """Poses a photo folder with VGGT (once) and parses the result with nerfstudio's own parser."""

    config: TNeRFPhotosDataParserConfig

    def __init__(self, config: TNeRFPhotosDataParserConfig) -> None:
        super().__init__(config)
        self._transforms: Optional[Path] = None

    def posing_config(self):
        from tnerf_ns.posing import PosingConfig

        c = self.config
        return PosingConfig(backbone=c.backbone, weights=c.weights, image_width=c.image_width,
                            max_tokens=c.max_tokens, chunking=c.chunking, poser=c.poser)  # fmt: skip

    def transforms_file(self) -> Path:
        """transforms.json of the photos, made on the first call of this process (or found from an earlier run)."""
        if self._transforms is None:
            from tnerf_ns.posing import ensure_transforms

            self._transforms = ensure_transforms(
                Path(self.config.data), self.posing_config(), self.config.output_dir, self.config.posing_device
            )
        return self._transforms

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        meta_file = self.transforms_file()
        parser = NerfstudioDataParserConfig(
            data=meta_file.parent, orientation_method="none", center_method="none", auto_scale_poses=False,
            eval_mode=self.config.eval_mode, train_split_fraction=self.config.train_split_fraction,
            eval_interval=self.config.eval_interval, load_3D_points=self.config.load_3D_points,
        ).setup()  # fmt: skip
        outputs = parser.get_dataparser_outputs(split)
        box = scene_box(meta_file, outputs.dataparser_transform, outputs.dataparser_scale)
        return dataclasses.replace(outputs, scene_box=SceneBox(aabb=box))


def scene_box(meta_file: Path, transform: torch.Tensor, scale: float) -> torch.Tensor:
    """The recorded scene box in the parser's output frame (identity there; the bound of the moved corners
    otherwise)."""
    try:
        box = torch.tensor(json.loads(meta_file.read_text())["tnerf_photos"]["scene_box"], dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{meta_file}: no tnerf_photos.scene_box (not written by tnerf-photos?): {err!r}") from err
    if box.shape != (2, 3) or not bool((box[1] > box[0]).all()):
        raise ValueError(f"{meta_file}: bad scene box {box.tolist()}")
    corners = torch.cartesian_prod(*box.T)  # [8, 3]
    moved = (corners @ transform[:3, :3].T + transform[:3, 3]) * scale
    return torch.stack([moved.amin(0), moved.amax(0)])
