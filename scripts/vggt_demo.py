#!/usr/bin/env python
"""Run the VGGT backbone on a folder of images; write depth and confidence images and the predicted cameras.

Example (offline, small random-initialised config: the pictures are meaningless, every step is real)::

    python scripts/vggt_demo.py --images ../shared/data/nerf_synthetic/lego/train --out demo_output/vggt \
        --backbone vggt-small --max-images 4 --size 140

With the pre-trained weights (needs the Hugging Face Hub or a local copy of ``model.safetensors``)::

    python scripts/vggt_demo.py --images my_photos --out out --backbone vggt-1b --weights facebook/VGGT-1B
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
import tyro
from PIL import Image
from rich.console import Console

from tnerf_ns.backbone import VGGTLoadError, build_vggt, load_vggt
from tnerf_ns.backbone.preprocess import ImageInputError, list_images, load_images
from tnerf_ns.geometry import pose_encoding_to_extri_intri, pose_encoding_to_nerfstudio

CONSOLE = Console()


def colorize(values: np.ndarray, lo: Optional[float] = None, hi: Optional[float] = None) -> np.ndarray:
    """A float map to an 8-bit RGB image with the turbo colormap (robust percentiles by default)."""
    import matplotlib

    lo = float(np.percentile(values, 2)) if lo is None else lo
    hi = float(np.percentile(values, 98)) if hi is None else hi
    norm = np.clip((values - lo) / max(hi - lo, 1e-8), 0, 1)
    return (matplotlib.colormaps["turbo"](norm)[..., :3] * 255).astype(np.uint8)


@dataclass
class VGGTDemo:
    """Run VGGT on a folder of images and write depth/confidence pictures plus cameras.json."""

    images: Path
    """Folder of input images."""
    out: Path = Path("demo_output/vggt")
    """Output folder."""
    backbone: Literal["vggt-small", "vggt-1b"] = "vggt-small"
    """Architecture: the real VGGT-1B or the small random-initialised config."""
    weights: Optional[str] = None
    """Weights to load (Hugging Face repo id, file or folder); None: random init (only sensible for vggt-small)."""
    max_images: int = 4
    """Use at most this many images, spread evenly over the folder."""
    size: int = 140
    """Width the images are resized to (multiple of 14; 518 for VGGT-1B)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Torch device."""

    def main(self) -> None:
        files = list_images(self.images)
        if self.max_images > 0 and len(files) > self.max_images:
            pick = np.linspace(0, len(files) - 1, self.max_images).round().astype(int)
            files = [files[i] for i in pick]
        images = load_images(files, target=self.size).to(self.device)
        CONSOLE.print(f"{len(files)} images from {self.images} -> {tuple(images.shape)}")

        if self.weights is None:
            model = build_vggt(self.backbone)
            CONSOLE.print(f"[yellow]{self.backbone}: random weights (no --weights given)")
        else:
            model = load_vggt(self.weights, self.backbone)
        model = model.to(self.device)

        start = time.perf_counter()
        with torch.no_grad():
            out = model(images)
        elapsed = time.perf_counter() - start
        CONSOLE.print(f"forward: {elapsed:.2f} s")

        self.out.mkdir(parents=True, exist_ok=True)
        hw = tuple(images.shape[-2:])
        pose = out["pose_enc"][0]
        extr, intr = pose_encoding_to_extri_intri(pose, hw)
        c2w, _ = pose_encoding_to_nerfstudio(pose, hw)
        depth = out["depth"][0, ..., 0].cpu().numpy()
        conf = out["depth_conf"][0].cpu().numpy()
        frames = []
        for i, path in enumerate(files):
            stem = f"{i:03d}_{path.stem}"
            Image.fromarray((images[i].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)).save(
                self.out / f"{stem}_input.png"
            )
            Image.fromarray(colorize(depth[i])).save(self.out / f"{stem}_depth.png")
            Image.fromarray(colorize(np.log(conf[i]))).save(self.out / f"{stem}_conf.png")
            frames.append(
                {
                    "file_path": str(path),
                    "pose_enc": pose[i].tolist(),
                    "extrinsic_opencv_w2c": extr[i].tolist(),
                    "intrinsics": intr[i].tolist(),
                    "transform_matrix": c2w[i].tolist() + [[0.0, 0.0, 0.0, 1.0]],
                    "depth_range": [float(depth[i].min()), float(depth[i].max())],
                }
            )
        meta = {
            "backbone": self.backbone,
            "weights": self.weights,
            "image_hw": list(hw),
            "forward_seconds": elapsed,
            "note": "extrinsics are OpenCV camera-from-world in the first camera's frame; transform_matrix is "
            "nerfstudio/OpenGL camera-to-world",
            "frames": frames,
        }
        (self.out / "cameras.json").write_text(json.dumps(meta, indent=2))
        CONSOLE.print(f"[green]wrote {len(files)} depth/confidence images and cameras.json to {self.out}")


def entrypoint() -> None:
    try:
        tyro.cli(VGGTDemo).main()
    except (ImageInputError, VGGTLoadError, ValueError) as err:
        CONSOLE.print(f"[red]error: {err}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    entrypoint()
