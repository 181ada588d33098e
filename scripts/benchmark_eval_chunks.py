#!/usr/bin/env python
"""Seconds to render one evaluation view against the rays per chunk, for a per-scene baseline set up exactly as
``compare_methods.py`` sets it up (``make results`` step ``bench-eval-chunks``): the measurement behind its
1,024-ray chunks on the CPU.

The method is trained a few steps (nerfacto's evaluation cost does not depend on training: fixed sample counts), then
renders the same held-out view at each chunk size, after a warm-up on an 8x8 crop. The images must be identical: the
chunk size is a speed setting, not a quality one.

    python scripts/benchmark_eval_chunks.py --data ../shared/data/nerf_synthetic/lego --out docs/results/eval_chunks.md
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import torch
import tyro
from rich.console import Console

from tnerf_ns.benchmarking import Stopwatch, describe_machine
from tnerf_ns.compat import models_build_without_lpips_weights

CONSOLE = Console(width=120)
REPO = Path(__file__).resolve().parents[1]


@dataclass
class BenchmarkEvalChunks:
    """Time per evaluation view of a per-scene baseline against its rays per chunk."""

    data: Path = REPO.parent / "shared/data/nerf_synthetic/lego"
    """Scene folder (as for compare_methods.py)."""
    out: Path = Path("docs/results/eval_chunks.md")
    """Markdown file to write."""
    method: str = "nerfacto"
    """nerfstudio method, configured by compare_methods.py for the data."""
    chunks: List[int] = field(default_factory=lambda: [32768, 4096, 1024])
    """Rays per chunk to time (the method's default is marked)."""
    scale: float = 0.5
    """Image scale (0.5: lego at 200x200)."""
    steps: int = 3
    """Training steps before rendering."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device."""

    def main(self) -> List[Dict]:
        from compare_methods import NOVEL_SPLIT, CompareMethods
        from nerfstudio.configs.method_configs import all_methods
        from nerfstudio.engine.trainer import Trainer

        from tnerf_ns.evaluation.protocol import camera_renderer

        models_build_without_lpips_weights()  # nerfacto builds offline (NaN LPIPS, unused)
        default = int(all_methods[self.method].pipeline.model.eval_num_rays_per_chunk)
        with tempfile.TemporaryDirectory() as tmp:
            compare = CompareMethods(data=self.data, out=Path(tmp), scale=self.scale, device=self.device)
            trainer = Trainer(compare.baseline_config(self.method)[0], local_rank=0, world_size=1)
            trainer.setup()
            for step in range(self.steps):
                trainer.pipeline.train()
                trainer.train_iteration(step)
            pipeline = trainer.pipeline
            pipeline.eval()
            dataset = pipeline.datamanager.eval_dataset
            model = pipeline.model
            with torch.no_grad():
                crop = dataset.cameras[0:1].to(pipeline.device).generate_rays(camera_indices=0, keep_shape=True)
                model.get_outputs_for_camera_ray_bundle(crop[:8, :8])  # warm-up
                render, rows, first = camera_renderer(pipeline, dataset), [], None
                for chunk in self.chunks:
                    model.config.eval_num_rays_per_chunk = chunk
                    with Stopwatch(self.device) as watch:
                        image = render(0).cpu()
                    first = image if first is None else first
                    rows.append({"chunk": chunk, "seconds": watch.seconds, "identical": bool(torch.equal(image, first)),
                                 "size": list(image.shape[:2])})  # fmt: skip
                    CONSOLE.print(rows[-1])
        base = next((r["seconds"] for r in rows if r["chunk"] == default), None)
        h, w = rows[0]["size"]
        lines = [
            f"## Evaluation renders against rays per chunk ({self.method}, {self.data.name}, {NOVEL_SPLIT} view 0, "
            f"{h}x{w})",
            "",
            f"{describe_machine(self.device)}; settings as `compare_methods.py` uses them; one render per chunk size "
            f"after a warm-up; the method's default is {default:,} rays per chunk.",
            "",
            "| rays per chunk | seconds per view | speed-up over the default | image identical to the first row's |",
            "|---:|---:|---:|---|",
        ]
        for r in rows:
            speed = f"{base / r['seconds']:.2f}x" if base else "-"
            mark = " (default)" if r["chunk"] == default else ""
            lines.append(
                f"| {r['chunk']:,}{mark} | {r['seconds']:.1f} | {speed} | {'yes' if r['identical'] else 'no'} |"
            )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text("\n".join(lines) + "\n")
        CONSOLE.print("\n".join(lines))
        if not all(r["identical"] for r in rows):
            raise SystemExit(f"{self.out}: the chunk size changed the rendered image")
        return rows


if __name__ == "__main__":
    tyro.cli(BenchmarkEvalChunks).main()
