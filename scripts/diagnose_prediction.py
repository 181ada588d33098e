#!/usr/bin/env python
"""What holds the feed-forward prediction back: one trained head measured on a frozen benchmark, with oracle,
knock-out and capacity rows beside the trivial baselines.

    python scripts/diagnose_prediction.py --config demo_output/runs/demo/tnerf/run/config.yml

**Benchmark** (built once under ``--work``, described in ``<out>/benchmark.json``): ``--num-scenes`` generated object
scenes (``scripts/make_synthetic_scenes.py --seed``; never seen by the demo's training, whose scenes come from
another seed), each rendered from ``--views`` cameras at ``--size`` px with depth; per scene and K the sources are the
data manager's farthest-point choice (nested: the K = 2 set lies inside the K = 4 set, which lies inside K = 8), the
novel views are the views outside the largest set (16 with the defaults), the input views are the K sources
themselves. lego's val split (16 views spread over it, 200x200) in scene mode, sources from its train split.

**Rows**, each scored on input and novel views, PSNR / SSIM / depth abs-rel where depth exists:

* ``predicted``: the head as trained, with ``tnerf``'s defaults (among them the photo-consistent depth sweep);
* ``no depth sweep``: the lifting uses the head's own depth (``--pipeline.model.lift-depth predicted``);
* ``oracle depth``: the lifting places source pixels at their ground-truth depth (``--pipeline.model.lift-depth
  ground-truth``; generated scenes only): what perfect geometry would give this head;
* ``no backbone features``: the LatentHead reads zeros instead of VGGT's tokens (``backbone-features False``);
* ``no tri-plane``: the field reads zero planes (``triplane-features False``): what the planes carry;
* ``no projection branch``: the field reads planes only (``projected-views False``): what the source views'
  projections carry (heads trained with the branch only);
* ``empty field`` (the background), ``reprojection, GT depth`` (the K sources' pixels forward-splatted with
  ground-truth depth; on the input views this is the forward-splat bound), ``constant depth`` (abs-rel of the median
  ground-truth depth);
* ``capacity``: one benchmark scene's tri-plane fitted directly to all its views by gradient descent, starting from
  the prediction (upsampled), with the shared decoder frozen and with it fitted too, at each ``--capacity-resolutions``:
  how much of the scene the representation itself can hold.

The knock-out rows change a trained head at inference (what it relies on), they are not retrained ablations.
Writes ``<out>/<label>.json`` and ``<out>/diagnosis.md``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import tyro
from rich.console import Console
from rich.progress import track

from tnerf_ns.evaluation.protocol import on_white, spread, ssim
from tnerf_ns.evaluation.reprojection import camera_intrinsics, source_cloud, splat_image
from tnerf_ns.fields.source_projection import planes_of
from tnerf_ns.report import psnr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_source_views import forget_predictions, load_run, setup_pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)

VARIANTS: Dict[str, Dict[str, object]] = {
    "predicted": {},
    "no depth sweep": {"lift_depth": "predicted"},
    "oracle depth": {"lift_depth": "ground-truth"},
    "no backbone features": {"backbone_features": False},
    "no tri-plane": {"triplane_features": False},
    "no projection branch": {"projected_views": False},
}
"""Row name -> model config fields set at inference."""
KNOCKOUTS = ("no backbone features", "no tri-plane", "no projection branch")
"""Rows measured only at ``--knockout-k``."""


def abs_rel(pred: torch.Tensor, truth: torch.Tensor) -> Optional[float]:
    mask = truth > 0
    return float(((pred[mask] - truth[mask]).abs() / truth[mask]).mean()) if mask.any() else None


def mean_of(values: Sequence[Optional[float]]) -> Optional[float]:
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else None


class Scorer:
    """Accumulates per-view scores of one row and split."""

    def __init__(self) -> None:
        self.values: Dict[str, List[Optional[float]]] = {"psnr": [], "ssim": [], "abs_rel": []}

    def add(self, rgb: torch.Tensor, truth: torch.Tensor, depth=None, truth_depth=None) -> None:
        rgb = rgb.float().cpu().clamp(0, 1)
        self.values["psnr"].append(psnr(rgb, truth))
        self.values["ssim"].append(ssim(rgb, truth))
        if depth is not None and truth_depth is not None:
            self.values["abs_rel"].append(abs_rel(depth.float().cpu(), truth_depth))

    def summary(self) -> Dict[str, Optional[float]]:
        return {k: mean_of(v) for k, v in self.values.items()} | {"views": len(self.values["psnr"])}


def pipeline_for(config, checkpoint: Path, switches: Dict[str, object]):
    """``evaluate_source_views``' evaluation pipeline (on the CPU) with the row's model switches set."""
    config = copy.deepcopy(config)
    for key, value in switches.items():
        setattr(config.pipeline.model, key, value)
    return setup_pipeline(config, checkpoint, "cpu")


def render(pipeline, camera) -> Dict[str, torch.Tensor]:
    with torch.no_grad():
        return pipeline.model.get_outputs_for_camera(camera.to(pipeline.device))


@dataclass
class DiagnosePrediction:
    """Oracle, knock-out and capacity rows of one trained head on a frozen benchmark."""

    config: Path
    """config.yml of the trained multi-scene run (its nerfstudio_models/ beside it), or an exported head's folder (e.g.
    tnerf_ns/weights/tnerf-head-vggt-small)."""
    label: str = "demo-head"
    """Name of this measurement (<out>/<label>.json)."""
    work: Path = REPO / "results_output/diagnosis"
    """Where the benchmark scenes are generated (once)."""
    scenes: Optional[Path] = None
    """An already rendered tnerf-scenes folder to use as the benchmark instead (its held-out scenes are measured)."""
    out: Path = REPO / "docs/results/diagnosis"
    """Results folder."""
    num_scenes: int = 8
    """Generated benchmark scenes."""
    seed: int = 2028
    """Generator seed of the benchmark (the demo trains on seed 0's scenes)."""
    max_res: int = 64
    """Grid resolution of the generated scenes."""
    views: int = 24
    """Rendered views per scene: the largest source set plus the novel views."""
    size: int = 200
    """Rendered image side (px)."""
    source_views: List[int] = field(default_factory=lambda: [2, 4, 8])
    """K."""
    variants: List[str] = field(default_factory=lambda: list(VARIANTS))
    """Rows of the trained head (names of VARIANTS)."""
    knockout_k: List[int] = field(default_factory=lambda: [4])
    """K at which the knock-out rows (no backbone features, no tri-plane) run; the others run at every K."""
    lego: Optional[Path] = REPO.parent / "shared/data/nerf_synthetic/lego"
    """Blender scene measured in scene mode (None: left out)."""
    lego_views: int = 16
    """lego val views (spread over the split)."""
    capacity_resolutions: List[int] = field(default_factory=lambda: [64, 128, 256])
    """Plane sides of the capacity rows (empty: left out)."""
    capacity_steps: int = 300
    """Gradient steps of each capacity fit."""
    capacity_rays: int = 2048
    """Rays per capacity step."""
    sweep_settings: Dict[str, float] = field(default_factory=dict)
    """Constants of ``tnerf_ns/heads/depth_sweep.py`` overridden for this measurement (tuning, e.g.
    ``--sweep-settings SWEEP_MARGIN_MANY 0.5``); recorded in the result."""
    model_settings: Dict[str, float] = field(default_factory=dict)
    """Numeric model config fields overridden for this measurement (e.g. ``--model-settings occupancy_step 0.00390625``:
    rendering settings the trained head does not depend on); recorded in the result."""

    # ------------------------------------------------------------------ benchmark
    def benchmark(self) -> Path:
        if self.scenes is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "benchmark.json").write_text(json.dumps({"scenes_folder": str(self.scenes)}, indent=2) + "\n")
            return self.scenes
        scenes = self.work / "scenes"
        grids = self.work / "grids"
        commands = [
            [sys.executable, "scripts/make_synthetic_scenes.py", "--out", str(grids), "--num-scenes",
             str(self.num_scenes + 1), "--seed", str(self.seed), "--max-res", str(self.max_res),
             "--held-out-fraction", str(self.num_scenes / (self.num_scenes + 1))],
            [sys.executable, "scripts/render_scenes.py", "--scenes", str(grids), "--out", str(scenes), "--views",
             str(self.views), "--size", f"{self.size}x{self.size}"],
        ]  # fmt: skip
        git = ["git", "rev-parse", "HEAD"]
        commit = subprocess.run(git, cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()
        if not (scenes / "scenes.json").is_file() and not any(scenes.glob("*/transforms.json")):
            for command in commands:
                CONSOLE.print("[bold]" + " ".join(command[1:]))
                subprocess.run(command, cwd=REPO, check=True)
        elif (self.out / "benchmark.json").is_file():  # scenes made earlier: the manifest keeps the commit made them
            commit = json.loads((self.out / "benchmark.json").read_text()).get("generator_commit", commit)
        manifest = {
            "generator_commit": commit, "seed": self.seed, "scenes": self.num_scenes, "grid_resolution": self.max_res,
            "views_per_scene": self.views, "image_size": [self.size, self.size], "source_views": self.source_views,
            "novel_views_per_scene": self.views - max(self.source_views), "source_choice": "farthest-point sampling",
            "commands": [" ".join(c[1:]) for c in commands], "lego": str(self.lego), "lego_views": self.lego_views,
        }  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "benchmark.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return scenes

    # ------------------------------------------------------------------ generated scenes
    def generated_rows(self, config, scenes: Path, rows: List[Dict]) -> None:
        config = copy.deepcopy(config)
        config.pipeline.datamanager.data = scenes
        config.pipeline.datamanager.dataparser.data = scenes
        config.pipeline.datamanager.num_source_views = max(self.source_views)
        checkpoint = self.checkpoint
        baselines_done = set()
        for variant in self.variants:
            pipeline = pipeline_for(config, checkpoint, VARIANTS[variant])
            dm = pipeline.datamanager
            provider = type(dm.context_provider)
            largest = {e.scene_idx: provider.choose_sources(e.dataset, e.image_indices, max(self.source_views))
                       for e in dm.eval_scenes}  # fmt: skip
            for k in self.source_views:
                if variant in KNOCKOUTS and k not in self.knockout_k:
                    continue
                scores = {name: {"input": Scorer(), "novel": Scorer()}
                          for name in (variant, "empty field", "reprojection, GT depth", "constant depth")}  # fmt: skip
                start = time.perf_counter()
                for entry in dm.eval_scenes:
                    entry.source_indices = provider.choose_sources(entry.dataset, entry.image_indices, k)
                    assert set(entry.source_indices) <= set(largest[entry.scene_idx]), "source sets are not nested"
                forget_predictions(pipeline)
                for entry in track(dm.eval_scenes, description=f"{variant} K={k}", console=CONSOLE, transient=True):
                    ds = entry.dataset
                    ctx = dm.context_provider.context(entry.scene_idx)
                    cloud = source_cloud(ctx) if ctx.depth is not None else None
                    novel = [i for i in entry.image_indices if i not in largest[entry.scene_idx]]
                    for split, indices in (("input", entry.source_indices), ("novel", novel)):
                        for i in indices:
                            camera = ds.cameras[i : i + 1]
                            truth = on_white(ds.get_image_float32(i))
                            truth_depth = ds.get_depth(i)
                            out = render(pipeline, camera)
                            scores[variant][split].add(out["rgb"], truth, out["z_depth"][..., 0],
                                                       truth_depth)  # fmt: skip
                            if (k, split) in baselines_done:
                                continue
                            h, w = truth.shape[:2]
                            scores["empty field"][split].add(torch.ones_like(truth), truth)
                            if cloud is not None:
                                splat = splat_image(cloud[0], cloud[1], camera.camera_to_worlds[0].float(),
                                                    camera_intrinsics(camera), h, w, torch.ones(3))  # fmt: skip
                                scores["reprojection, GT depth"][split].add(splat, truth)
                            if truth_depth is not None and (truth_depth > 0).any():
                                constant = torch.full_like(truth_depth, float(truth_depth[truth_depth > 0].median()))
                                scores["constant depth"][split].values["abs_rel"].append(abs_rel(constant, truth_depth))
                seconds = time.perf_counter() - start
                for name, splits in scores.items():
                    if name != variant and (k, "novel") in baselines_done:
                        continue
                    for split, scorer in splits.items():
                        summary = scorer.summary()
                        if summary["views"] == 0 and summary["abs_rel"] is None:
                            continue
                        rows.append({"data": "generated", "row": name, "K": k, "split": split, **summary,
                                     "seconds": seconds if name == variant else None})  # fmt: skip
                        CONSOLE.print(rows[-1])
                baselines_done |= {(k, "input"), (k, "novel")}

    # ------------------------------------------------------------------ lego (scene mode)
    def lego_rows(self, config, rows: List[Dict]) -> None:
        from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

        for variant in [v for v in self.variants if v != "oracle depth"]:
            for k in self.source_views:
                if variant in KNOCKOUTS and k not in self.knockout_k:
                    continue
                cfg = copy.deepcopy(config)
                cfg.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=self.lego)
                cfg.pipeline.datamanager.data = self.lego
                cfg.pipeline.datamanager.camera_res_scale_factor = 0.5
                cfg.pipeline.datamanager.num_source_views = k
                pipeline = pipeline_for(cfg, self.checkpoint, VARIANTS[variant])
                dm = pipeline.datamanager
                entry = dm.eval_scenes[0]
                scores = {variant: {"input": Scorer(), "novel": Scorer()}, "empty field": {"novel": Scorer()}}
                start = time.perf_counter()
                ctx = dm.context_provider.context(entry.scene_idx)
                for i in track(spread(len(dm.eval_dataset), self.lego_views), description=f"lego {variant} K={k}",
                               console=CONSOLE, transient=True):  # fmt: skip
                    truth = on_white(dm.eval_dataset.get_image_float32(i))
                    scores[variant]["novel"].add(render(pipeline, dm.eval_dataset.cameras[i : i + 1])["rgb"], truth)
                    scores["empty field"]["novel"].add(torch.ones_like(truth), truth)
                for n in range(ctx.images.shape[0]):  # the source photos themselves, as the context holds them
                    truth = ctx.images[n].permute(1, 2, 0).float()
                    rgb = self.render_context_view(pipeline, ctx, n)
                    scores[variant]["input"].add(rgb, truth)
                seconds = time.perf_counter() - start
                for name, splits in scores.items():
                    for split, scorer in splits.items():
                        rows.append({"data": "lego", "row": name, "K": k, "split": split, **scorer.summary(),
                                     "seconds": seconds if name == variant else None})  # fmt: skip
                        CONSOLE.print(rows[-1])

    @staticmethod
    def render_context_view(pipeline, ctx, n: int) -> torch.Tensor:
        from nerfstudio.cameras.cameras import Cameras

        intr = ctx.intrinsics[n]
        h, w = ctx.images.shape[-2:]
        camera = Cameras(camera_to_worlds=ctx.c2w[n : n + 1].float(), fx=intr[0, 0], fy=intr[1, 1], cx=intr[0, 2],
                         cy=intr[1, 2], width=w, height=h)  # fmt: skip
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
        with torch.no_grad():
            return pipeline.model.render_image(bundle, ctx)["rgb"]

    # ------------------------------------------------------------------ capacity
    def capacity_rows(self, config, scenes: Path, rows: List[Dict]) -> None:
        """One scene's planes (and optionally the decoder) fitted to all its views; scored on its novel views."""
        config = copy.deepcopy(config)
        config.pipeline.datamanager.data = scenes
        config.pipeline.datamanager.dataparser.data = scenes
        config.pipeline.datamanager.num_source_views = max(self.source_views)
        base = pipeline_for(config, self.checkpoint, {})
        dm = base.datamanager
        entry = dm.eval_scenes[0]
        ds = entry.dataset
        provider = type(dm.context_provider)
        largest = provider.choose_sources(ds, entry.image_indices, max(self.source_views))
        novel = [i for i in entry.image_indices if i not in largest]
        ctx = dm.context_provider.context(entry.scene_idx)
        with torch.no_grad():
            predicted = planes_of(base.model.encoder(ctx)[0])  # the planes alone: the representation's capacity
        # every pixel of every view of the scene, as rays, with its colour composited on white
        cameras = ds.cameras[torch.tensor(entry.image_indices)]
        truths = torch.stack([on_white(ds.get_image_float32(i)) for i in entry.image_indices])
        for resolution in self.capacity_resolutions:
            for fit_decoder in (False, True):
                model = copy.deepcopy(base.model)
                model.train()
                planes = torch.nn.Parameter(F.interpolate(predicted, size=(resolution, resolution), mode="bilinear",
                                                          align_corners=True).clone())  # fmt: skip
                params = [{"params": [planes], "lr": 1e-2}]
                for p in model.field.parameters():
                    p.requires_grad_(fit_decoder)
                if fit_decoder:
                    params.append({"params": list(model.field.parameters()), "lr": 1e-3})
                optimiser = torch.optim.Adam(params)
                generator = torch.Generator().manual_seed(0)
                start = time.perf_counter()
                for _ in track(range(self.capacity_steps), description=f"capacity {resolution}", console=CONSOLE,
                               transient=True):  # fmt: skip
                    view = torch.randint(len(cameras), (self.capacity_rays,), generator=generator)
                    h, w = truths.shape[1:3]
                    ys = torch.randint(h, (self.capacity_rays,), generator=generator)
                    xs = torch.randint(w, (self.capacity_rays,), generator=generator)
                    coords = torch.stack([ys, xs], -1).float() + 0.5
                    bundle = cameras.generate_rays(camera_indices=view[:, None], coords=coords)
                    out = model.render(bundle, planes)
                    loss = F.mse_loss(out["rgb"], truths[view, ys, xs])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                seconds = time.perf_counter() - start
                model.eval()
                scorer = Scorer()
                for i in novel:
                    bundle = ds.cameras[i : i + 1].generate_rays(camera_indices=0, keep_shape=True)
                    with torch.no_grad():
                        hh, ww = bundle.origins.shape[:2]
                        chunks = [model.render(bundle.get_row_major_sliced_ray_bundle(s, s + 4096), planes.detach())
                                  for s in range(0, hh * ww, 4096)]  # fmt: skip
                        rgb = torch.cat([c["rgb"] for c in chunks]).view(hh, ww, 3)
                    scorer.add(rgb, on_white(ds.get_image_float32(i)))
                name = f"capacity: planes {resolution}, decoder {'fitted' if fit_decoder else 'frozen'}"
                rows.append({"data": "generated", "row": name, "K": None, "split": "fitted views (novel of K=8)",
                             "scene": entry.name, **scorer.summary(), "seconds": seconds,
                             "steps": self.capacity_steps})  # fmt: skip
                CONSOLE.print(rows[-1])

    def main(self) -> None:
        from tnerf_ns.heads import depth_sweep

        for name, value in self.sweep_settings.items():
            if not name.startswith("SWEEP_") or not hasattr(depth_sweep, name):
                raise SystemExit(f"--sweep-settings {name}: tnerf_ns/heads/depth_sweep.py has no such constant")
            setattr(depth_sweep, name, type(getattr(depth_sweep, name))(value))
        config, self.checkpoint = load_run(self.config)
        for name, value in self.model_settings.items():
            current = getattr(config.pipeline.model, name, None)
            if not isinstance(current, (int, float)):
                raise SystemExit(f"--model-settings {name}: not a numeric field of the model config")
            setattr(config.pipeline.model, name, type(current)(value))
        scenes = self.benchmark()
        rows: List[Dict] = []
        self.generated_rows(config, scenes, rows)
        if self.lego is not None and (self.lego / "transforms_val.json").is_file():
            self.lego_rows(config, rows)
        if self.capacity_resolutions:
            self.capacity_rows(config, scenes, rows)
        result = {"config": str(self.config), "label": self.label, "rows": rows}
        if self.sweep_settings:
            result["sweep_settings"] = self.sweep_settings
        if self.model_settings:
            result["model_settings"] = self.model_settings
        (self.out / f"{self.label}.json").write_text(json.dumps(result, indent=2) + "\n")
        write_table(self.out)


def fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def write_table(folder: Path) -> None:
    """``diagnosis.md`` from every ``<label>.json`` of the folder."""
    lines = ["## Diagnosis", "", "| head | data | row | K | split | PSNR | SSIM | depth abs-rel | views | seconds |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for path in sorted(folder.glob("*.json")):
        if path.name == "benchmark.json":
            continue
        result, seen = json.loads(path.read_text()), set()
        for r in result["rows"]:
            key = (r["data"], r["row"], r["K"], r["split"])
            if key in seen:  # a baseline measured again beside another row
                continue
            seen.add(key)
            lines.append(f"| {result['label']} | {r['data']} | {r['row']} | {r['K'] if r['K'] else '-'} | {r['split']} "
                         f"| {fmt(r['psnr'], 2)} | {fmt(r['ssim'], 3)} | {fmt(r['abs_rel'], 3)} | {r['views']} | "
                         f"{fmt(r.get('seconds'), 1)} |")  # fmt: skip
    (folder / "diagnosis.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    tyro.cli(DiagnosePrediction).main()
