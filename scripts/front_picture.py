#!/usr/bin/env python
"""README's picture: a real scene's K source photos, the feed-forward prediction of a fixed held-out view, and that
view's ground truth, side by side, with the prediction's PSNR and the empty field's beside it.

    python scripts/front_picture.py --tnerf-checkpoint demo_output/runs/demo/tnerf/run/nerfstudio_models \
        --data ../shared/data/nerf_synthetic/lego --out docs/results/front/lego.png

Scene mode with 0 iterations, exactly as ``ns-train tnerf ... --max-num-iterations 0`` and ``ns-eval`` see it (the
same pipeline as ``scripts/compare_methods.py``'s feed-forward rows); the source views are the deterministic
farthest-point choice of the data manager, the view is the first of the held-out split's evenly spread views.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import CompareMethods  # noqa: E402

from tnerf_ns.evaluation.protocol import on_white, spread  # noqa: E402
from tnerf_ns.report import psnr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def to_uint8(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8))


def labelled(image: Image.Image, text: str) -> Image.Image:
    """The image with a white strip below it holding ``text``."""
    out = Image.new("RGB", (image.width, image.height + 18), "white")
    out.paste(image, (0, 0))
    ImageDraw.Draw(out).text((4, image.height + 3), text, fill=(0, 0, 0))
    return out


@dataclass
class FrontPicture:
    """Sources, feed-forward prediction and ground truth of one held-out view."""

    tnerf_checkpoint: Path
    """Trained T-NeRF head (file or nerfstudio_models folder)."""
    data: Path = REPO.parent / "shared/data/nerf_synthetic/lego"
    """Scene (Blender or nerfstudio format)."""
    out: Path = REPO / "docs/results/front/lego.png"
    """PNG to write."""
    source_views: int = 4
    """K."""
    scale: float = 0.5
    """Image scale (0.5: Blender scenes at 200x200, as in the comparisons)."""
    view: int = 0
    """Which of the 16 evenly spread held-out views to show."""

    def main(self) -> None:
        compare = CompareMethods(data=self.data, tnerf_checkpoint=self.tnerf_checkpoint, scale=self.scale,
                                 device="cpu")  # fmt: skip
        pipeline = compare.feed_forward_pipeline(self.source_views)
        dm = pipeline.datamanager
        entry = dm.eval_scenes[0]
        index = spread(len(dm.eval_dataset), 16)[self.view]
        camera = dm.eval_dataset.cameras[index : index + 1]
        with torch.no_grad():
            rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"].float().clamp(0, 1)
        truth = on_white(dm.eval_dataset.get_image_float32(index))
        gain, empty = psnr(rgb, truth), psnr(torch.ones_like(truth), truth)
        h, w = truth.shape[:2]
        tiles = [labelled(to_uint8(on_white(dm.train_dataset.get_image_float32(int(i)))).resize((w // 2, h // 2)),
                          f"source {int(i)}") for i in entry.source_indices]  # fmt: skip
        rows = (len(tiles) + 1) // 2
        sources = Image.new("RGB", (w, rows * (h // 2 + 18)), "white")
        for n, tile in enumerate(tiles):
            sources.paste(tile, ((n % 2) * (w // 2), (n // 2) * (h // 2 + 18)))
        panels = [sources, labelled(to_uint8(rgb), f"feed-forward K={len(tiles)}: {gain:.1f} dB"),
                  labelled(to_uint8(truth), f"ground truth (empty: {empty:.1f} dB)")]  # fmt: skip
        height = max(p.height for p in panels)
        figure = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), height), "white")
        x = 0
        for panel in panels:
            figure.paste(panel, (x, 0))
            x += panel.width + 8
        self.out.parent.mkdir(parents=True, exist_ok=True)
        figure.save(self.out)
        print(f"{self.out}: view {index} of {self.data.name}, sources {list(entry.source_indices)}, "
              f"prediction {gain:.2f} dB, empty field {empty:.2f} dB")  # fmt: skip


if __name__ == "__main__":
    tyro.cli(FrontPicture).main()
