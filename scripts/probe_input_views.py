#!/usr/bin/env python
"""Where a trained head loses its own input views: colour or opacity (issue 28, input views against the forward splat).

    python scripts/probe_input_views.py --config demo_output/head/runs/head/tnerf/run/config.yml

Renders the K source views of the first ``--num-scenes`` scenes of the diagnosis benchmark (``diagnose_prediction.py``
builds it) three ways:

* ``as trained``;
* ``colour from the sources``: the field's colour gate forced fully onto the blended source colours;
* ``colour from the own view``: that, with the blend forced onto the source ray nearest the query ray (on an input
  view, the very pixel being rendered).

Per row: PSNR, and split by the ground-truth alpha: the squared error in the background (alpha < 0.01) and in the
object (alpha > 0.99), the object's mean transparency (1 - rendered opacity) and its share of pixels more than half
transparent (holes). When the colour rows gain little and the object's holes carry the error, the input views are
limited by the predicted density, not by the colours. The ``as trained`` row is also split by the object pixels'
distance to the silhouette (``edges``): where the holes and the error sit. Writes ``--out`` (JSON, and the tables
beside it as .md) and prints them.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Literal, Optional

import numpy as np
import torch
import tyro
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_prediction import pipeline_for, render  # noqa: E402
from evaluate_source_views import forget_predictions, load_run  # noqa: E402

from tnerf_ns.evaluation.protocol import on_white  # noqa: E402
from tnerf_ns.report import psnr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)
ROWS = ("as trained", "colour from the sources", "colour from the own view")
EDGE_BINS = ((0, 2), (2, 4), (4, 8), (8, None))
"""Distance of object pixels to the nearest background pixel (pixels): the silhouette-edge breakdown."""


def edge_breakdown(alpha: np.ndarray, clear: np.ndarray, error: np.ndarray) -> Dict[str, List[float]]:
    """Per distance bin of the solid object pixels: [pixels, holes (more than half transparent), squared error]."""
    from scipy.ndimage import distance_transform_edt

    distance = distance_transform_edt(alpha > 0.5)
    solid = alpha > 0.99
    out = {}
    for lo, hi in EDGE_BINS:
        inside = solid & (distance > lo) & (distance <= (np.inf if hi is None else hi))
        out[edge_label(lo, hi)] = [float(inside.sum()), float((clear[inside] > 0.5).sum()), float(error[inside].sum())]
    return out


def edge_label(lo: int, hi) -> str:
    return f"> {lo} px" if hi is None else f"{lo}-{hi} px"


@contextmanager
def colour_override(field, row: str) -> Iterator[None]:
    """The field with its colour gate (and blend) forced as the row says; restored afterwards."""
    projection, gate = field.projection, field.blend_gate
    saved = {k: v.detach().clone() for k, v in [*projection.named_parameters(), *gate.named_parameters()]}
    with torch.no_grad():
        if row != "as trained":
            gate.weight.zero_()
            gate.bias.fill_(30.0)  # sigmoid -> 1: the blended source colour wherever a view sees the point
        if row == "colour from the own view":
            projection.score.weight.zero_()
            projection.score.bias.zero_()
            projection.log_sharpness.fill_(9.0)  # softmax over exp(9) * (cosine - 1): the nearest source ray
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in [*projection.named_parameters(), *gate.named_parameters()]:
                value.copy_(saved[name])


@dataclass
class ProbeInputViews:
    """Colour and opacity errors of a head's renders of its own input views."""

    config: Path
    """config.yml of a trained multi-scene run (its nerfstudio_models/ beside it), or an exported head's folder."""
    scenes: Path = REPO / "results_output/diagnosis/scenes"
    """The diagnosis benchmark's scenes (``scripts/diagnose_prediction.py`` renders them)."""
    num_scenes: int = 4
    """Benchmark scenes probed (their held-out views)."""
    k: int = 2
    """Source views (farthest-point, as the benchmark chooses them)."""
    out: Path = REPO / "docs/results/diagnosis/input-views/input-view-errors.json"
    """Results file."""
    eval_sampler: Optional[Literal["occupancy", "hierarchical"]] = None
    """Render with this sampler instead of the run's (holes that sampling misses would close with the other one)."""
    samples_per_ray: Optional[int] = None
    """Coarse and fine samples per ray of the hierarchical sampler instead of the run's."""

    def main(self) -> None:
        if not self.scenes.is_dir():
            raise SystemExit(f"{self.scenes}: no benchmark scenes; run scripts/diagnose_prediction.py first")
        config, checkpoint = load_run(self.config)
        config.pipeline.datamanager.data = config.pipeline.datamanager.dataparser.data = self.scenes
        config.pipeline.datamanager.num_source_views = self.k
        switches = {"eval_sampler": self.eval_sampler} if self.eval_sampler else {}
        if self.samples_per_ray:
            switches.update(num_coarse_samples=self.samples_per_ray, num_fine_samples=self.samples_per_ray)
        pipeline = pipeline_for(config, checkpoint, switches)
        field = pipeline.model.field
        if getattr(field, "projection", None) is None:
            raise SystemExit(f"{self.config}: this head has no projection branch; there is no source colour to force")
        dm = pipeline.datamanager
        provider = type(dm.context_provider)
        entries = dm.eval_scenes[: self.num_scenes]
        for entry in entries:
            entry.source_indices = provider.choose_sources(entry.dataset, entry.image_indices, self.k)
        forget_predictions(pipeline)
        values: Dict[str, Dict[str, List[float]]] = {row: {} for row in ROWS}
        edges = {edge_label(lo, hi): np.zeros(3) for lo, hi in EDGE_BINS}
        for entry in entries:
            for i in entry.source_indices:
                image = entry.dataset.get_image_float32(i)
                if image.shape[-1] != 4:
                    raise SystemExit(
                        f"{entry.dataset.image_filenames[i]}: no alpha channel to split object and background"
                    )
                truth, alpha = on_white(image), image[..., 3]
                solid, empty = alpha > 0.99, alpha < 0.01
                for row in ROWS:
                    with colour_override(field, row):  # colour only: the density and its occupancy grid stay
                        out = render(pipeline, entry.dataset.cameras[i : i + 1])
                    error = ((out["rgb"] - truth) ** 2).mean(-1)
                    clear = 1 - out["accumulation"][..., 0]
                    for name, value in (("psnr", psnr(out["rgb"], truth)), ("object_mse", error[solid].mean()),
                                        ("background_mse", error[empty].mean()), ("object_transparency",
                                        clear[solid].mean()), ("object_holes", (clear[solid] > 0.5).float().mean())):  # fmt: skip
                        values[row].setdefault(name, []).append(float(value))
                    if row == "as trained":
                        for name, counts in edge_breakdown(alpha.numpy(), clear.numpy(), error.numpy()).items():
                            edges[name] += counts
        summary = {row: {name: float(np.mean(v)) for name, v in metrics.items()} for row, metrics in values.items()}
        total = max(sum(float(c[2]) for c in edges.values()), 1e-12)
        edge_rows = {name: {"pixels": int(c[0]), "holes": float(c[1] / max(c[0], 1)), "error_share": float(c[2] / total),
                            "mse": float(c[2] / max(c[0], 1))} for name, c in edges.items()}  # fmt: skip
        result = {"config": str(self.config), "scenes": str(self.scenes), "num_scenes": len(entries), "k": self.k,
                  "views": len(values["as trained"]["psnr"]), "switches": switches, "rows": summary,
                  "edges": edge_rows}  # fmt: skip
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(result, indent=2) + "\n")
        lines = ["| row | PSNR | object MSE | background MSE | object transparency | object pixels > half transparent |",
                 "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for row, m in summary.items():
            lines.append(f"| {row} | {m['psnr']:.2f} | {m['object_mse']:.2e} | {m['background_mse']:.1e} | "
                         f"{m['object_transparency']:.4f} | {100 * m['object_holes']:.2f} % |")  # fmt: skip
        lines += ["", "| object pixels at a distance to the silhouette of | pixels | holes | share of the object's squared "
                  "error | object MSE |", "|---|---:|---:|---:|---:|"]  # fmt: skip
        for name, m in edge_rows.items():
            lines.append(f"| {name} | {m['pixels']} | {100 * m['holes']:.2f} % | {m['error_share']:.2f} | "
                         f"{m['mse']:.2e} |")  # fmt: skip
        (self.out.with_suffix(".md")).write_text("\n".join(lines) + "\n")
        CONSOLE.print("\n".join(lines))


if __name__ == "__main__":
    tyro.cli(ProbeInputViews).main()
