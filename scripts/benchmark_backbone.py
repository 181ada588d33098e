#!/usr/bin/env python
"""Forward latency and peak memory of the VGGT backbone (random weights; speed does not depend on them).

For every config x image size x frame count: the aggregator alone and the full forward (camera + depth + point
heads), median of ``--repeats`` after ``--warmup`` runs, and peak memory above the weights (CUDA: allocator peak;
CPU: process RSS growth sampled every 5 ms). Cases whose predicted time exceeds ``--budget-seconds`` are skipped and marked so.

    python scripts/benchmark_backbone.py                              # CPU, both configs, budgeted
    python scripts/benchmark_backbone.py --device cuda --configs vggt-1b

Published anchor (official code, FlashAttention-3, one H100): aggregator, 8 frames at 518 -> 0.11 s, 3.23 GB.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import tyro
from rich.console import Console
from rich.table import Table

from tnerf_ns.backbone import build_vggt
from tnerf_ns.benchmarking import describe_machine, timed

CONSOLE = Console(width=140)


@dataclass
class BenchmarkBackbone:
    """Time and peak memory of the VGGT backbone."""

    configs: List[str] = field(default_factory=lambda: ["vggt-small", "vggt-1b"])
    """Backbone configs to measure."""
    frames: List[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    """Frame counts."""
    sizes: List[int] = field(default_factory=lambda: [224, 518])
    """Square image sizes (multiples of 14)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Torch device."""
    warmup: int = 1
    """Untimed runs before timing."""
    repeats: int = 3
    """Timed runs (the median is reported)."""
    budget_seconds: float = 20.0
    """Skip a case when the predicted time of one forward exceeds this (keeps CPU runs short)."""
    tf32: bool = False
    """Allow TF32 matmuls on CUDA (the aggregator runs in bf16 autocast anyway)."""

    def main(self) -> List[Dict]:
        device = torch.device(self.device)
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
        CONSOLE.print(f"[bold]VGGT backbone benchmark[/bold] on {describe_machine(device)}")
        rows: List[Dict] = []
        for name in self.configs:
            model = build_vggt(name).to(device)
            weights_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9
            CONSOLE.print(f"{name}: {weights_gb:.2f} GB of fp32 weights")
            last: Optional[Tuple[int, float]] = None  # (tokens, seconds) of the previous measured case
            for size in self.sizes:
                for frames in self.frames:
                    tokens = frames * (size // 14) ** 2
                    row = {"config": name, "size": size, "frames": frames}
                    # attention is quadratic in the tokens of a scene, the rest linear: predict conservatively
                    if last is not None and last[1] * (tokens / last[0]) ** 1.3 > self.budget_seconds:
                        row["skipped"] = True
                        rows.append(row)
                        continue
                    images = torch.rand(1, frames, 3, size, size, device=device)
                    with torch.no_grad():
                        agg_s, agg_mem = timed(lambda: model.aggregate(images), device, self.warmup, self.repeats)
                        full_s, full_mem = timed(lambda: model(images), device, self.warmup, self.repeats)
                    row.update(aggregator_s=agg_s, aggregator_gb=agg_mem / 1e9, full_s=full_s, full_gb=full_mem / 1e9)
                    rows.append(row)
                    last = (tokens, full_s)
                    CONSOLE.print(
                        f"{name} {size}px x{frames}: aggregator {agg_s * 1e3:.1f} ms, full {full_s * 1e3:.1f} ms, "
                        f"peak {full_mem / 1e9:.2f} GB"
                    )
            del model
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        self.print_table(rows, device)
        return rows

    def print_table(self, rows: List[Dict], device: torch.device) -> None:
        table = Table(title=f"VGGT forward ({describe_machine(device)}); peaks are above the weights")
        for col in ("config", "size", "frames", "aggregator ms", "aggregator peak GB", "full ms", "full peak GB"):
            table.add_column(col, justify="right")
        for r in rows:
            if r.get("skipped"):
                table.add_row(r["config"], str(r["size"]), str(r["frames"]), "skipped (budget)", "", "", "")
                continue
            table.add_row(
                r["config"],
                str(r["size"]),
                str(r["frames"]),
                f"{r['aggregator_s'] * 1e3:.1f}",
                f"{r['aggregator_gb']:.2f}",
                f"{r['full_s'] * 1e3:.1f}",
                f"{r['full_gb']:.2f}",
            )
        CONSOLE.print(table)


if __name__ == "__main__":
    tyro.cli(BenchmarkBackbone).main()
