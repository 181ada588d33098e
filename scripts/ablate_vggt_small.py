#!/usr/bin/env python
"""T-NeRF on three vggt-small backbones, same scenes, same steps: frozen pre-trained (the shipped weights, outputs
cached), trained jointly from scratch, frozen random. Scored on held-out scenes and in scene mode on Blender lego
and mic (0 iterations) by ``scripts/evaluate_source_views.py``.

    python scripts/ablate_vggt_small.py --out demo_output/vggt_ablation --iterations 1200
    python scripts/ablate_vggt_small.py --out /tmp/abl --num-scenes 3 --views 4 --size 32 --iterations 5 \\
        --scene-images 1 --no-publish                    # smoke run

Writes ``OUT/ablation.md`` (and ``docs/results/vggt_small/ablation.md`` unless ``--no-publish``) with each run's
training wall time beside its scores: the frozen runs cost less per step (head, field and rendering only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import tyro
from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "nerf_synthetic"
CONSOLE = Console(width=120)
VARIANTS: Dict[str, List[str]] = {
    "frozen-pretrained": [],  # the preset default: shipped weights, frozen, cached, head from the point head
    "joint-from-scratch": ["--pipeline.model.backbone-weights", "None"],
    "frozen-random": ["--pipeline.model.backbone-weights", "None", "--pipeline.model.train-backbone", "False"],
}


@dataclass
class AblateVGGTSmall:
    """Frozen pre-trained vs jointly trained vs frozen random vggt-small under T-NeRF."""

    out: Path = Path("demo_output/vggt_ablation")
    num_scenes: int = 24
    """Generated object scenes (20 % held out), as in the CPU demo."""
    views: int = 16
    size: int = 96
    max_res: int = 96
    iterations: int = 1200
    """ns-train steps of every variant."""
    rays_per_batch: int = 512
    eval_views: List[int] = field(default_factory=lambda: [4])
    """Source-view counts K scored."""
    scene_images: int = 4
    """Test views per Blender scene."""
    blender_scenes: List[Path] = field(default_factory=lambda: [SHARED / "lego", SHARED / "mic"])
    publish: bool = True
    """Copy the table to docs/results/vggt_small/ablation.md."""

    def run(self, args: List[str]) -> float:
        CONSOLE.print(" ".join(args), soft_wrap=True)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        start = time.perf_counter()
        proc = subprocess.run(args, cwd=REPO, env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{args[1]} failed (exit {proc.returncode})")
        return time.perf_counter() - start

    def main(self) -> None:
        out = self.out.resolve()
        py, bin_dir = sys.executable, Path(sys.executable).parent
        grids, scenes = out / "grids", out / "scenes"
        self.run([py, "scripts/make_synthetic_scenes.py", "--out", str(grids), "--num-scenes", str(self.num_scenes),
                  "--max-res", str(self.max_res)])  # fmt: skip
        self.run([py, "scripts/render_scenes.py", "--scenes", str(grids), "--out", str(scenes), "--views",
                  str(self.views), "--size", f"{self.size}x{self.size}"])  # fmt: skip
        seconds = {}
        for name, flags in VARIANTS.items():
            seconds[name] = self.run([
                str(bin_dir / "ns-train"), "tnerf", "--machine.device-type", "cpu", "--pipeline.model.backbone",
                "vggt-small", *flags, "--max-num-iterations", str(self.iterations), "--output-dir", str(out / "runs"),
                "--experiment-name", name, "--timestamp", "run", "--steps-per-save", str(self.iterations),
                "--steps-per-eval-image", str(10 * self.iterations), "--steps-per-eval-batch", str(10 * self.iterations),
                "--pipeline.datamanager.train-num-rays-per-batch", str(self.rays_per_batch), "--vis", "tensorboard",
                "tnerf-scenes", "--data", str(scenes),
            ])  # fmt: skip
            config = out / "runs" / name / "tnerf" / "run" / "config.yml"
            self.run([py, "scripts/evaluate_source_views.py", "--config", str(config), "--label", name, "--out",
                      str(out / "eval"), "--views", *map(str, self.eval_views), "--scene-images",
                      str(self.scene_images), "--blender-scenes", *map(str, self.blender_scenes)])  # fmt: skip
        text = self.table(out / "eval", seconds)
        (out / "ablation.md").write_text(text)
        if self.publish:
            docs = REPO / "docs" / "results" / "vggt_small"
            docs.mkdir(parents=True, exist_ok=True)
            (docs / "ablation.md").write_text(text)
        CONSOLE.print(text)

    def table(self, folder: Path, seconds: Dict[str, float]) -> str:
        lines = [
            f"{self.num_scenes} generated object scenes ({self.views} views, {self.size} px; 20 % held out), "
            f"{self.iterations} ns-train steps per variant on this CPU; feed-forward PSNR / SSIM (0 iterations), "
            "beside the empty field (background only).",
            "",
            "| backbone | training wall time (s) | data | K | PSNR | SSIM | empty-field PSNR |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for name in VARIANTS:
            results = json.loads((folder / f"{name}.json").read_text())
            for data, rows in results.items():
                if not isinstance(rows, dict):
                    continue
                label = "held-out scenes" if data == "held_out" else f"{data} (scene mode)"
                for k, r in rows.items():
                    lines.append(f"| {name} | {seconds[name]:.0f} | {label} | {k[2:]} | {r['psnr']:.2f} | "
                                 f"{r['ssim']:.3f} | {r['empty_psnr']:.2f} |")  # fmt: skip
        return "\n".join(lines) + "\n"


if __name__ == "__main__":
    tyro.cli(AblateVGGTSmall).main()
