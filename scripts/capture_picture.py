#!/usr/bin/env python
"""One novel view of a capture as a user gets it: T-NeRF feed-forward, T-NeRF refined, nerfacto, ground truth.

    python scripts/capture_picture.py --data ../shared/data/captures/fox --budget 180 \
        --out docs/results/capture/fox-methods.jpg

The configurations are ``scripts/compare_methods.py``'s (the shipped head unless ``--tnerf-checkpoint``; nerfacto with
nerfstudio's settings for real captures): the feed-forward prediction from ``--source-views`` photos, then T-NeRF
refined and nerfacto each trained for ``--budget`` seconds of wall clock on this machine (T-NeRF's clock includes
encoding), and the first of the novel split's ``--eval-views`` spread views rendered by each. Writes the strip (each
panel labelled with its PSNR) and ``<out>.json`` with the numbers and steps. Nothing else should run meanwhile: the
budgets are wall clock.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import tyro
from PIL import Image
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import CompareMethods, train_until  # noqa: E402
from front_picture import labelled, to_uint8  # noqa: E402

from tnerf_ns.compat import models_build_without_lpips_weights  # noqa: E402
from tnerf_ns.evaluation.protocol import camera_renderer, on_white, spread  # noqa: E402
from tnerf_ns.report import psnr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)


@dataclass
class CapturePicture:
    """Feed-forward, refined, nerfacto and ground truth of one novel view, side by side."""

    data: Path = REPO.parent / "shared/data/captures/fox"
    """Capture (nerfstudio-data folder or transforms file)."""
    out: Path = REPO / "docs/results/capture/fox-methods.jpg"
    """Image to write (and ``<out>.json``)."""
    work: Path = REPO / "results_output/capture_picture"
    """Training runs (git-ignored)."""
    tnerf_checkpoint: Optional[Path] = None
    """T-NeRF head; None: the shipped head."""
    source_views: int = 8
    """K, for the prediction and the refinement."""
    budget: float = 180.0
    """Seconds of training for the refined T-NeRF and for nerfacto."""
    scale: float = 0.5
    """Image scale (fox: half resolution, as in the comparison)."""
    eval_views: int = 8
    """The view shown is the first of this many spread over the novel split (the comparison's first view)."""
    occupancy_step: Optional[float] = 0.015625
    """T-NeRF's empty-space-skipping step (the comparison's)."""
    device: str = "cpu"
    """cpu or cuda."""

    def compare(self) -> CompareMethods:
        return CompareMethods(data=self.data, out=self.work, tnerf_checkpoint=self.tnerf_checkpoint,
                              source_views=[self.source_views], refine_views=self.source_views, budgets=[self.budget],
                              scale=self.scale, device=self.device, occupancy_step=self.occupancy_step,
                              eval_views=self.eval_views)  # fmt: skip

    def trained_render(self, make_config: Callable, view: int) -> tuple:
        """Train the config for --budget seconds of wall clock; the view's render and the steps made."""
        from nerfstudio.engine.trainer import Trainer

        start = time.perf_counter()
        trainer = Trainer(make_config(), local_rank=0, world_size=1)
        trainer.setup()
        step = train_until(trainer, start, self.budget, 0)
        trainer.pipeline.eval()
        with torch.no_grad():
            rgb = camera_renderer(trainer.pipeline, trainer.pipeline.datamanager.eval_dataset)(view)
        return rgb.float().cpu().clamp(0, 1), step

    def main(self) -> dict:
        models_build_without_lpips_weights()  # nerfacto builds offline (NaN LPIPS, unused)
        compare = self.compare()
        pipeline = compare.feed_forward_pipeline(self.source_views)
        dataset = pipeline.datamanager.eval_dataset
        view = spread(len(dataset), self.eval_views)[0]
        truth = on_white(dataset.get_image_float32(view))
        with torch.no_grad():
            panels = {"feed-forward": camera_renderer(pipeline, dataset)(view).float().cpu().clamp(0, 1)}
        del pipeline
        steps = {"feed-forward": 0}
        CONSOLE.rule(f"T-NeRF refined, {self.budget:g} s")
        label = f"T-NeRF refined, {self.budget:g} s"
        panels[label], steps[label] = self.trained_render(lambda: compare.with_views(compare.trainer_config("tnerf")),
                                                          view)  # fmt: skip
        CONSOLE.rule(f"nerfacto, {self.budget:g} s")
        label = f"nerfacto, {self.budget:g} s"
        panels[label], steps[label] = self.trained_render(lambda: compare.baseline_config("nerfacto")[0], view)
        scores = {name: psnr(image, truth) for name, image in panels.items()}
        tiles = [labelled(to_uint8(image), f"{name}: {scores[name]:.2f} dB") for name, image in panels.items()]
        tiles.append(labelled(to_uint8(truth), "ground truth"))
        strip = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)), "white")
        for n, tile in enumerate(tiles):
            strip.paste(tile, (sum(t.width for t in tiles[:n]), 0))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        strip.save(self.out, quality=90)
        result = {"data": str(self.data), "view": int(view), "source_views": self.source_views, "budget_s": self.budget,
                  "scale": self.scale, "image_size": list(truth.shape[:2]), "psnr": scores, "steps": steps,
                  "head": str(self.tnerf_checkpoint or "shipped head")}  # fmt: skip
        self.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
        CONSOLE.print(result)
        return result


if __name__ == "__main__":
    tyro.cli(CapturePicture).main()
