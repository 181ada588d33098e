#!/usr/bin/env python
"""Every speed benchmark in one markdown file (`make bench`): backbone, backbone disk cache, grid renderer, tri-plane
field, T-NeRF encoding scaling (time and peak memory versus the number of source views and versus image size), and
dynamic scenes (an extra time step from cached tokens versus a full re-encode).

    python scripts/benchmark_all.py --out docs/results/benchmarks.md            # CPU here (CUDA when present)
    python scripts/benchmark_all.py --quick                                      # tiny settings (smoke test)
"""

from __future__ import annotations

import datetime
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import psutil
import torch
import tyro
from benchmark_backbone import BenchmarkBackbone
from benchmark_backbone_cache import BenchmarkBackboneCache, markdown as cache_markdown
from benchmark_dynamic import BenchmarkDynamic, markdown as dynamic_markdown
from benchmark_field import BenchmarkField
from benchmark_renderer import BenchmarkRenderer
from rich.console import Console

from tnerf_ns.benchmarking import describe_machine, timed

CONSOLE = Console(width=120)


def machine_header(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- CPU: {cpu}, {psutil.cpu_count()} cores ({torch.get_num_threads()} torch threads), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
        f"- torch {torch.__version__}; device measured: {describe_machine(torch.device(device))}",
    ]
    return "\n".join(lines)


def encode_scaling(device: str, views: List[int], sizes: List[int], budget: float) -> List[dict]:
    """T-NeRF encoding (backbone + LatentHead + lifting) with the small config: seconds and peak memory."""
    from nerfstudio.data.scene_box import SceneBox

    from tnerf_ns.models.tnerf_model import TNeRFModelConfig
    from tnerf_ns.scene_context import SceneContext
    from tnerf_ns.scenes.camera_rigs import orbit_poses

    rows = []
    for size in sizes:
        model = (
            TNeRFModelConfig(
                backbone="vggt-small", compute_lpips=False, backbone_image_width=size, max_source_tokens=10**9
            )
            .setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0, -1, -1], [1, 1, 1]])), num_train_data=1)
            .to(device)
        )
        model.eval()
        last, last_k = None, 1
        for k in views:
            if last is not None and last * (k / last_k) ** 1.5 > budget:
                rows.append({"size": size, "views": k, "skipped": True})
                continue
            c2w = torch.from_numpy(orbit_poses(k, torch.zeros(3).numpy(), 3.0, seed=0)).float()
            intr = torch.tensor([[size * 1.2, 0, size / 2], [0, size * 1.2, size / 2], [0, 0, 1.0]]).expand(k, 3, 3)
            ctx = SceneContext(key=("bench", k, size), scene_idx=0, name="bench", images=torch.rand(k, 3, size, size),
                               alpha=torch.ones(k, size, size), c2w=c2w, intrinsics=intr.clone())  # fmt: skip
            with torch.no_grad():
                seconds, peak_bytes = timed(lambda: model.encoder(ctx), device, warmup=1, repeats=1)
            rows.append({"size": size, "views": k, "seconds": seconds, "peak_gb": peak_bytes / 1e9})
            CONSOLE.print(rows[-1])
            last, last_k = seconds, k
    return rows


