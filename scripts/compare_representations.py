#!/usr/bin/env python
"""Plan A against the tri-plane: the same backbone, data and CPU budget, three representations side by side.

    nice -n 5 python scripts/compare_representations.py            # writes docs/results/plan_a/

For each ``--pipeline.model.representation`` (``triplane``; ``mlp``, every weight of the scene's MLP predicted by a
hyper-network; ``mlp-film``, a FiLM modulation of a shared MLP):

1. train on the same generated scenes (``scripts/make_synthetic_scenes.py`` + ``render_scenes.py``) for the same
   budget of **process CPU seconds** (robust to other jobs sharing the machine), same settings otherwise;
2. score the held-out scenes (never trained on) feed-forward, beside the empty field (background only);
3. scene mode on lego and mic (``/work/shared/data/nerf_synthetic``) at 100x100: 0 iterations (pure feed-forward),
   then per-scene refinement from the prediction for a fixed CPU budget;
4. measure head parameters, encode ms (head only, backbone outputs cached), render ms of a 100x100 image (default
   ``occupancy`` sampler, prediction cached) and field ms per 100k samples.

Writes ``comparison.json``, ``comparison.md`` and ``views.png`` (the same held-out and scene-mode views rendered by
each representation) to ``--out``; ``--replot`` rewrites the markdown and figure from the JSON.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import tyro
from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)
_spec = importlib.util.spec_from_file_location("evaluate_source_views", REPO / "scripts/evaluate_source_views.py")
esv = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = esv  # its dataclasses look their module up
_spec.loader.exec_module(esv)  # its scoring helpers: PSNR/SSIM with the empty field beside, pipeline set-up

COMPARISON_SETTINGS = {
    "pipeline.model.train_backbone": False,
    "pipeline.model.num_coarse_samples": 16,
    "pipeline.model.num_fine_samples": 16,
    "pipeline.datamanager.train_num_rays_per_batch": 128,
    "pipeline.model.occupancy_resolution": 32,
}
"""On top of ``TINY_SETTINGS`` (the test suite's model): a frozen backbone (random-init vggt-small, outputs cached per
source set, as the method freezes VGGT), so that a CPU budget of a minute or two trains the heads; 16 + 16 samples
per ray; a 32^3 occupancy grid for the fast path (built once per prediction). The decoder MLP (width 64, two hidden layers) is the default, the same for every representation."""


def cpu_seconds() -> float:
    return time.process_time()


def median_ms(fn, repeats: int = 3) -> float:
    """Median process CPU milliseconds of ``fn`` after a warm-up: with one thread, the wall time it takes on an idle
    core, whatever else shares the machine."""
    fn()  # warm-up (caches, allocator)
    times = []
    for _ in range(repeats):
        start = cpu_seconds()
        fn()
        times.append(cpu_seconds() - start)
    return 1e3 * statistics.median(times)


@dataclass
class CompareRepresentations:
    """Tri-plane vs. predicted MLP (full weights, FiLM) on the same data and CPU budget."""

    out: Path = REPO / "docs/results/plan_a"
    """Results folder (comparison.json, comparison.md, views.png)."""
    work: Path = REPO / "outputs/plan_a"
    """Generated data and training runs."""
    representations: List[str] = field(default_factory=lambda: ["triplane", "mlp", "mlp-film"])
    num_scenes: int = 12
    """Generated scenes (20 % held out)."""
    max_res: int = 24
    views: int = 8
    size: int = 48
    """Image side of the generated scenes."""
    train_cpu_seconds: float = 40.0
    """Training budget per representation, in process CPU seconds."""
    refine_cpu_seconds: float = 8.0
    """Scene-mode refinement budget per representation and scene, in process CPU seconds."""
    blender_scenes: List[Path] = field(
        default_factory=lambda: [REPO.parent / "shared/data/nerf_synthetic/lego", REPO.parent / "shared/data/nerf_synthetic/mic"]
    )  # fmt: skip
    scale: float = 0.25
    """Scene-mode image scale (the shared copies' 400 px Blender images -> 100x100)."""
    scene_images: int = 3
    """Test views per Blender scene (spread over the split)."""
    threads: int = 1
    """Torch CPU threads (one: on a shared machine more threads mostly spin)."""
    seed: int = 0
    replot: bool = False
    """Run nothing: rewrite comparison.md and views.png from comparison.json (the figure needs the saved views)."""

    # ------------------------------------------------------------------ configuration and training
    def trainer_config(self, representation: str, run: str):
        from tnerf_ns.configs import apply_tiny_settings, tnerf_trainer_config

        cfg = apply_tiny_settings(tnerf_trainer_config())
        for path, value in COMPARISON_SETTINGS.items():
            *parents, name = path.split(".")
            target = cfg
            for parent in parents:
                target = getattr(target, parent)
            setattr(target, name, value)
        cfg.pipeline.model.representation = representation
        cfg.pipeline.model.compute_lpips = False
        cfg.machine.device_type = "cpu"
        cfg.vis = "tensorboard"
        cfg.output_dir, cfg.experiment_name, cfg.timestamp = self.work / "runs", representation, run
        cfg.steps_per_eval_batch = cfg.steps_per_eval_image = cfg.steps_per_eval_all_images = 10**9
        cfg.steps_per_save = cfg.max_num_iterations = 10**9
        cfg.schedule_steps = 10**9  # a constant learning rate: the budget, not a step count, ends the run
        cfg.pipeline.datamanager.data = cfg.pipeline.datamanager.dataparser.data = self.work / "scenes"
        return cfg

    def train(self, cfg, budget: float) -> Dict:
        """Train until ``budget`` process CPU seconds; save the checkpoint; steps and times."""
        from nerfstudio.engine.trainer import Trainer

        torch.manual_seed(self.seed)
        trainer = Trainer(cfg, local_rank=0, world_size=1)
        trainer.setup()
        cpu0, wall0, step = cpu_seconds(), time.perf_counter(), 0
        trainer.pipeline.train()
        while cpu_seconds() - cpu0 < budget:
            trainer.train_iteration(step)
            step += 1
        stats = {"steps": step, "cpu_s": cpu_seconds() - cpu0, "wall_s": time.perf_counter() - wall0}
        trainer.save_checkpoint(step)
        stats["checkpoint"] = str(trainer.checkpoint_dir)
        return stats

    def eval_pipeline(self, cfg, checkpoint: str, blender: Path = None):
        cfg = copy.deepcopy(cfg)
        if blender is not None:
            self.use_blender(cfg, blender)
        return esv.setup_pipeline(cfg, Path(checkpoint), "cpu")

    def use_blender(self, cfg, scene: Path) -> None:
        from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

        cfg.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=scene)
        cfg.pipeline.datamanager.data = scene
        cfg.pipeline.datamanager.camera_res_scale_factor = self.scale

    # ------------------------------------------------------------------ measurements
    def timings(self, pipeline, index: int) -> Dict[str, float]:
        """Head parameters; encode ms (backbone outputs cached), render ms of the eval view ``index`` (prediction and
        occupancy grid cached) and field ms per 100k samples."""
        model = pipeline.model
        camera = pipeline.datamanager.eval_dataset.cameras[index : index + 1]
        ctx = model.context_for_camera(camera)
        with torch.no_grad():
            prediction = model.encoder.encode_cached(ctx)

            def encode():
                model.encoder.plane_cache.clear()
                return model.encoder.encode_cached(ctx)

            encode_ms = median_ms(encode)
            render_ms = median_ms(lambda: model.get_outputs_for_camera(camera))
            gen = torch.Generator().manual_seed(0)
            pts = torch.rand(100_000, 3, generator=gen) * 2 - 1
            dirs = torch.nn.functional.normalize(torch.randn(100_000, 3, generator=gen), dim=-1)
            field_ms = median_ms(lambda: model.field.decode(prediction, pts, dirs), repeats=5)
        return {
            "head_params": sum(p.numel() for p in model.encoder.trainable_parameters()),
            "field_params": sum(p.numel() for p in model.field.parameters()),
            "prediction_numel": prediction.numel(),
            "encode_ms": encode_ms,
            "render_ms": render_ms,
            "image_hw": [int(camera.height), int(camera.width)],
            "field_ms_per_100k": field_ms,
        }

    def render(self, pipeline, index: int) -> torch.Tensor:
        camera = pipeline.datamanager.eval_dataset.cameras[index : index + 1]
        with torch.no_grad():
            return pipeline.model.get_outputs_for_camera(camera)["rgb"].cpu()

    def evaluate(self, rep: str, cfg, checkpoint: str, views: Dict, blender: Path = None) -> Dict:
        pipeline = self.eval_pipeline(cfg, checkpoint, blender)
        n = len(pipeline.datamanager.eval_dataset)
        if blender is None:
            indices = list(range(n))
            shown = self.shown_held_out(pipeline)
        else:
            indices = np.linspace(0, n - 1, min(self.scene_images, n)).round().astype(int).tolist()
            shown = indices[:1]
        result = esv.score(pipeline, indices)
        result.update(self.timings(pipeline, indices[0]))
        for i in shown:
            views.setdefault(f"{blender.name if blender else 'held-out'} #{i}", {})[rep] = self.render(pipeline, i)
            image = pipeline.datamanager.eval_dataset.get_image_float32(i)
            views[f"{blender.name if blender else 'held-out'} #{i}"]["ground truth"] = (
                pipeline.model.renderer_rgb.blend_background(image).cpu()
            )
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in result.items()}

    @staticmethod
    def shown_held_out(pipeline, per_scene: int = 1, scenes: int = 3) -> List[int]:
        """The first evaluation view of up to ``scenes`` held-out scenes."""
        cams = pipeline.datamanager.eval_dataset.cameras
        ids = cams.metadata["scene_idx"][:, 0].tolist() if cams.metadata else [0] * len(cams)
        first = {}
        for i, s in enumerate(ids):
            first.setdefault(s, i)
        return list(first.values())[:scenes]

    # ------------------------------------------------------------------ the whole comparison
    def make_data(self) -> None:
        scenes = self.work / "scenes"
        if scenes.is_dir():
            return
        py = sys.executable
        subprocess.run([py, "scripts/make_synthetic_scenes.py", "--out", str(self.work / "grids"), "--num-scenes",
                        str(self.num_scenes), "--max-res", str(self.max_res), "--seed", str(self.seed)], cwd=REPO,
                       check=True)  # fmt: skip
        subprocess.run([py, "scripts/render_scenes.py", "--scenes", str(self.work / "grids"), "--out", str(scenes),
                        "--views", str(self.views), "--size", f"{self.size}x{self.size}"], cwd=REPO, check=True)  # fmt: skip

    def main(self) -> Dict:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.replot:
            results = json.loads((self.out / "comparison.json").read_text())
            write_markdown(results, self.out)
            return results
        start = time.perf_counter()
        torch.set_num_threads(self.threads)
        self.make_data()
        results: Dict = {"settings": {**COMPARISON_SETTINGS, **{k: v for k, v in vars(self).items()
                                                                 if isinstance(v, (int, float, str))}},
                         "machine": f"CPU x{torch.get_num_threads()} threads, torch {torch.__version__}",
                         "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": {}}  # fmt: skip
        views: Dict[str, Dict[str, torch.Tensor]] = {}
        for rep in self.representations:
            CONSOLE.rule(f"{rep}: training for {self.train_cpu_seconds:g} CPU seconds")
            cfg = self.trainer_config(rep, "train")
            row = results["rows"][rep] = {"train": self.train(cfg, self.train_cpu_seconds)}
            CONSOLE.print(row["train"])
            row["held_out"] = self.evaluate(rep, cfg, row["train"]["checkpoint"], views)
            CONSOLE.print({"held_out": row["held_out"]})
            for scene in self.blender_scenes:
                if not (scene / "transforms_train.json").is_file():
                    CONSOLE.print(f"[yellow]{scene} not found: skipped")
                    continue
                ff = self.evaluate(rep, cfg, row["train"]["checkpoint"], {}, scene)
                refine_cfg = self.trainer_config(rep, f"refine_{scene.name}")
                self.use_blender(refine_cfg, scene)
                refine_cfg.pipeline.model.pretrained = Path(row["train"]["checkpoint"])
                refined_train = self.train(refine_cfg, self.refine_cpu_seconds)
                refined = self.evaluate(rep, refine_cfg, refined_train["checkpoint"], views, scene)
                row[scene.name] = {"iterations_0": ff, "refined": {**refined, "train": refined_train}}
                CONSOLE.print({scene.name: row[scene.name]})
            (self.out / "comparison.json").write_text(json.dumps(results, indent=2))
        results["field_speed_default_sizes"] = field_speed(self.threads)
        results["total_wall_s"] = time.perf_counter() - start
        (self.out / "comparison.json").write_text(json.dumps(results, indent=2))
        torch.save(views, self.work / "views.pt")
        write_figure(views, self.representations, self.out / "views.png")
        write_markdown(results, self.out)
        return results


