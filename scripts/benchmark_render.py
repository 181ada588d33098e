#!/usr/bin/env python
"""Rendering speed of a trained T-NeRF: the reference path (48 uniform + 48 importance samples per ray) against
empty-space skipping (per-scene occupancy grid, fine steps in occupied cells, early termination).

Both paths render the same evaluation views (PSNR against the ground truth, beside the empty field) and one view at
400x400 and 800x800 (time per image, after the scene's encoding and occupancy grid are built: those are one-off per
scene and reported apart). The last line is

    speedup <X>x at PSNR difference <D> dB (reference <P> dB, empty field <E> dB)

with X = reference time / fast time at 800x800 and D = fast - reference PSNR.

    python scripts/benchmark_render.py --config demo_output/runs/demo/tnerf/run/config.yml
    python scripts/benchmark_render.py --quick      # trains a tiny model itself (must beat the empty field by 3 dB)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch
import tyro
from rich.console import Console

from tnerf_ns.benchmarking import Stopwatch, describe_machine

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)
DEMO_CONFIG = REPO / "demo_output/runs/demo/tnerf/run/config.yml"
QUICK_MARGIN_DB = 3.0


def train_quick_model(root: Path, device: str) -> Path:
    """A tiny tnerf on four generated scenes (the test suite's settings, default sample counts); its config.yml."""
    from nerfstudio.scripts.train import _set_random_seed

    from tnerf_ns.configs import apply_tiny_settings, tnerf_trainer_config

    py = sys.executable
    for cmd in (
        [py, "scripts/make_synthetic_scenes.py", "--out", str(root / "grids"), "--num-scenes", "4", "--max-res", "24"],
        [py, "scripts/render_scenes.py", "--scenes", str(root / "grids"), "--out", str(root / "scenes"), "--views",
         "6", "--size", "32x32"],
    ):  # fmt: skip
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    config = apply_tiny_settings(tnerf_trainer_config())
    config.pipeline.model.num_coarse_samples = config.pipeline.model.num_fine_samples = 48
    config.machine.device_type = "cuda" if device == "cuda" else "cpu"
    config.max_num_iterations = 150
    config.output_dir, config.experiment_name, config.timestamp, config.vis = (
        root / "runs",
        "quick",
        "run",
        "tensorboard",
    )
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 10**6
    config.pipeline.model.compute_lpips = False
    config.pipeline.datamanager.data = config.pipeline.datamanager.dataparser.data = root / "scenes"
    config.save_config()
    _set_random_seed(config.machine.seed)  # as ns-train does: the same tiny model every run
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    return config.get_base_dir() / "config.yml"


@dataclass
class BenchmarkRender:
    """Reference path against empty-space skipping on a trained checkpoint."""

    config: Optional[Path] = None
    """config.yml of a trained run (default: make demo's, when it exists)."""
    quick: bool = False
    """Train a tiny model here instead (smoke test; it must beat the empty field by 3 dB)."""
    views: int = 8
    """Evaluation views scored (spread over the evaluation split)."""
    sizes: List[int] = field(default_factory=lambda: [400, 800])
    """Square image sizes timed."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    out: Optional[Path] = None
    """Also write the table and the summary line to this markdown file."""
    rays_per_chunk: Optional[int] = None
    """Rays rendered per chunk (None: the run's eval_num_rays_per_chunk, 4,096 by default; a GPU wants more)."""

    def main(self) -> Dict[str, Dict[str, float]]:
        from nerfstudio.utils.eval_utils import eval_setup

        from tnerf_ns.report import empty_field_baseline, psnr, target_rgb

        with tempfile.TemporaryDirectory() as tmp:
            config = train_quick_model(Path(tmp), self.device) if self.quick else (self.config or DEMO_CONFIG)
            if not Path(config).is_file():
                raise SystemExit(f"{config}: no trained run (run `make demo`, pass --config, or use --quick)")
            _, pipeline, _, _ = eval_setup(Path(config), self.rays_per_chunk, test_mode="test")
            model, dataset = pipeline.model, pipeline.datamanager.eval_dataset
            n = len(dataset)
            indices = sorted({round(i * (n - 1) / max(self.views - 1, 1)) for i in range(min(self.views, n))})
            empty = empty_field_baseline(pipeline)["psnr"]
            evaluations = [0]
            decode = model.field.decode

            def counting_decode(planes, points, directions=None):
                evaluations[0] += points.shape[0]
                return decode(planes, points, directions)

            model.field.decode = counting_decode
            results: Dict[str, Dict[str, float]] = {}
            for sampler in ("hierarchical", "occupancy"):
                model.config.eval_sampler = sampler
                model.encoder.plane_cache.clear()
                model.occupancy_cache.clear()
                row: Dict[str, float] = {}
                camera0 = dataset.cameras[0:1].to(pipeline.device)
                with Stopwatch(self.device) as first:  # encoding (and the occupancy grid): once per scene
                    model.get_outputs_for_camera(camera0)
                row["first_image_s"] = first.seconds
                for i in indices:  # every scene's encoding (and occupancy grid) exists before counting
                    model.get_outputs_for_camera(dataset.cameras[i : i + 1].to(pipeline.device))
                evaluations[0], rays, scores = 0, 0, []
                for i in indices:
                    camera = dataset.cameras[i : i + 1].to(pipeline.device)
                    out = model.get_outputs_for_camera(camera)
                    rays += out["rgb"].shape[0] * out["rgb"].shape[1]
                    scores.append(psnr(out["rgb"].cpu(), target_rgb(pipeline, dataset.get_image_float32(i))))
                row["psnr"] = sum(scores) / len(scores)
                row["evaluations_per_ray"] = evaluations[0] / max(rays, 1)
                for size in self.sizes:
                    camera = dataset.cameras[0:1]
                    camera.rescale_output_resolution(size / float(camera.width[0, 0]))
                    with Stopwatch(self.device) as watch:
                        model.get_outputs_for_camera(camera.to(pipeline.device))
                    row[f"ms_{size}"] = watch.seconds * 1e3
                results[sampler] = row
                CONSOLE.print(f"{sampler}: {row}")
            model.field.decode = decode
        self.report(results, empty, Path(config), pipeline.model.config.eval_num_rays_per_chunk)
        return results

    def report(self, results: Dict[str, Dict[str, float]], empty: float, config: Path, chunk: int) -> None:
        ref, fast = results["hierarchical"], results["occupancy"]
        config = config.resolve()
        shown = config.relative_to(REPO) if config.is_relative_to(REPO) else config
        lines = [
            "## Rendering paths" + (f", {chunk} rays per chunk" if self.rays_per_chunk else ""),
            "",
            f"Run `{shown}`; {describe_machine(self.device)}; {chunk} rays per chunk; PSNR over {self.views} evaluation views at the data's "
            "resolution; times per image after the scene's encoding and occupancy grid exist (first image: both).",
            "",
            "| path | field evaluations / ray | " + " | ".join(f"ms {s}x{s}" for s in self.sizes)
            + " | first image s (encode + grid) | PSNR | empty field PSNR |",
            "|---|---:|" + "---:|" * len(self.sizes) + "---:|---:|---:|",
        ]  # fmt: skip
        for name, r in results.items():
            times = " | ".join(f"{r[f'ms_{s}']:.0f}" for s in self.sizes)
            lines.append(f"| {name} | {r['evaluations_per_ray']:.1f} | {times} | {r['first_image_s']:.2f} | "
                         f"{r['psnr']:.2f} | {empty:.2f} |")  # fmt: skip
        if self.quick and ref["psnr"] < empty + QUICK_MARGIN_DB:
            raise SystemExit(f"the quick model did not learn: {ref['psnr']:.2f} dB vs empty field {empty:.2f} dB")
        big = max(self.sizes)
        speedup = ref[f"ms_{big}"] / fast[f"ms_{big}"]
        difference = round(fast["psnr"] - ref["psnr"], 2) + 0.0  # no "-0.00"
        lines += ["", f"speedup {speedup:.2f}x at PSNR difference {difference:.2f} dB "
                      f"(reference {ref['psnr']:.2f} dB, empty field {empty:.2f} dB)"]  # fmt: skip
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text("\n".join(lines) + "\n")
        print("\n".join(lines[2:]), flush=True)


if __name__ == "__main__":
    tyro.cli(BenchmarkRender).main()
