#!/usr/bin/env python
"""Held-out geometry metrics of a vggt-small checkpoint, beside trivial predictors on the same pixels and pairs.

    python scripts/evaluate_vggt_small.py --data data/mixed_rendered \\
        --weights tnerf_ns/weights/vggt-small-synthetic.safetensors --out docs/results/vggt_small

Writes ``OUT/metrics.md`` (included in README) and ``OUT/metrics.json``. Every held-out scene is scored with
``--samples-per-scene`` view subsets of each size in ``--views``; ground truth is in the first camera's frame,
normalised by the mean point distance (as in training). Metrics are in ``tnerf_ns/backbone/geometry_metrics.py``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import tyro
from rich.console import Console
from rich.progress import track

from tnerf_ns.backbone.geometry_metrics import (
    DEG,
    auc,
    constant_depth_abs_rel,
    median_scaled_abs_rel,
    point_error,
    relative_pose_errors,
    trivial_points,
    trivial_pose_errors,
)
from tnerf_ns.backbone.loading import VGGTLoadError, build_vggt, load_vggt
from tnerf_ns.backbone.pretrain_data import PretrainDataError, fixed_samples, load_split
from tnerf_ns.backbone.training_losses import normalize_to_first_camera
from tnerf_ns.geometry import pose_encoding_to_extri_intri

CONSOLE = Console()
GOALS = {
    "depth": "abs-rel <= half of the constant-depth baseline",
    "rotation": "median relative rotation error <= 5 deg",
}


@dataclass
class EvaluateVGGTSmall:
    """Score a vggt-small checkpoint on held-out rendered scenes."""

    data: Path
    """Rendered dataset with held-out scenes in ``scenes.json``."""
    weights: Optional[Path] = Path("tnerf_ns/weights/vggt-small-synthetic.safetensors")
    """Checkpoint to score (None: random init, a sanity floor)."""
    out: Path = Path("docs/results/vggt_small")
    views: List[int] = field(default_factory=lambda: [2, 4, 8])
    """View counts of the evaluated samples."""
    samples_per_scene: int = 2
    seed: int = 0
    threads: Optional[int] = None


def evaluate(model, samples: List[Dict[str, torch.Tensor]]) -> Dict[str, List[float]]:
    """Per-image, per-sample and per-pair values of the model and of the trivial predictors."""
    vals: Dict[str, List[float]] = {}

    def add(key: str, t: torch.Tensor) -> None:
        vals.setdefault(key, []).extend(t.flatten().tolist())

    for batch in samples:
        gt = normalize_to_first_camera(batch["extrinsics"], batch["intrinsics"], batch["depth"], batch["mask"])
        mask = batch["mask"]
        with torch.no_grad():
            out = model(batch["images"])
        flat_mask, gt_depth = mask.flatten(0, 1), gt["depth"].flatten(0, 1)
        add("depth", median_scaled_abs_rel(out["depth"][..., 0].flatten(0, 1), gt_depth, flat_mask))
        add("depth_trivial", constant_depth_abs_rel(gt_depth, flat_mask))
        add("points", point_error(out["world_points"], gt["points"], mask))
        add("points_trivial", point_error(trivial_points(gt["depth"], batch["intrinsics"], mask), gt["points"], mask))
        ext, _ = pose_encoding_to_extri_intri(out["pose_enc"], tuple(mask.shape[-2:]))
        errs, trivial = relative_pose_errors(ext, gt["extrinsics"]), trivial_pose_errors(gt["extrinsics"])
        for name, e in (("", errs), ("_trivial", trivial)):
            add(f"rre{name}", e["rre"])
            add(f"rta{name}", e["rta"])
        add("fov", (out["pose_enc"][..., 7:] - gt["pose_enc"][..., 7:]).abs() * DEG)
        add("fov_gt", gt["pose_enc"][..., 7:] * DEG)
    return vals


def summarise(vals: Dict[str, List[float]]) -> Dict[str, Dict[str, float]]:
    a = {k: np.asarray(v) for k, v in vals.items()}
    fov_trivial = np.abs(a["fov_gt"] - a["fov_gt"].mean())
    t = torch.from_numpy
    rows = {
        "depth abs-rel (median-scaled, mean per image)": (a["depth"].mean(), a["depth_trivial"].mean()),
        "point-map error (mean, units of mean point distance)": (a["points"].mean(), a["points_trivial"].mean()),
        "relative rotation error, median (deg)": (np.median(a["rre"]), np.median(a["rre_trivial"])),
        "relative translation angle, median (deg)": (np.median(a["rta"]), np.median(a["rta_trivial"])),
        "AUC@30 (max of rotation and translation error)": (
            auc(t(a["rre"]), t(a["rta"])), auc(t(a["rre_trivial"]), t(a["rta_trivial"]))),
        "field-of-view error, mean (deg)": (a["fov"].mean(), fov_trivial.mean()),
    }  # fmt: skip
    return {k: {"model": float(m), "trivial": float(b)} for k, (m, b) in rows.items()}


def markdown(summary: Dict[str, Dict[str, float]], info: Dict[str, object]) -> str:
    lines = [
        f"Held-out: {info['scenes']} generated scenes ({info['kinds']}), {info['samples']} samples of "
        f"{'/'.join(map(str, info['views']))} views, {info['pairs']} view pairs; weights `{info['weights']}`. "
        "Trivial predictors on the same pixels and pairs: a constant depth per image at the ground-truth median "
        "(points: along each view's own rays, every camera at the first), identity rotations with a fixed sideways "
        "translation, the mean ground-truth field of view.",
        "",
        "| metric | vggt-small (pre-trained) | trivial predictor | ratio |",
        "|---|---|---|---|",
    ]
    for name, row in summary.items():
        ratio = row["model"] / row["trivial"] if row["trivial"] else math.nan
        lines.append(f"| {name} | {row['model']:.3f} | {row['trivial']:.3f} | {ratio:.2f} |")
    d = summary["depth abs-rel (median-scaled, mean per image)"]
    r = summary["relative rotation error, median (deg)"]["model"]
    lines += [
        "",
        f"Goals: {GOALS['depth']}: {d['model']:.3f} vs {d['trivial'] / 2:.3f} "
        f"({'met' if d['model'] <= d['trivial'] / 2 else 'missed'}); {GOALS['rotation']}: {r:.1f} deg "
        f"({'met' if r <= 5 else 'missed'}).",
    ]
    return "\n".join(lines) + "\n"


def main(cfg: EvaluateVGGTSmall) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    scenes = load_split(cfg.data, held_out=True)
    model = load_vggt(cfg.weights, "vggt-small") if cfg.weights else build_vggt("vggt-small")
    samples = []
    for v in cfg.views:
        samples += fixed_samples(scenes, views=v, per_scene=cfg.samples_per_scene, seed=cfg.seed + v)
    vals: Dict[str, List[float]] = {}
    for sample in track(samples, description="evaluating", console=CONSOLE):
        for k, v in evaluate(model, [sample]).items():
            vals.setdefault(k, []).extend(v)
    summary = summarise(vals)
    kinds = {k: sum(s.kind == k for s in scenes) for k in ("object", "room")}
    info = {"scenes": len(scenes), "kinds": f"{kinds['object']} objects, {kinds['room']} rooms", "views": cfg.views,
            "samples": len(samples), "pairs": len(vals["rre"]), "weights": str(cfg.weights), "data": str(cfg.data)}  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "metrics.json").write_text(json.dumps({"info": info, "metrics": summary}, indent=1))
    (cfg.out / "metrics.md").write_text(markdown(summary, info))
    CONSOLE.print(markdown(summary, info))


if __name__ == "__main__":
    try:
        main(tyro.cli(EvaluateVGGTSmall))
    except (PretrainDataError, VGGTLoadError) as err:
        CONSOLE.print(f"[red]error: {err}", soft_wrap=True)
        sys.exit(2)
