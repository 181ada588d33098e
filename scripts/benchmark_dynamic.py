#!/usr/bin/env python
"""Time per extra time step with cached t0/t1 patch tokens versus a full re-encode of both photo groups.

python scripts/benchmark_dynamic.py                      # vggt-small, CPU
python scripts/benchmark_dynamic.py --config vggt-1b --device cuda --size 518 --frames 8
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import torch
import tyro
from rich.console import Console
from rich.table import Table

from tnerf_ns.backbone import build_vggt
from tnerf_ns.backbone.dynamic import DynamicVGGT
from tnerf_ns.benchmarking import median_seconds

CONSOLE = Console(width=120)


@dataclass
class BenchmarkDynamic:
    """Cached sequence step versus full re-encode."""

    config: str = "vggt-small"
    """Backbone config."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device."""
    frames: List[int] = field(default_factory=lambda: [4, 8])
    """Frames per time group."""
    size: int = 140
    """Square image size (multiple of 14)."""
    modes: List[str] = field(default_factory=lambda: ["lerp", "flow"])
    """Interpolation modes."""
    repeats: int = 5
    """Timed repeats (median)."""

    def main(self) -> List[dict]:
        vggt = build_vggt(self.config).to(self.device)
        rows = []
        for k in self.frames:
            a = torch.rand(k, 3, self.size, self.size, device=self.device)
            b = torch.rand(k, 3, self.size, self.size, device=self.device)
            for mode in self.modes:
                dyn = DynamicVGGT(vggt, mode, radius=2)
                with torch.no_grad():
                    pair = dyn.embed_pair(a, b)

                    device = torch.device(self.device)
                    step = median_seconds(lambda: dyn.forward_at(pair, 0.37, heads=["depth"]), device, self.repeats, 1)
                    full = median_seconds(lambda: dyn.forward_at(dyn.embed_pair(a, b), 0.37, heads=["depth"]), device,
                                          self.repeats, 1)  # fmt: skip
                rows.append({"frames": k, "mode": mode, "step_ms": step * 1e3, "full_ms": full * 1e3})
        table = Table(title=f"DynamicVGGT ({self.config}, {self.size} px, {self.device}, depth head)")
        for c in ("frames per group", "mode", "extra time step ms (cached tokens)", "full re-encode ms", "saving"):
            table.add_column(c, justify="right")
        for r in rows:
            table.add_row(str(r["frames"]), r["mode"], f"{r['step_ms']:.1f}", f"{r['full_ms']:.1f}",
                          f"{1 - r['step_ms'] / r['full_ms']:.0%}")  # fmt: skip
        CONSOLE.print(table)
        return rows


def markdown(rows: List[dict]) -> str:
    """The rows of :meth:`BenchmarkDynamic.main` as a markdown table."""
    lines = ["| frames per group | mode | extra time step ms (cached tokens) | full re-encode ms | saving |",
             "|---:|---|---:|---:|---:|"]  # fmt: skip
    lines += [f"| {r['frames']} | {r['mode']} | {r['step_ms']:.1f} | {r['full_ms']:.1f} | "
              f"{1 - r['step_ms'] / r['full_ms']:.0%} |" for r in rows]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    tyro.cli(BenchmarkDynamic).main()
