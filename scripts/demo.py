#!/usr/bin/env python
"""The CPU demo, end to end with the real command-line tools (``make demo``):

1. generate synthetic object scenes in the NeRF-MAE format;
2. render them into a multi-scene nerfstudio dataset;
3. ``ns-train tnerf`` with the small backbone config for a few minutes;
4. ``ns-eval`` on the held-out scenes (never seen in training);
5. ``ns-render`` a short spiral video around a held-out scene;
6. write ``REPORT.md``: metrics against the empty-field (background only) baseline, and an image grid
   (source views, prediction, ground truth).

Everything lands in ``--out`` (default ``demo_output/``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import tyro
from rich.console import Console

CONSOLE = Console(width=120)
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Demo:
    """T-NeRF CPU demo on generated data."""

    out: Path = Path("demo_output")
    """Output folder."""
    num_scenes: int = 24
    """Synthetic scenes (20 % held out)."""
    max_res: int = 64
    """Grid resolution of the scenes."""
    views: int = 16
    """Rendered views per scene."""
    size: int = 96
    """Image side in pixels."""
    iterations: int = 1200
    """Training iterations."""
    rays_per_batch: int = 512
    """Target rays per training step."""
    seed: int = 0
    """Seed of the scene generator."""
    device: str = "cpu"
    """Device type for training and evaluation (cpu or cuda)."""
    report_only: bool = False
    """Only rewrite the report of the run already in --out (no data, training or video)."""
    publish: bool = False
    """Also copy REPORT.md and the image grid to docs/results/demo/ (what the README shows)."""

    def run(self, name: str, args: List[str], timings: Dict[str, float]) -> None:
        CONSOLE.rule(f"[bold]{name}")
        CONSOLE.print(" ".join(args), soft_wrap=True)
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # ffmpeg, ns-* of this venv
        start = time.perf_counter()
        proc = subprocess.run(args, cwd=REPO, env=env, check=False)
        timings[name] = time.perf_counter() - start
        if proc.returncode != 0:
            CONSOLE.print(f"[red]{name} failed (exit {proc.returncode})")
            sys.exit(proc.returncode)

    def main(self) -> None:
        out = self.out if self.out.is_absolute() else REPO / self.out
        out.mkdir(parents=True, exist_ok=True)
        bin_dir = Path(sys.executable).parent
        py = sys.executable
        timings: Dict[str, float] = {}
        grids, scenes, runs = out / "grids", out / "scenes", out / "runs"
        if self.report_only:
            return self.report(out, runs / "demo" / "tnerf" / "run" / "config.yml", timings)
        self.run("generate scenes", [py, "scripts/make_synthetic_scenes.py", "--out", str(grids), "--num-scenes",
                 str(self.num_scenes), "--max-res", str(self.max_res), "--seed", str(self.seed)], timings)  # fmt: skip
        self.run("render scenes", [py, "scripts/render_scenes.py", "--scenes", str(grids), "--out", str(scenes),
                 "--views", str(self.views), "--size", f"{self.size}x{self.size}"], timings)  # fmt: skip
        shutil.rmtree(runs, ignore_errors=True)
        self.run("train (ns-train tnerf)", [
            str(bin_dir / "ns-train"), "tnerf", "--machine.device-type", self.device, "--pipeline.model.backbone",
            "vggt-small",
            "--max-num-iterations", str(self.iterations), "--output-dir", str(runs), "--experiment-name", "demo",
            "--timestamp", "run", "--steps-per-save", "500", "--steps-per-eval-image", "500",
            "--steps-per-eval-batch", "250", "--pipeline.datamanager.train-num-rays-per-batch", str(self.rays_per_batch),
            "tnerf-scenes", "--data", str(scenes),
        ], timings)  # fmt: skip
        config = runs / "demo" / "tnerf" / "run" / "config.yml"
        self.run("evaluate (ns-eval)", [str(bin_dir / "ns-eval"), "--load-config", str(config), "--output-path",
                 str(out / "eval.json"), "--render-output-path", str(out / "eval_images")], timings)  # fmt: skip
        self.run("render video (ns-render spiral)", [str(bin_dir / "ns-render"), "spiral", "--load-config", str(config),
                 "--output-path", str(out / "spiral.mp4"), "--seconds", "3", "--frame-rate", "8"], timings)  # fmt: skip

        self.report(out, config, timings)

    def report(self, out: Path, config: Path, timings: Dict[str, float]) -> None:
        CONSOLE.rule("[bold]report")
        saved = out / "timings.json"
        if timings:
            saved.write_text(json.dumps(timings, indent=2))
        elif saved.is_file():  # --report-only: the stages' times of the run that made these files
            timings = json.loads(saved.read_text())
        from nerfstudio.utils.eval_utils import eval_setup

        from tnerf_ns.report import empty_field_baseline, prediction_grid, shipped_head_metrics, write_report

        _, pipeline, _, _ = eval_setup(config, test_mode="test")
        baseline = empty_field_baseline(pipeline)
        grid = prediction_grid(pipeline, out / "predictions.png")
        shipped = shipped_head_metrics(config)
        text = write_report(out / "REPORT.md", out / "eval.json", baseline, grid, out / "spiral.mp4", timings=timings,
                            shipped=shipped)  # fmt: skip
        if shipped:
            (out / "shipped_head.json").write_text(json.dumps(shipped, indent=2))
        (out / "baseline.json").write_text(json.dumps(baseline, indent=2))
        CONSOLE.print(text)
        if self.publish:
            docs = REPO / "docs" / "results" / "demo"
            docs.mkdir(parents=True, exist_ok=True)
            for name in ("REPORT.md", "predictions.png", "eval.json", "baseline.json", "shipped_head.json"):
                if (out / name).is_file():
                    shutil.copyfile(out / name, docs / name)
            CONSOLE.print(f"published to {docs}")
        CONSOLE.print(f"[green]demo finished: {out / 'REPORT.md'}")


if __name__ == "__main__":
    tyro.cli(Demo).main()
