#!/usr/bin/env python
"""Speed of the tri-plane field and of full-image rendering with the tnerf model's sampler and renderers.

* field samples/s: the shared MLP decoding tri-plane lookups (forward, and forward + backward), with the planes alone
  and with the projection branch reading K source views (``--source-views``; 400 px photos, maps at the backbone's
  140 px): the per-sample cost of the branch;
* time to render one image (hierarchical sampling, default 48 + 48 samples per ray) at 400x400 and 800x800.

    python scripts/benchmark_field.py                         # CPU (+ CUDA when present)
    python scripts/benchmark_field.py --devices cuda --sizes 400 800

Goal on an H100: an 800x800 image in <= 50 ms. Timings are medians after a warm-up; cases predicted to take longer
than ``--budget-seconds`` are skipped (CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import List

import torch
import tyro
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.scene_box import SceneBox
from rich.console import Console
from rich.table import Table

from tnerf_ns.benchmarking import median_seconds
from tnerf_ns.fields.source_projection import SourceViews, TriplaneScene, planes_of
from tnerf_ns.models.tnerf_model import TNeRFModelConfig
from tnerf_ns.scenes.camera_rigs import look_at_opengl

CONSOLE = Console(width=140)


@dataclass
class BenchmarkField:
    """Tri-plane field and image rendering speed."""

    devices: List[str] = field(default_factory=lambda: ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    """Devices to measure."""
    batch: int = 1 << 18
    """Samples per field call."""
    sizes: List[int] = field(default_factory=lambda: [400, 800])
    """Square image sizes rendered."""
    repeats: int = 3
    """Timed repeats (median reported)."""
    budget_seconds: float = 120.0
    """Skip an image size whose predicted render time exceeds this."""
    source_views: List[int] = field(default_factory=lambda: [0, 8])
    """K of the projection branch's source views (0: the planes alone)."""

    def main(self) -> List[dict]:
        rows = []
        for device in self.devices:
            model = (
                TNeRFModelConfig(backbone="vggt-small", compute_lpips=False)
                .setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0, -1, -1], [1, 1, 1]])), num_train_data=1)
                .to(device)
            )
            model.eval()
            for k in self.source_views:
                rows.append(self.measure(model, device, k))
        table = Table(title="Tri-plane field (48 coarse + 96 fine field evaluations per ray)")
        cols = ["device", "source views K", "field fwd samples/s", "field fwd+bwd samples/s"]
        cols += [f"{s}x{s} image ms" for s in self.sizes]
        for c in cols:
            table.add_column(c, justify="right")
        for r in rows:
            imgs = [("skipped" if r[f"img{s}_ms"] is None else f"{r[f'img{s}_ms']:.0f}") for s in self.sizes]
            table.add_row(r["device"], str(r["source_views"]), f"{r['fwd_samples_s']:.3g}",
                          f"{r['fwd_bwd_samples_s']:.3g}", *imgs)  # fmt: skip
        CONSOLE.print(table)
        return rows

    def measure(self, model, device: str, k: int) -> dict:
        """One device and K: field throughput and image render times."""
        cfg = model.config
        planes = torch.randn(3, cfg.triplane_channels, cfg.triplane_resolution, cfg.triplane_resolution,
                             device=device)  # fmt: skip
        if k:
            planes = TriplaneScene(planes, random_views(k, cfg.projection_channels + 1, device))
        pts = torch.rand(self.batch, 3, device=device) * 2 - 1
        dirs = torch.nn.functional.normalize(torch.randn(self.batch, 3, device=device), dim=-1)
        with torch.no_grad():
            fwd = median_seconds(lambda: model.field.decode(planes, pts, dirs), device, self.repeats, warmup=1)
        p = planes_of(planes).clone().requires_grad_()

        def fwd_bwd() -> None:
            density, rgb = model.field.decode(replace(planes, planes=p) if k else p, pts, dirs)
            (density.sum() + rgb.sum()).backward()

        fb = median_seconds(fwd_bwd, device, self.repeats, warmup=1)
        row = {"device": device, "source_views": k, "fwd_samples_s": self.batch / fwd,
               "fwd_bwd_samples_s": self.batch / fb}  # fmt: skip
        per_ray = cfg.num_coarse_samples + cfg.num_coarse_samples + cfg.num_fine_samples
        for size in self.sizes:
            predicted = size * size * per_ray / row["fwd_samples_s"]
            if device == "cpu" and predicted > self.budget_seconds:
                row[f"img{size}_ms"] = None
                continue
            f = size / (2 * math.tan(math.radians(25)))
            camera = Cameras(
                camera_to_worlds=torch.tensor(look_at_opengl(torch.tensor([0.0, -2.6, 1.2]).numpy(),
                                                             torch.zeros(3).numpy()), dtype=torch.float32)[None],
                fx=f, fy=f, cx=size / 2, cy=size / 2, width=size, height=size,
            )  # fmt: skip
            bundle = camera.generate_rays(camera_indices=0).to(device)
            flat = bundle.reshape((-1,))

            def render() -> None:
                with torch.no_grad():
                    for start in range(0, len(flat), 1 << 16):
                        model.render(flat[start : start + (1 << 16)], planes)

            repeats = 1 if device == "cpu" else self.repeats
            row[f"img{size}_ms"] = median_seconds(render, device, repeats, warmup=1) * 1e3
        CONSOLE.print(row)
        return row


def random_views(k: int, channels: int, device: str, width: int = 400, maps: int = 140) -> SourceViews:
    """K source views on a ring around the box: random photos and maps (speed does not depend on their content)."""
    angles = torch.linspace(0, 2 * math.pi, k + 1)[:k]
    eyes = torch.stack([2.6 * angles.cos(), 2.6 * angles.sin(), torch.full_like(angles, 1.0)], -1)
    c2w = torch.stack([torch.tensor(look_at_opengl(e.numpy(), torch.zeros(3).numpy()), dtype=torch.float32)
                       for e in eyes])  # fmt: skip
    f = maps / (2 * math.tan(math.radians(25)))
    intrinsics = torch.tensor([[f, 0, maps / 2], [0, f, maps / 2], [0, 0, 1]]).expand(k, 3, 3)
    colours, feature_maps = torch.rand(k, 3, width, width), torch.rand(k, channels, maps, maps)
    return SourceViews.from_cameras(colours, feature_maps, c2w, intrinsics, (maps, maps)).to(torch.device(device))


if __name__ == "__main__":
    tyro.cli(BenchmarkField).main()