def field_speed(threads: int) -> Dict[str, float]:
    """ms per 100k samples of each field at the method's default sizes (64x64x32 planes, MLP width 64), one scene,
    and of the predicted MLP batched over 8 scenes (12.5k samples each, one batched product per layer)."""
    from tnerf_ns.fields.hyper_mlp_field import HyperMLPField
    from tnerf_ns.fields.triplane_field import TriplaneField

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    pts = torch.rand(100_000, 3, generator=gen) * 2 - 1
    dirs = torch.nn.functional.normalize(torch.randn(100_000, 3, generator=gen), dim=-1)
    out = {}
    with torch.no_grad():
        triplane = TriplaneField(32, 64, 2, 4, 3)
        planes = torch.randn(3, 32, 64, 64, generator=gen)
        out["triplane"] = median_ms(lambda: triplane.decode(planes, pts, dirs), repeats=5)
        for rep, mode in (("mlp", "full"), ("mlp-film", "film")):
            fld = HyperMLPField(mode, 64, 2, 6, 3)
            mean, std = fld.prediction_init()
            one = mean + std * torch.randn(len(mean), generator=gen)
            out[rep] = median_ms(lambda: fld.decode(one, pts, dirs), repeats=5)
            many = mean + std * torch.randn(8, len(mean), generator=gen)
            out[f"{rep} (8 scenes batched)"] = median_ms(
                lambda: fld.decode(many, pts.view(8, -1, 3), dirs.view(8, -1, 3)), repeats=5
            )
    return out


