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

from tnerf_ns.evaluation.protocol import psnr, ssim

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

        config, pipeline, _, _ = eval_setup(self.load_config, test_mode="test")
        model = pipeline.model
        dataset = pipeline.datamanager.eval_dataset
        if dataset.cameras.times is None:
            raise ValueError(f"{self.load_config}: the evaluation data has no times (not a dynamic dataset)")
        indices = list(range(len(dataset)))
        if self.max_images is not None and len(indices) > self.max_images:
            indices = [indices[i] for i in np.linspace(0, len(indices) - 1, self.max_images).round().astype(int)]
        gts = {i: target_rgb(pipeline, dataset.get_image_float32(i)) for i in indices}
        times = {i: round(float(dataset.cameras.times[i, 0]), 4) for i in indices}
        inputs = {i: self._nearest_input(pipeline, dataset, i) for i in indices}  # None: not at a source pose
        split = {i: "source poses" if inputs[i] is not None else "other poses" for i in indices}
        results: Dict[str, Dict[str, Dict[float, Dict[str, float]]]] = {}
        renders: Dict[str, Dict[int, torch.Tensor]] = defaultdict(dict)
        figure_view = self._figure_view(dataset, indices)
        empty = model.renderer_rgb.blend_background(torch.zeros(4, device=pipeline.device)).cpu()
        baselines = {"empty field": lambda i: empty.expand_as(gts[i]),
                     "nearest input photo": lambda i: None if inputs[i] is None else target_rgb(pipeline, inputs[i])}  # fmt: skip
        for name, baseline in baselines.items():
            results[name] = self._scores(indices, gts, times, split, baseline)
        trained_mode = config.pipeline.model.interpolation_mode  # before the loop below changes it (same object)
        for mode in self.modes:
            model.config.interpolation_mode = mode
            model.encoder.plane_cache.clear()

            def render(i: int) -> torch.Tensor:
                with torch.no_grad():
                    return model.get_outputs_for_camera(dataset.cameras[i : i + 1].to(pipeline.device))["rgb"].cpu()

            rendered = {i: render(i) for i in track(indices, description=f"{mode:>7}", console=CONSOLE)}
            renders[mode] = {i: rendered[i] for i in figure_view}
            results[mode] = self._scores(indices, gts, times, split, rendered.get)
        scenes = len(pipeline.datamanager.eval_scenes)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "dynamic_eval.json").write_text(json.dumps({
            "trained_with": trained_mode, "held_out_scenes": scenes, "config": str(self.load_config),
            "results": {m: {sp: {str(t): v for t, v in r.items()} for sp, r in by.items()} for m, by in results.items()},
        }, indent=2))  # fmt: skip
        table = self._table(results, trained_mode, scenes)
        (self.out / "dynamic_eval.md").write_text(table)
        self._figure(figure_view, gts, renders, times)
        CONSOLE.print(table)
        return results

    @staticmethod
    def _nearest_input(pipeline, dataset, i: int) -> Optional[torch.Tensor]:
        """The input photo taken from the same pose at the nearer of t0 and t1, when view ``i`` sits at a source
        camera's pose; None otherwise."""
        provider = pipeline.datamanager.context_provider
        entry = provider.entry(provider.scene_for_camera(dataset.cameras[i : i + 1]))
        t = float(dataset.cameras.times[i, 0])
        sources = entry.sources_at(entry.time_values[0])
        poses = entry.dataset.cameras.camera_to_worlds[sources]
        match = (poses - dataset.cameras.camera_to_worlds[i]).abs().amax(dim=(1, 2)) < 1e-5
        if not bool(match.any()):
            return None
        position = int(match.nonzero()[0])
        at = entry.time_values[0] if t < 0.5 * (entry.time_values[0] + entry.time_values[-1]) else entry.time_values[-1]
        return entry.dataset.get_image_float32(entry.sources_at(at)[position])

    @staticmethod
    def _scores(indices, gts, times, split, render) -> Dict[str, Dict[float, Dict[str, float]]]:
        """Mean PSNR/SSIM per split (source poses / other poses) and time, of ``render(i)`` (None: not scored)."""
        per: Dict[str, Dict[float, List[tuple]]] = defaultdict(lambda: defaultdict(list))
        for i in indices:
            rgb = render(i)
            if rgb is None:
                continue
            gt = gts[i]
            per[split[i]][times[i]].append((psnr(rgb, gt), ssim(rgb, gt)))
        return {sp: {t: {"psnr": float(np.mean([v[0] for v in vals])), "ssim": float(np.mean([v[1] for v in vals])),
                         "views": len(vals)} for t, vals in sorted(by_t.items())} for sp, by_t in sorted(per.items())}  # fmt: skip

    @staticmethod
    def _figure_view(dataset, indices: List[int]) -> List[int]:
        """The eval views of the first held-out scene seen from its first camera position, ordered by time."""
        if not indices:
            return []
        c2w = dataset.cameras.camera_to_worlds
        first = indices[0]
        same = [i for i in indices if torch.allclose(c2w[i], c2w[first], atol=1e-5)]
        return sorted(same, key=lambda i: float(dataset.cameras.times[i, 0]))

    def _table(self, results: Dict, trained_mode: str, scenes: int) -> str:
        all_times = sorted({t for by in results.values() for r in by.values() for t in r})
        head = (
            "| views | mode | " + " | ".join(f"PSNR t={t:g}" for t in all_times) + " | mean PSNR | mean SSIM | views |"
        )
        lines = [head, "|---|---|" + "---:|" * (len(all_times) + 3)]
        for sp in ("source poses", "other poses"):
            for mode, by in results.items():
                r = by.get(sp)
                if not r:
                    continue
                cells = " | ".join(f"{r[t]['psnr']:.2f}" if t in r else "-" for t in all_times)
                views = sum(v["views"] for v in r.values())
                mean_p = np.average([v["psnr"] for v in r.values()], weights=[v["views"] for v in r.values()])
                mean_s = np.average([v["ssim"] for v in r.values()], weights=[v["views"] for v in r.values()])
                lines.append(f"| {sp} | {mode} | {cells} | {mean_p:.2f} | {mean_s:.3f} | {views} |")
        how = ("one checkpoint trained with a mode drawn at random per step" if trained_mode == "random"
               else f"one checkpoint trained with `{trained_mode}` (the other modes are used at evaluation only)")  # fmt: skip
        return (
            "\n".join(lines) + f"\n\n{scenes} held-out scenes; {how}. Source poses: views from the input cameras' "
            "poses at intermediate times (the nearest-input-photo baseline copies the input photo of that pose at "
            "the nearer of t0 and t1); other poses: every other held-out view. Empty field: the background "
            "only.\n"
        )

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
