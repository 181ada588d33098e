#!/usr/bin/env python
"""Speed of the grid volume renderer: rays/s and grid lookups/s on 160^3 scenes, 256^2 and 512^2 images.

    python scripts/benchmark_renderer.py                 # CPU (and CUDA when present)
    python scripts/benchmark_renderer.py --devices cuda --sizes 256 512 1024

Scenes are generated on the fly (one object scene, one room scene, seed 0). Each number is the median of
``--repeats`` renders after one warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import torch
import tyro
from rich.console import Console
from rich.table import Table

from tnerf_ns.benchmarking import median_seconds
from tnerf_ns.scenes.grid_renderer import GridVolume, render_view
from tnerf_ns.scenes.render_dataset import RenderSettings, cameras_for
from tnerf_ns.scenes.synthetic import generate_scene

CONSOLE = Console(width=140)


@dataclass
class BenchmarkRenderer:
    """Rays/s and samples/s of the grid renderer."""

    devices: List[str] = field(default_factory=lambda: ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    """Devices to measure."""
    sizes: List[int] = field(default_factory=lambda: [256, 512])
    """Square image sizes."""
    kinds: List[str] = field(default_factory=lambda: ["object", "room"])
    """Scene kinds."""
    max_res: int = 160
    """Grid resolution of the longest axis."""
    repeats: int = 3
    """Timed renders (median reported)."""

    def main(self) -> List[dict]:
        rows = []
        for kind in self.kinds:
            scene = generate_scene(0, 0, kind, False, self.max_res)[0]
            for device in self.devices:
                volume = GridVolume.from_scene(scene, device)
                for size in self.sizes:
                    poses, intr = cameras_for(scene, RenderSettings(views=4, height=size, width=size), seed=0)
                    c2w = torch.from_numpy(poses[1]).float()
                    args = (volume, c2w, intr.fx, intr.fy, intr.cx, intr.cy, size, size)
                    out = render_view(*args)  # warm-up; its lookup count is that of every render of the view
                    sec = median_seconds(lambda: render_view(*args), device, self.repeats)
                    rows.append(
                        {
                            "scene": f"{kind} {tuple(scene.grid_shape)}",
                            "device": device,
                            "image": f"{size}x{size}",
                            "ms": sec * 1e3,
                            "rays_per_s": size * size / sec,
                            "lookups_per_s": int(out["samples"]) / sec,
                            "lookups_per_ray": int(out["samples"]) / (size * size),
                        }
                    )
                    CONSOLE.print(rows[-1])
        table = Table(title="Grid renderer (half-voxel steps, empty-space skipping, early termination)")
        for col in ("scene", "device", "image", "ms / image", "rays/s", "grid lookups/s", "lookups/ray"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(
                r["scene"], r["device"], r["image"], f"{r['ms']:.0f}", f"{r['rays_per_s']:.3g}",
                f"{r['lookups_per_s']:.3g}", f"{r['lookups_per_ray']:.1f}",
            )  # fmt: skip
        CONSOLE.print(table)
        return rows


if __name__ == "__main__":
    tyro.cli(BenchmarkRenderer).main()
