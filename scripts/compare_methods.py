#!/usr/bin/env python
"""Feed-forward T-NeRF versus per-scene NeRF on one scene, every method configured as its authors recommend.

    python scripts/compare_methods.py --data ../shared/data/nerf_synthetic/lego --scale 0.5 \
        --tnerf-checkpoint demo_output/runs/demo/tnerf/run/nerfstudio_models --budgets 60 180

Rows (see :mod:`tnerf_ns.evaluation`), each scored on the ``input`` views (what the method was given) and on
``novel`` held-out views, by the same scoring code:

* T-NeRF feed-forward with K = 2, 4, 8 source views, at its encode + render time (one image), beside the trivial
  feed-forward baseline: the K source views' pixels forward-splatted with their depth (ground truth where the data
  has it, else the LatentHead's), z-buffered, holes white;
* T-NeRF refined per scene from its prediction, stopped at each wall-clock budget;
* nerfacto with the settings nerfstudio's maintainers recommend for the data (:mod:`tnerf_ns.evaluation.baselines`)
  and its own batch size; ``--rays-per-step`` gives every method the same batch instead (labelled equal-rays);
* vanilla-nerf only with ``--vanilla-budget`` (one budget: it makes ~0.15 steps/s on this CPU).

The final budget and the feed-forward rows use ``--eval-views`` views; intermediate budgets ``--intermediate-views``.
T-NeRF's one-off pre-training time (from its run's tensorboard events) is recorded beside the per-scene budgets.
Writes ``comparison.json`` (list of rows), ``comparison.md`` and ``psnr_vs_time.png`` (both made from the JSON).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch
import tyro
from rich.console import Console

from tnerf_ns.compat import models_build_without_lpips_weights
from tnerf_ns.evaluation import baselines, scene_data
from tnerf_ns.evaluation.comparison_report import EMPTY_FIELD, MEAN_COLOUR, plot, write_table
from tnerf_ns.evaluation.masks import mask_finder
from tnerf_ns.evaluation.protocol import (
    SPEED_KEY,
    SPEED_TOLERANCE,
    ComparisonRow,
    backbone_description,
    calibration_seconds,
    camera_renderer,
    on_white,
    read_rows,
    reusable_rows,
    score_views,
    spread,
    training_seconds,
)
from tnerf_ns.evaluation.reprojection import camera_intrinsics, ground_truth_depth, source_cloud, splat_image

CONSOLE = Console(width=120)
CPU_EVAL_RAYS_PER_CHUNK = 1024
"""Small chunks keep a CPU's caches warm: 2.1x faster than nerfacto's 32,768 (scripts/benchmark_eval_chunks.py)."""
NOVEL_SPLIT = "val"
"""Every row's novel views: the split a nerfstudio Trainer evaluates on (the Blender benchmark's held-out val views)."""


@dataclass
class CompareMethods:
    """T-NeRF (feed-forward and refined) against per-scene nerfstudio methods on one scene."""

    data: Path
    """Scene folder (Blender transforms_*.json, or nerfstudio transforms.json)."""
    out: Path = Path("comparison")
    """Output folder."""
    methods: List[str] = field(default_factory=lambda: ["tnerf", "nerfacto"])
    """Methods: tnerf (feed-forward, reprojection baseline, refinement), nerfacto, vanilla-nerf."""
    tnerf_checkpoint: Optional[Path] = None
    """Trained T-NeRF checkpoint (file or nerfstudio_models folder); None: the head shipped in tnerf_ns/weights
    (backbone vggt-small)."""
    source_views: List[int] = field(default_factory=lambda: [2, 4, 8])
    """K values for feed-forward T-NeRF and the reprojection baseline."""
    refine_views: int = 4
    """K of the prediction refinement starts from."""
    budgets: List[float] = field(default_factory=lambda: [60.0, 180.0])
    """Wall-clock training budgets (seconds) for refinement and the per-scene baselines."""
    vanilla_budget: Optional[float] = None
    """vanilla-nerf runs at this one budget when listed in --methods (None: it is left out)."""
    eval_views: int = 16
    """Views per split for the feed-forward rows and the final budget."""
    intermediate_views: int = 4
    """Views per split for the budgets before the last."""
    scale: float = 0.5
    """Image scale (camera_res_scale_factor) for training and evaluation (0.5: lego and mic at 200x200)."""
    rays_per_step: Optional[int] = None
    """Equal-rays setting: every method trains with this many rays per step (None: each method's default)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device."""
    occupancy_step: Optional[float] = None
    """T-NeRF's occupancy-renderer step in canonical units (None: the model's; 1/64 on captures, whose box a head
    trained on objects in a void finds mostly occupied, as scripts/evaluate_capture.py)."""
    eval_rays_per_chunk: Optional[int] = None
    """Rays per chunk of every method's evaluation renders (None: CPU_EVAL_RAYS_PER_CHUNK on the CPU, each method's own
    on CUDA). Speed only: the scores do not change."""
    reuse_baselines: bool = True
    """Keep the per-scene baselines' rows of the --out folder's earlier run when made with this protocol (data, scale,
    budgets, views, settings, device) on a machine as fast: T-NeRF does not enter. False: re-train. (Rows of methods
    not in --methods are always kept from that file: ``--methods nerfacto`` re-runs nerfacto alone.)"""
    speed_tolerance: float = SPEED_TOLERANCE
    """Kept rows' calibration time must be within this factor of this machine's (a shared host's speed drifts)."""
    replot: bool = False
    """Train nothing: rewrite comparison.md and psnr_vs_time.png from the --out folder's comparison.json, adding what
    files from older runs lack: the empty-field rows (from the data) and, given --tnerf-checkpoint, its backbone."""

    # ------------------------------------------------------------------ configuration
    def trainer_config(self, method: str, **model_overrides):
        from nerfstudio.configs.method_configs import all_methods

        cfg = copy.deepcopy(all_methods[method])
        cfg.machine.device_type = "cuda" if self.device == "cuda" else "cpu"
        cfg.vis = "tensorboard"
        cfg.output_dir = self.out / "runs"
        cfg.experiment_name = method
        cfg.max_num_iterations = 10**9
        cfg.steps_per_eval_batch = cfg.steps_per_eval_image = cfg.steps_per_eval_all_images = 10**9
        cfg.steps_per_save = 10**9
        cfg.pipeline.datamanager.dataparser = scene_data.parser_config(self.data)
        cfg.pipeline.datamanager.data = self.data
        cfg.pipeline.datamanager.camera_res_scale_factor = self.scale
        if hasattr(cfg.pipeline.model, "implementation") and self.device != "cuda":
            cfg.pipeline.model.implementation = "torch"
        if method == "tnerf":
            trained = self.trained_config()
            if trained is not None:  # same architecture as the checkpoint (sizes, backbone, samples)
                cfg.pipeline.model = copy.deepcopy(trained.pipeline.model)
            elif self.tnerf_checkpoint is None:  # the shipped head's architecture is the model's default
                cfg.pipeline.model.backbone = "vggt-small"
            cfg.pipeline.model.pretrained = self.tnerf_checkpoint
            if self.occupancy_step is not None:
                cfg.pipeline.model.occupancy_step = self.occupancy_step
            if self.rays_per_step is not None:
                cfg.pipeline.datamanager.train_num_rays_per_batch = self.rays_per_step
        for key, value in model_overrides.items():
            setattr(cfg.pipeline.model, key, value)
        own_chunk = cfg.pipeline.model.eval_num_rays_per_chunk if self.device == "cuda" else CPU_EVAL_RAYS_PER_CHUNK
        cfg.pipeline.model.eval_num_rays_per_chunk = self.eval_rays_per_chunk or own_chunk
        cfg.set_timestamp()
        return cfg

    def baseline_config(self, method: str):
        """A per-scene baseline's trainer config, set as recommended for the data (``baselines``), and its settings."""
        kind = baselines.data_kind(self.data)
        if kind == "generated" and not hasattr(self, "_near_far"):  # from the scene's box and cameras, read once
            self._near_far = scene_data.near_far(self.data)
        cfg = self.trainer_config(method)
        return cfg, baselines.settings_for(method, cfg, kind, getattr(self, "_near_far", None), self.rays_per_step)

    def trained_config(self):
        """The config of the run the T-NeRF checkpoint comes from (its config.yml), if it can be found."""
        import yaml

        if self.tnerf_checkpoint is None:
            return None
        folder = self.tnerf_checkpoint if self.tnerf_checkpoint.is_dir() else self.tnerf_checkpoint.parent
        config_file = folder.parent / "config.yml"
        return yaml.load(config_file.read_text(), Loader=yaml.Loader) if config_file.is_file() else None

    def pretraining(self) -> Dict:
        """T-NeRF's one-off pre-training: wall time of its run and what it was trained on."""
        if self.tnerf_checkpoint is None:  # the shipped head: its card says
            from tnerf_ns.models.checkpoints import SHIPPED_HEADS

            card = json.loads((SHIPPED_HEADS["vggt-small"] / "training.json").read_text())
            steps = re.search(r"--max-num-iterations (\d+)", card["command"])
            return {"pretraining_seconds": sum(card["timings_s"].values()), "pretraining_data": "generated scenes "
                    "(the shipped head, tnerf_ns/weights)", "pretraining_steps": int(steps[1]) if steps else None,
                    "backbone": "vggt-small"}  # fmt: skip
        folder = self.tnerf_checkpoint if self.tnerf_checkpoint.is_dir() else self.tnerf_checkpoint.parent
        trained = self.trained_config()
        dm = trained.pipeline.datamanager if trained is not None else None
        data = str(dm.data or dm.dataparser.data) if dm is not None else "unknown"
        steps = int(trained.max_num_iterations) if trained is not None else None
        backbone = backbone_description(trained.pipeline.model) if trained is not None else "unknown"
        return {"pretraining_seconds": training_seconds(folder.parent), "pretraining_data": data,
                "pretraining_steps": steps, "backbone": backbone}  # fmt: skip

    def budgets_for(self, method: str) -> List[float]:
        return [self.vanilla_budget] if method == "vanilla-nerf" else sorted(self.budgets)

    def split_datasets(self) -> Dict:
        """The ``input`` (train) and ``novel`` (NOVEL_SPLIT) datasets at --scale; images are read only when asked for."""
        from nerfstudio.data.datasets.base_dataset import InputDataset

        parser = scene_data.parser_config(self.data).setup()
        return {name: InputDataset(parser.get_dataparser_outputs(split=split), scale_factor=self.scale)
                for split, name in (("train", "input"), (NOVEL_SPLIT, "novel"))}  # fmt: skip

    def masks(self, dataset):
        """The object masks of a capture's images (``masks/`` beside its transforms file), or None."""
        return mask_finder(self.data.parent if self.data.is_file() else self.data, dataset)

    def provenance(self) -> Dict:
        self._speed = getattr(self, "_speed", None) or round(calibration_seconds(self.device), 5)  # once
        return {"device": self.device, "data": self.data.name, "date": datetime.date.today().isoformat(),
                SPEED_KEY: self._speed}  # fmt: skip

    def expected_rows(self, method: str, settings) -> Dict:
        """(setting, split) -> the values ``run_trained`` would give that row here (see ``reusable_rows``)."""
        datasets, budgets, wanted = self.split_datasets(), self.budgets_for(method), {}
        machine = {k: v for k, v in self.provenance().items() if k != "date"}
        for n, budget in enumerate(budgets):
            views = self.eval_views if n == len(budgets) - 1 else self.intermediate_views
            for split, dataset in datasets.items():
                indices, cams = spread(len(dataset), views), dataset.cameras  # score_views records the last size
                wanted[(f"budget {budget:g}s", split)] = {
                    "eval_views": len(indices),
                    "image_size": [int(cams.height[indices[-1]]), int(cams.width[indices[-1]])],
                    "baseline_settings": settings.as_dict(),
                    **machine,
                }
        return wanted

    # ------------------------------------------------------------------ runs
    def row(self, method, setting, settings, split, scores, steps, seconds, **extra) -> ComparisonRow:
        if scores.psnr_masked is not None:
            extra = {**extra, "psnr_masked": scores.psnr_masked}
        row = ComparisonRow(method, setting, settings.as_dict(), split, scores.views, scores.image_size, steps,
                            float(seconds), scores.psnr, scores.ssim, extra)  # fmt: skip
        CONSOLE.print(row.as_dict())
        return row

    def score_splits(self, pipeline, input_indices, novel_indices, label):
        dm = pipeline.datamanager
        pipeline.eval()
        scores = (score_views(camera_renderer(pipeline, dm.train_dataset), dm.train_dataset, input_indices,
                              f"{label} input", masks=self.masks(dm.train_dataset)),
                  score_views(camera_renderer(pipeline, dm.eval_dataset), dm.eval_dataset, novel_indices,
                              f"{label} novel", masks=self.masks(dm.eval_dataset)))  # fmt: skip
        pipeline.train()
        return scores

    def run_trained(self, label, method, settings, rows, make_config, extra) -> None:
        from nerfstudio.engine.trainer import Trainer

        start = time.perf_counter()
        cfg = make_config()
        trainer = Trainer(cfg, local_rank=0, world_size=1)
        trainer.setup()  # test_mode "val": novel views from the val split (NOVEL_SPLIT), as every other row
        dm = trainer.pipeline.datamanager
        step, budgets = 0, self.budgets_for(method)
        for n, budget in enumerate(budgets):
            step = train_until(trainer, start, budget, step)
            train_time = time.perf_counter() - start
            views = self.eval_views if n == len(budgets) - 1 else self.intermediate_views
            inputs = spread(len(dm.train_dataset), views)
            novel = spread(len(dm.eval_dataset), views)
            scored = self.score_splits(trainer.pipeline, inputs, novel, f"{label} {budget:g}s")
            for split, scores in zip(("input", "novel"), scored):
                rows.append(self.row(label, f"budget {budget:g}s", settings, split, scores, step, train_time, **extra))
            start += time.perf_counter() - start - train_time  # evaluation time does not count towards the budget

    def feed_forward_pipeline(self, k: int):
        """T-NeRF in scene mode from ``k`` source views, nothing trained, ready to render (evaluation mode)."""
        cfg = self.trainer_config("tnerf")
        cfg.pipeline.datamanager.num_source_views = k
        pipeline = cfg.pipeline.setup(device=self.device, test_mode=NOVEL_SPLIT)
        pipeline.eval()
        return pipeline

    def run_feed_forward(self, settings, rows, extra) -> None:
        for k in self.source_views:
            pipeline = self.feed_forward_pipeline(k)
            dm = pipeline.datamanager
            entry = dm.eval_scenes[0]
            novel = spread(len(dm.eval_dataset), self.eval_views)
            render = camera_renderer(pipeline, dm.eval_dataset)
            start = time.perf_counter()  # encode + render of one image (model built, data loaded)
            with torch.no_grad():
                render(novel[0])
            seconds = time.perf_counter() - start
            inputs, scored = (
                list(entry.source_indices),
                self.score_splits(pipeline, entry.source_indices, novel, f"K={k}"),
            )
            for split, scores in zip(("input", "novel"), scored):
                rows.append(self.row("tnerf feed-forward", f"K={k}", settings, split, scores, 0, seconds, **extra))
            if baselines.data_kind(self.data) != "capture":  # it splats the foreground on white: objects in a void
                self.run_reprojection(pipeline, k, inputs, novel, settings, rows)

    def run_empty_field(self, settings, rows) -> None:
        """The trivial baseline of every row: a field with nothing in it renders the white background only. Scored on
        the splits every row uses (``split_datasets``), at the same scale. On a capture (content everywhere) also the
        mean-colour image: every pixel the mean colour of the input views."""
        datasets = self.split_datasets()
        mean = None
        if baselines.data_kind(self.data) == "capture":
            train = datasets["input"]
            mean = torch.stack([on_white(train.get_image_float32(i)).reshape(-1, 3).mean(0) for i in range(len(train))])
            mean = mean.mean(0)
        for name, dataset in datasets.items():
            cams = dataset.cameras  # rescaled with the images: a blank image of each view's size, without reading it
            white = lambda i, c=cams: torch.ones(int(c.height[i]), int(c.width[i]), 3)  # noqa: E731
            views, masks = spread(len(dataset), self.eval_views), self.masks(dataset)
            scores = score_views(white, dataset, views, f"empty field {name}", masks=masks)
            rows.append(self.row(EMPTY_FIELD, "-", settings, name, scores, 0, 0.0))
            if mean is not None:
                flat = lambda i, c=cams: mean.expand(int(c.height[i]), int(c.width[i]), 3)  # noqa: E731
                scores = score_views(flat, dataset, views, f"mean colour {name}", masks=masks)
                rows.append(self.row(MEAN_COLOUR, "-", settings, name, scores, 0, 0.0))

    def run_reprojection(self, pipeline, k, inputs, novel, settings, rows) -> None:
        dm = pipeline.datamanager
        background = torch.ones(3)
        start = time.perf_counter()
        entry = dm.eval_scenes[0]
        ctx = dm.context_provider.context(entry.scene_idx)
        depth = ground_truth_depth(
            self.data, entry.source_indices, tuple(ctx.images.shape[-2:]), scene_data.blender_scale(self.data)
        )
        if depth is not None:
            ctx = dataclasses.replace(ctx, depth=depth)
        points, colours, depth_source = source_cloud(ctx, pipeline.model.encoder)

        def renderer(dataset):
            def render(i: int) -> torch.Tensor:
                cam = dataset.cameras[i]
                return splat_image(points, colours, cam.camera_to_worlds.float(), camera_intrinsics(cam), int(cam.height),
                                   int(cam.width), background)  # fmt: skip

            return render

        renderer(dm.eval_dataset)(novel[0])
        seconds = time.perf_counter() - start
        scored = (score_views(renderer(dm.train_dataset), dm.train_dataset, inputs, f"reprojection K={k} input",
                              masks=self.masks(dm.train_dataset)),
                  score_views(renderer(dm.eval_dataset), dm.eval_dataset, novel, f"reprojection K={k} novel",
                              masks=self.masks(dm.eval_dataset)))  # fmt: skip
        for split, scores in zip(("input", "novel"), scored):
            rows.append(self.row("reprojection baseline", f"K={k}", settings, split, scores, 0, seconds,
                                 depth_source=depth_source))  # fmt: skip

    def main(self) -> List[Dict]:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.replot:
            results = read_rows(self.out / "comparison.json")
            if self.tnerf_checkpoint is not None and not any("backbone" in r for r in results):
                extra = self.pretraining()  # runs from before the backbone was recorded
                results = [{**r, **extra} if r.get("pretraining_seconds") is not None else r for r in results]
            if not any(r["method"] == EMPTY_FIELD for r in results):  # runs from before the empty-field row
                rows: List[ComparisonRow] = []
                first = next((r for r in results if r["baseline_settings"]["preset"] == "tnerf"), results[0])
                self.run_empty_field(baselines.BaselineSettings(**first["baseline_settings"]), rows)
                results = [r.as_dict() for r in rows] + results
            (self.out / "comparison.json").write_text(json.dumps(results, indent=2))
            write_table(results, self.out, self.data, CONSOLE)
            plot(results, self.out)
            return results
        models_build_without_lpips_weights()  # nerfacto builds offline (NaN LPIPS, unused)
        previous_file = self.out / "comparison.json"
        previous = read_rows(previous_file) if previous_file.is_file() else []
        kind = baselines.data_kind(self.data)
        if any(m != "tnerf" for m in self.methods):
            self.provenance()  # calibrate first, before any trainer (or data workers it leaves) runs
        rows: List = []  # ComparisonRow, or the dict of a kept row
        for method in self.methods:
            CONSOLE.rule(method)
            if method == "tnerf":
                cameras, box = baselines.parser_cameras(scene_data.parser_config(self.data))
                settings = baselines.tnerf_settings(self.trainer_config("tnerf"), box, cameras, kind)
                extra = self.pretraining()
                self.run_empty_field(settings, rows)
                self.run_feed_forward(settings, rows, extra)
                make = lambda: self.trainer_config("tnerf")  # noqa: E731
                self.run_trained(f"tnerf refined (K={self.refine_views})", "tnerf", settings, rows,
                                 lambda: self.with_views(make()), extra)  # fmt: skip
                continue
            if method == "vanilla-nerf" and self.vanilla_budget is None:
                CONSOLE.print("[yellow]vanilla-nerf left out: give --vanilla-budget to run it at one budget")
                continue
            make = lambda method=method: self.baseline_config(method)[0]  # noqa: E731
            settings = self.baseline_config(method)[1]
            label = method if self.rays_per_step is None else f"{method} (equal rays)"
            kept = None
            if self.reuse_baselines:
                kept = reusable_rows(previous, label, self.expected_rows(method, settings), self.speed_tolerance)
            if kept is not None:
                CONSOLE.print(f"[green]{label}: the {len(kept)} rows of the earlier run in {self.out} are kept (same "
                              "protocol; --no-reuse-baselines re-trains)")  # fmt: skip
                rows.extend(kept)
                continue
            self.run_trained(label, method, settings, rows, make, {"data_kind": kind, **self.provenance()})
        results = [r if isinstance(r, dict) else r.as_dict() for r in rows]
        others = [r for r in previous if method_family(r["method"]) not in self.methods]
        if others:  # a re-run of some methods: the others' rows stay as they were
            CONSOLE.print(f"[green]kept from {previous_file}: {', '.join(dict.fromkeys(r['method'] for r in others))}")
            results = others + results
        (self.out / "comparison.json").write_text(json.dumps(results, indent=2))
        write_table(results, self.out, self.data, CONSOLE)
        plot(results, self.out)
        return results

    def with_views(self, cfg):
        cfg.pipeline.datamanager.num_source_views = self.refine_views
        return cfg


def train_until(trainer, start: float, budget: float, step: int) -> int:
    """Training iterations from ``step`` until ``budget`` seconds have passed since ``start`` (perf_counter); the next
    step."""
    while time.perf_counter() - start < budget:
        trainer.pipeline.train()
        trainer.train_iteration(step)
        step += 1
    return step


def method_family(label: str) -> str:
    """The --methods entry a row's method label comes from (T-NeRF's rows, the trivial rows and the reprojection
    baseline come with tnerf)."""
    return next((m for m in ("nerfacto", "vanilla-nerf") if label.startswith(m)), "tnerf")


if __name__ == "__main__":
    tyro.cli(CompareMethods).main()