@dataclass
class BenchmarkAll:
    """Run all benchmarks and write one markdown report."""

    out: Path = Path("docs/results/benchmarks.md")
    """Markdown file to write."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device of the scaling study (the sub-benchmarks measure CPU, and CUDA when present)."""
    views: List[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    """Source-view counts of the scaling study."""
    sizes: List[int] = field(default_factory=lambda: [140, 280, 518])
    """Backbone input widths of the scaling study."""
    budget_seconds: float = 30.0
    """Skip scaling cases predicted to take longer than this."""
    quick: bool = False
    """Tiny settings everywhere (smoke test)."""

    def main(self) -> str:
        if self.quick:
            backbone = BenchmarkBackbone(configs=["vggt-small"], frames=[1, 2], sizes=[28], repeats=1, device="cpu")
            renderer = BenchmarkRenderer(devices=["cpu"], sizes=[32], kinds=["object"], max_res=24, repeats=1)
            fieldb = BenchmarkField(devices=["cpu"], batch=4096, sizes=[24], repeats=1)
            views, sizes = [1, 2], [28]
            cache = BenchmarkBackboneCache(cases=["vggt-small:1:28"], repeats=1, device="cpu")
            dynamic = BenchmarkDynamic(frames=[2], size=28, repeats=1, device="cpu")
        else:
            backbone = BenchmarkBackbone(budget_seconds=self.budget_seconds)
            cache = BenchmarkBackboneCache(device=self.device)
            dynamic = BenchmarkDynamic(device=self.device)
            renderer, fieldb, views, sizes = BenchmarkRenderer(), BenchmarkField(), self.views, self.sizes
        sections = [f"# T-NeRF benchmarks\n\n{machine_header(self.device)}\n"]
        b = backbone.main()
        sections.append("## Backbone (VGGT forward; peak memory above the weights)\n\n| config | size | frames | "
                        "aggregator ms | aggregator peak GB | full ms | full peak GB |\n|---|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        for r in b:
            if r.get("skipped"):
                sections.append(f"| {r['config']} | {r['size']} | {r['frames']} | skipped (budget) | | | |")
            else:
                sections.append(f"| {r['config']} | {r['size']} | {r['frames']} | {r['aggregator_s'] * 1e3:.1f} | "
                                f"{r['aggregator_gb']:.2f} | {r['full_s'] * 1e3:.1f} | {r['full_gb']:.2f} |")  # fmt: skip
        sections.append("\n## On-disk backbone cache (frozen backbone: aggregator forward vs. reading its outputs)\n")
        sections.append(cache_markdown(cache.main(), cache.device))
        g = renderer.main()
        sections.append("\n## Grid renderer\n\n| scene | device | image | ms / image | rays/s | grid lookups/s |\n"
                        "|---|---|---|---:|---:|---:|")  # fmt: skip
        for r in g:
            sections.append(f"| {r['scene']} | {r['device']} | {r['image']} | {r['ms']:.0f} | {r['rays_per_s']:.3g} | "
                            f"{r['lookups_per_s']:.3g} |")  # fmt: skip
        f = fieldb.main()
        sections.append("\n## Tri-plane field and image rendering (48 + 96 field evaluations per ray; K: source views "
                        "the projection branch reads, 0 = planes alone)\n\n| device | K | "
                        "field fwd samples/s | fwd+bwd samples/s | " + " | ".join(f"{s}x{s} image ms" for s in
                                                                                   fieldb.sizes) + " |")  # fmt: skip
        sections.append("|---|---:|---:|---:|" + "---:|" * len(fieldb.sizes))
        for r in f:
            imgs = " | ".join("skipped" if r[f"img{s}_ms"] is None else f"{r[f'img{s}_ms']:.0f}" for s in fieldb.sizes)
            sections.append(
                f"| {r['device']} | {r['source_views']} | {r['fwd_samples_s']:.3g} | {r['fwd_bwd_samples_s']:.3g} | {imgs} |"
            )
        s = encode_scaling(self.device, views, sizes, self.budget_seconds)
        sections.append(f"\n## T-NeRF encoding scaling ({self.device}, vggt-small; backbone + LatentHead + lifting)\n\n"
                        "| backbone width | source views | seconds | peak GB |\n|---:|---:|---:|---:|")  # fmt: skip
        for r in s:
            if r.get("skipped"):
                sections.append(f"| {r['size']} | {r['views']} | skipped (budget) | |")
            else:
                sections.append(f"| {r['size']} | {r['views']} | {r['seconds']:.3f} | {r['peak_gb']:.2f} |")
        sections.append(f"\n## Dynamic scenes (DynamicVGGT, {dynamic.config}, {dynamic.size} px, {dynamic.device}, depth "
                        "head: an extra time step from cached t0/t1 tokens vs. a full re-encode)\n")  # fmt: skip
        sections.append(dynamic_markdown(dynamic.main()))
        text = "\n".join(sections) + "\n"
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(text)
        CONSOLE.print(text)
        return text


if __name__ == "__main__":
    tyro.cli(BenchmarkAll).main()