def write_figure(views: Dict[str, Dict[str, torch.Tensor]], reps: List[str], path: Path, tile: int = 112) -> None:
    """One row per view: ground truth, then each representation's render."""
    from PIL import Image, ImageDraw

    from tnerf_ns.report import _to_pil

    columns = ["ground truth", *reps]
    header, left = 18, 110
    grid = Image.new("RGB", (left + len(columns) * (tile + 6), header + len(views) * (tile + 6)), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(columns):
        draw.text((left + c * (tile + 6) + 4, 3), name, fill=(0, 0, 0))
    for r, (label, row) in enumerate(views.items()):
        y = header + r * (tile + 6)
        draw.text((4, y + tile // 2 - 6), label, fill=(0, 0, 0))
        for c, name in enumerate(columns):
            if name in row:
                tile_img = _to_pil(row[name], tile)
                grid.paste(tile_img.resize((tile, tile)), (left + c * (tile + 6), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def outcome(rows: Dict) -> List[str]:
    """Plain sentences: per data set, the best representation and each one's margin over the empty field."""
    sentences = []
    datasets = [("held_out", None, "held-out scenes")] + [
        (k, p, f"{k} ({'0 iterations' if p == 'iterations_0' else 'refined'})")
        for k in next(iter(rows.values()))
        if k not in ("train", "held_out")
        for p in ("iterations_0", "refined")
    ]
    for data, phase, name in datasets:
        scores = {rep: (row[data] if phase is None else row[data][phase]) for rep, row in rows.items()}
        best = max(scores, key=lambda rep: scores[rep]["psnr"])
        margins = ", ".join(f"{rep} {r['psnr'] - r['empty_psnr']:+.2f} dB" for rep, r in scores.items())
        sentences.append(f"- {name}: best PSNR **{best}**; over the empty field: {margins}.")
    return sentences


def write_markdown(results: Dict, out: Path) -> None:
    rows, s = results["rows"], results["settings"]
    lines = [
        "## Plan A: predicted MLP vs. tri-plane",
        "",
        f"Measured {results['measured']} on {results['machine']} (`scripts/compare_representations.py`). Every "
        f"representation trained on the same generated scenes ({s['num_scenes']} made, 20 % held out by name; "
        f"{s['size']}x{s['size']} px, {s['views']} views) for {s['train_cpu_seconds']:g} process CPU seconds; lego and mic in scene mode at "
        f"100x100 px, {s['scene_images']} test views, refined for {s['refine_cpu_seconds']:g} CPU seconds. Empty field "
        "= rendering nothing (the background only), the floor to beat.",
        "",
        "| data | representation | PSNR | SSIM | empty field PSNR | empty field SSIM | steps |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for data, label in [("held_out", "held-out scenes (feed-forward)")] + [
        (k, None) for k in next(iter(rows.values())) if k not in ("train", "held_out")
    ]:
        for phase in ["held_out"] if data == "held_out" else ["iterations_0", "refined"]:
            for rep, row in rows.items():
                r = row[data] if data == "held_out" else row[data][phase]
                name = label or (f"{data}, 0 iterations" if phase == "iterations_0" else f"{data}, refined")
                steps = row["train"]["steps"] if data == "held_out" else r.get("train", {}).get("steps", 0)
                lines.append(f"| {name} | {rep} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['empty_psnr']:.2f} | "
                             f"{r['empty_ssim']:.3f} | {steps} |")  # fmt: skip
    lines += [
        "",
        "| representation | head params | shared field params | per-scene numbers | encode ms | render ms (100x100) "
        "| field ms / 100k samples | train steps in budget |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rep, row in rows.items():
        t = next((row[k]["iterations_0"] for k in row if k not in ("train", "held_out")), row["held_out"])
        lines.append(f"| {rep} | {t['head_params']:,} | {t['field_params']:,} | {t['prediction_numel']:,} | "
                     f"{t['encode_ms']:.1f} | {t['render_ms']:.0f} | {t['field_ms_per_100k']:.1f} | "
                     f"{row['train']['steps']} |")  # fmt: skip
    speed = results.get("field_speed_default_sizes", {})
    if speed:
        lines += ["", "Field speed at the method's default sizes (64x64x32 planes; MLP width 64, two hidden layers), "
                  f"{results['settings']['threads']} CPU thread(s):", "", "| field | ms per 100k samples |",
                  "|---|---:|"] + [f"| {k} | {v:.1f} |" for k, v in speed.items()]  # fmt: skip
    lines += ["", "**Outcome.**", ""] + outcome(rows)
    lines += [
        "",
        "Times are process CPU ms with one thread (the wall time on an idle core; the machine is shared). "
        "Encode ms: the head on cached backbone outputs (what differs between representations). Render ms: one "
        f"{t['image_hw'][0]}x{t['image_hw'][1]} image with the default `occupancy` sampler, prediction and occupancy "
        "grid cached. Field ms: density and colour of 100k samples of one predicted scene.",
        "",
        "## Views",
        "",
        "The same views rendered by each representation (held-out scenes feed-forward; lego and mic refined):",
        "",
        "![views](views.png)",
        "",
    ]
    (out / "comparison.md").write_text("\n".join(lines))
    CONSOLE.print("\n".join(lines))


if __name__ == "__main__":
    tyro.cli(CompareRepresentations).main()
