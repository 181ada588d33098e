#!/usr/bin/env python
"""Score token interpolation on held-out dynamic scenes: PSNR/SSIM at intermediate times for nearest, lerp and flow.

    python scripts/evaluate_dynamic.py --load-config outputs/dyn/tnerf-dynamic/<run>/config.yml --out results/dynamic

One trained ``tnerf-dynamic`` checkpoint is evaluated with each interpolation mode (only the inference-time token
interpolation changes). Writes ``dynamic_eval.md`` (table), ``dynamic_eval.json`` and ``dynamic_frames.png`` (one
held-out view across time: ground truth and every mode).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import tyro
from PIL import Image, ImageDraw
from rich.console import Console
from rich.progress import track
from torchmetrics.functional import structural_similarity_index_measure

from tnerf_ns.report import psnr

CONSOLE = Console(width=120)
MODES = ("nearest", "lerp", "flow")


@dataclass
class EvaluateDynamic:
    """PSNR/SSIM of each interpolation mode at the intermediate times of held-out dynamic scenes."""

    load_config: Path
    """config.yml of a trained tnerf-dynamic run."""
    out: Path = Path("dynamic_eval")
    """Output folder."""
    modes: List[str] = field(default_factory=lambda: list(MODES))
    """Interpolation modes to compare."""
    max_images: Optional[int] = None
    """Evaluate at most this many views (spread over the eval set) to bound CPU time."""

    def main(self) -> Dict:
        from nerfstudio.utils.eval_utils import eval_setup

        from tnerf_ns.report import target_rgb

        _, pipeline, _, _ = eval_setup(self.load_config, test_mode="test")
        model = pipeline.model
        dataset = pipeline.datamanager.eval_dataset
        if dataset.cameras.times is None:
            raise ValueError(f"{self.load_config}: the evaluation data has no times (not a dynamic dataset)")
        indices = list(range(len(dataset)))
        if self.max_images is not None and len(indices) > self.max_images:
            indices = [indices[i] for i in np.linspace(0, len(indices) - 1, self.max_images).round().astype(int)]
        gts = {i: target_rgb(pipeline, dataset.get_image_float32(i)) for i in indices}
        times = {i: round(float(dataset.cameras.times[i, 0]), 4) for i in indices}
        results: Dict[str, Dict[float, Dict[str, float]]] = {}
        renders: Dict[str, Dict[int, torch.Tensor]] = defaultdict(dict)
        figure_view = self._figure_view(dataset, indices)
        for mode in self.modes:
            model.config.interpolation_mode = mode
            model.encoder.plane_cache.clear()
            per_time: Dict[float, List[tuple]] = defaultdict(list)
            for i in track(indices, description=f"{mode:>7}", console=CONSOLE):
                with torch.no_grad():
                    rgb = model.get_outputs_for_camera(dataset.cameras[i : i + 1].to(pipeline.device))["rgb"].cpu()
                gt = gts[i]
                ssim = structural_similarity_index_measure(rgb.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None],
                                                           data_range=1.0)  # fmt: skip
                per_time[times[i]].append((psnr(rgb, gt), float(ssim)))
                if i in figure_view:
                    renders[mode][i] = rgb
            results[mode] = {t: {"psnr": float(np.mean([v[0] for v in vals])), "ssim": float(np.mean([v[1] for v in vals])),
                                 "views": len(vals)} for t, vals in sorted(per_time.items())}  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "dynamic_eval.json").write_text(json.dumps({m: {str(t): v for t, v in r.items()} for m, r in
                                                                 results.items()}, indent=2))  # fmt: skip
        table = self._table(results)
        (self.out / "dynamic_eval.md").write_text(table)
        self._figure(figure_view, gts, renders, times)
        CONSOLE.print(table)
        return results

    @staticmethod
    def _figure_view(dataset, indices: List[int]) -> List[int]:
        """The eval views of the first held-out scene seen from its first camera position, ordered by time."""
        if not indices:
            return []
        c2w = dataset.cameras.camera_to_worlds
        first = indices[0]
        same = [i for i in indices if torch.allclose(c2w[i], c2w[first], atol=1e-5)]
        return sorted(same, key=lambda i: float(dataset.cameras.times[i, 0]))

    def _table(self, results: Dict) -> str:
        all_times = sorted({t for r in results.values() for t in r})
        head = "| mode | " + " | ".join(f"PSNR t={t:g}" for t in all_times) + " | mean PSNR | mean SSIM |"
        lines = [head, "|---|" + "---:|" * (len(all_times) + 2)]
        for mode, r in results.items():
            ps = [r[t]["psnr"] for t in all_times if t in r]
            ss = [r[t]["ssim"] for t in all_times if t in r]
            cells = " | ".join(f"{r[t]['psnr']:.2f}" if t in r else "-" for t in all_times)
            lines.append(f"| {mode} | {cells} | {np.mean(ps):.2f} | {np.mean(ss):.3f} |")
        views = sum(v["views"] for v in next(iter(results.values())).values())
        return "\n".join(lines) + f"\n\n{views} held-out views at intermediate times per mode.\n"

    def _figure(self, view: List[int], gts, renders, times, tile: int = 96) -> None:
        if not view:
            return
        rows = [("ground truth", [gts[i] for i in view])] + [(m, [renders[m][i] for i in view]) for m in self.modes]
        label_w = 90
        grid = Image.new("RGB", (label_w + len(view) * (tile + 4), 16 + len(rows) * (tile + 4)), "white")
        draw = ImageDraw.Draw(grid)
        for c, i in enumerate(view):
            draw.text((label_w + c * (tile + 4) + 4, 2), f"t = {times[i]:g}", fill=(0, 0, 0))
        for r, (name, images) in enumerate(rows):
            y = 16 + r * (tile + 4)
            draw.text((4, y + tile // 2), name, fill=(0, 0, 0))
            for c, img in enumerate(images):
                arr = (img.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
                grid.paste(Image.fromarray(arr).resize((tile, tile)), (label_w + c * (tile + 4), y))
        grid.save(self.out / "dynamic_frames.png")


if __name__ == "__main__":
    tyro.cli(EvaluateDynamic).main()
