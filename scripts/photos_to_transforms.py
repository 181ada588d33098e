#!/usr/bin/env python
"""A folder of photos without poses to a nerfstudio dataset, with VGGT's predicted cameras (or COLMAP's).

Writes ``--out/transforms.json`` (OpenGL camera-to-world, per-frame intrinsics at each photo's own resolution, the
backbone and weights that made them, the scene box) and ``--out/sparse_pc.ply`` (confident predicted points, coloured),
usable by any nerfstudio method, e.g. ``ns-train nerfacto nerfstudio-data --data OUT --orientation-method none
--center-method none --auto-scale-poses False`` (or let the ``tnerf-photos`` dataparser do all of it)::

    python scripts/photos_to_transforms.py --images my_photos --out my_dataset                 # VGGT-1B from the Hub
    python scripts/photos_to_transforms.py --images my_photos --out my_dataset --backbone vggt-small
    python scripts/photos_to_transforms.py --images my_photos --out my_dataset --poser colmap   # pip install pycolmap
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from tnerf_ns.posing import PosingConfig, photos_to_transforms
from tnerf_ns.posing.colmap import ColmapCameraModel
from tnerf_ns.posing.convert import run_posing_cli


@dataclass
class PhotosToTransforms:
    """Pose a folder of photos with VGGT (or COLMAP) and write transforms.json + sparse_pc.ply."""

    images: Path
    """Folder of photos (only read)."""
    out: Path
    """Output folder (created)."""
    backbone: Literal["vggt-1b", "vggt-small"] = "vggt-1b"
    """VGGT architecture."""
    weights: Optional[str] = None
    """Hugging Face repo id, weights file or folder; None: the preset's pre-trained default; 'random': untrained."""
    image_width: Optional[int] = None
    """Longer side given to VGGT (multiple of 14); None: the preset's (518 / 140)."""
    max_tokens: int = 100_000
    """Token budget of one VGGT pass; beyond it the photos go in chunks sharing the first photo as anchor."""
    chunking: bool = True
    """Off: stop with an error instead of chunking when the budget is exceeded."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where VGGT runs."""
    poser: Literal["vggt", "colmap"] = "vggt"
    """vggt: the backbone above predicts the cameras; colmap: COLMAP through pycolmap (SIFT, matching, mapping), for
    real captures the small backbone cannot pose (docs/posefree.md); the sparse model is kept in OUT/colmap/sparse."""
    colmap_camera_model: ColmapCameraModel = "OPENCV"
    """COLMAP's camera model, one camera for every photo."""
    colmap_matching: Literal["exhaustive", "sequential"] = "exhaustive"
    """COLMAP's matching: every pair, or neighbours in file order (video frames)."""

    def main(self) -> None:
        config = PosingConfig(backbone=self.backbone, weights=self.weights, image_width=self.image_width,
                              max_tokens=self.max_tokens, chunking=self.chunking, poser=self.poser,
                              colmap_camera_model=self.colmap_camera_model,
                              colmap_matching=self.colmap_matching)  # fmt: skip
        photos_to_transforms(self.images, self.out, config, self.device)


def entrypoint() -> None:
    run_posing_cli(PhotosToTransforms)


if __name__ == "__main__":
    entrypoint()
