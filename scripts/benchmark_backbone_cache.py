#!/usr/bin/env python
"""What the on-disk backbone cache saves: the frozen aggregator's time versus writing and reading its outputs.

For each (config, frames, size): aggregator forward (median of ``--repeats`` after a warm-up), writing the entry,
and reading it back through a fresh cache handle (as another run or rank would; the OS page cache is warm, as it
is for a recently written entry on a local disk), plus the entry's size. Random weights (speed does not depend on
them).

    python scripts/benchmark_backbone_cache.py                                   # vggt-small, and VGGT-1B at 224
    python scripts/benchmark_backbone_cache.py --cases vggt-1b:8:518 --device cuda
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import torch
import tyro
from rich.console import Console

from tnerf_ns.backbone import build_vggt
from tnerf_ns.benchmarking import Stopwatch, median_seconds
from tnerf_ns.encoding.cache import BackboneOutputCache, weights_fingerprint

CONSOLE = Console(width=120)


@dataclass
class BenchmarkBackboneCache:
    """Aggregator forward versus on-disk cache write and read."""

    cases: List[str] = field(default_factory=lambda: ["vggt-small:4:140", "vggt-small:8:518", "vggt-1b:2:224"])
    """config:frames:width (square images)."""
    repeats: int = 3
    """Timed repetitions (median)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device of the forward pass."""

    def main(self) -> List[Dict]:
        device = torch.device(self.device)
        rows, models = [], {}
        for case in self.cases:
            try:
                name, frames, size = case.split(":")
                frames, size = int(frames), int(size)
            except ValueError as err:
                raise SystemExit(f"--cases {case!r}: expected config:frames:width, e.g. vggt-small:4:140") from err
            if name not in models:
                models.clear()  # one large model in memory at a time
                models[name] = build_vggt(name).to(device).eval()
            vggt = models[name]
            layers = vggt.config.intermediate_layer_idx
            images = torch.rand(frames, 3, size, size, device=device)
            with torch.no_grad(), tempfile.TemporaryDirectory() as folder:
                with Stopwatch() as fingerprint_watch:
                    fingerprint = weights_fingerprint(vggt, extra=repr(vggt.config))
                value = vggt.aggregate(images[None], layers)  # warm-up
                forward = median_seconds(lambda: vggt.aggregate(images[None], layers), device, self.repeats)
                cache = BackboneOutputCache(Path(folder), fingerprint, 2**40)
                key = cache.key(images, layers)
                write = median_seconds(lambda: cache.save(key, value), device, self.repeats)
                size_mb = cache.path(key).stat().st_size / 1e6
                read = median_seconds(
                    lambda: BackboneOutputCache(Path(folder), fingerprint, 2**40).get_or_compute(images, layers, None),
                    device, self.repeats,
                )  # fmt: skip
            rows.append({"config": name, "frames": frames, "size": size, "forward_s": forward, "write_s": write,
                         "read_s": read, "entry_mb": size_mb, "fingerprint_s": fingerprint_watch.seconds})  # fmt: skip
            CONSOLE.print(rows[-1])
        CONSOLE.print(markdown(rows, self.device))
        return rows


def markdown(rows: List[Dict], device: str) -> str:
    lines = [f"| config | frames | size | aggregator ms ({device}) | cache write ms | cache read ms | speed-up | "
             "entry MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['config']} | {r['frames']} | {r['size']} | {r['forward_s'] * 1e3:.1f} | "
                     f"{r['write_s'] * 1e3:.1f} | {r['read_s'] * 1e3:.1f} | {r['forward_s'] / r['read_s']:.0f}x | "
                     f"{r['entry_mb']:.1f} |")  # fmt: skip
    fingerprints = ", ".join(
        f"{r['config']} {r['fingerprint_s']:.2f} s" for r in {r["config"]: r for r in rows}.values()
    )
    lines.append(f"\nWeights fingerprint (once per run): {fingerprints}.")
    return "\n".join(lines)


if __name__ == "__main__":
    tyro.cli(BenchmarkBackboneCache).main()
