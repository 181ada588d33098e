#!/usr/bin/env python
"""Feed-forward T-NeRF versus per-scene NeRF on the same scene, side by side, in one run.

    python scripts/compare_methods.py --data ../shared/data/nerf_synthetic/lego \
        --tnerf-checkpoint demo_output/runs/demo/tnerf/run/nerfstudio_models --budgets 30 60 120

Runs, on one nerfstudio-format scene (Blender ``transforms_*.json`` or nerfstudio ``transforms.json``):

* T-NeRF feed-forward with K = 2, 4, 8 source views (needs a trained T-NeRF checkpoint);
* T-NeRF with per-scene refinement from that prediction, stopped at each wall-clock budget;
* nerfstudio's own per-scene methods (``nerfacto`` with its torch implementation on CPU, ``vanilla-nerf``), trained
  through nerfstudio's Trainer for the same budgets.

Every method is scored on the same evaluation views (PSNR, SSIM, LPIPS when its AlexNet weights can be loaded —
otherwise "n/a", for the baselines too). Writes ``comparison.md`` (table: metrics, time to first image, time to
each budget) and ``psnr_vs_time.png``. Wall-clock times include model construction and data loading.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import tyro
from rich.console import Console

CONSOLE = Console(width=120)


def lpips_or_stub() -> None:
    """nerfstudio's models build LPIPS (which downloads AlexNet weights) in their constructors; offline this would
    crash them. Replace it, where it cannot be built, by a metric that reports NaN (shown as n/a)."""
    import torchmetrics.image.lpip as lpip_module
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    try:
        LearnedPerceptualImagePatchSimilarity(normalize=True)
        return
    except Exception:
        CONSOLE.print("[yellow]LPIPS unavailable offline (AlexNet weights cannot be downloaded): reported as n/a")

    class NoLPIPS(torch.nn.Module):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__()

        def forward(self, a, b):
            return torch.tensor(float("nan"))

    # nerfstudio's models import the class inside populate_modules, from this module (this process only)
    lpip_module.LearnedPerceptualImagePatchSimilarity = NoLPIPS


@dataclass
class CompareMethods:
    """T-NeRF (feed-forward and refined) against per-scene nerfstudio methods on one scene."""

    data: Path
    """Scene folder (Blender transforms_*.json, or nerfstudio transforms.json)."""
    out: Path = Path("comparison")
    """Output folder."""
    methods: List[str] = field(default_factory=lambda: ["tnerf", "nerfacto", "vanilla-nerf"])
    """Methods to run: tnerf (feed-forward + refinement), nerfacto, vanilla-nerf, any other nerfstudio method."""
    tnerf_checkpoint: Optional[Path] = None
    """Trained T-NeRF checkpoint (file or nerfstudio_models folder); required for tnerf."""
    source_views: List[int] = field(default_factory=lambda: [2, 4, 8])
    """K values for feed-forward T-NeRF."""
    budgets: List[float] = field(default_factory=lambda: [30.0, 60.0, 120.0])
    """Wall-clock training budgets (seconds) for refinement and the per-scene baselines."""
    eval_images: int = 8
    """Evaluation views used (spread over the eval split)."""
    scale: float = 0.25
    """Image scale (camera_res_scale_factor) for training and evaluation."""
    rays_per_batch: int = 1024
    """Training rays per step for every method."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Device."""
    replot: bool = False
    """Run nothing: rewrite comparison.md and psnr_vs_time.png from the --out folder's comparison.json."""

    def parser_args(self):
        from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
        from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

        if (self.data / "transforms_train.json").exists():
            return BlenderDataParserConfig(data=self.data, scale_factor=self.blender_scale())
        return NerfstudioDataParserConfig(data=self.data, orientation_method="none", center_method="none",
                                          auto_scale_poses=False)  # fmt: skip

    def blender_scale(self) -> float:
        """Scenes from scripts/render_scenes.py record their world box: scale it onto the Blender parser's fixed
        [-1.5, 1.5] box (the frame T-NeRF was trained in). Other Blender scenes (lego) are used as they are."""
        meta_file = self.data / "transforms.json"
        if not meta_file.is_file():
            return 1.0
        box = json.loads(meta_file.read_text()).get("tnerf", {}).get("world_box")
        if box is None:
            return 1.0
        box = np.asarray(box, dtype=np.float64).reshape(2, 3)
        if np.abs(box.mean(0)).max() > 1e-6 * np.abs(box).max():
            raise ValueError(f"{meta_file}: scene box {box.tolist()} is not centred at the origin; the Blender parser "
                             "cannot shift it")  # fmt: skip
        return 3.0 / float((box[1] - box[0]).max())

    def trainer_config(self, method: str, max_iters: int, **model_overrides):
        from nerfstudio.configs.method_configs import all_methods

        cfg = copy.deepcopy(all_methods[method])
        cfg.machine.device_type = "cuda" if self.device == "cuda" else "cpu"
        cfg.vis = "tensorboard"
        cfg.output_dir = self.out / "runs"
        cfg.experiment_name = method
        cfg.max_num_iterations = max_iters
        cfg.steps_per_eval_batch = cfg.steps_per_eval_image = cfg.steps_per_eval_all_images = 10**9
        cfg.steps_per_save = 10**9
        cfg.pipeline.datamanager.dataparser = self.parser_args()
        cfg.pipeline.datamanager.data = self.data
        cfg.pipeline.datamanager.camera_res_scale_factor = self.scale
        cfg.pipeline.datamanager.train_num_rays_per_batch = self.rays_per_batch
        if hasattr(cfg.pipeline.model, "implementation") and self.device != "cuda":
            cfg.pipeline.model.implementation = "torch"
        if method == "tnerf" and self.tnerf_checkpoint is not None:
            trained = self.trained_model_config()
            if trained is not None:  # same architecture as the checkpoint (sizes, backbone, samples)
                cfg.pipeline.model = trained
            else:
                cfg.pipeline.model.backbone = "vggt-small"
        for key, value in model_overrides.items():
            setattr(cfg.pipeline.model, key, value)
        cfg.set_timestamp()
        return cfg

    def trained_model_config(self):
        """The model config of the run the T-NeRF checkpoint comes from (its config.yml), if it can be found."""
        import yaml

        folder = self.tnerf_checkpoint if self.tnerf_checkpoint.is_dir() else self.tnerf_checkpoint.parent
        config_file = folder.parent / "config.yml"
        if not config_file.is_file():
            return None
        trained = yaml.load(config_file.read_text(), Loader=yaml.Loader)
        return copy.deepcopy(trained.pipeline.model)

    def evaluate(self, pipeline) -> Dict[str, float]:
        dataset = pipeline.datamanager.eval_dataset
        idx = np.linspace(0, len(dataset) - 1, min(self.eval_images, len(dataset))).round().astype(int)
        pipeline.eval()
        rows = []
        for i in idx:
            camera = dataset.cameras[int(i) : int(i) + 1].to(pipeline.device)
            batch = dataset[int(i)]
            with torch.no_grad():
                outputs = pipeline.model.get_outputs_for_camera(camera)
                metrics, _ = pipeline.model.get_image_metrics_and_images(outputs, batch)
            rows.append(metrics)
        pipeline.train()
        # vanilla-nerf reports its fine pass as fine_ssim / fine_lpips
        names = {k: next((n for n in (k, f"fine_{k}") if n in rows[0]), None) for k in ("psnr", "ssim", "lpips")}
        means = {}
        for k, n in names.items():
            if n is None:
                continue
            values = np.array([float(r[n]) for r in rows])
            finite = values[np.isfinite(values)]
            means[k] = float(finite.mean()) if finite.size else float("nan")  # LPIPS offline: all NaN -> n/a
        means["eval_views"] = len(idx)
        return means

    def run_trained(self, label: str, method: str, results: List[Dict], **overrides) -> None:
        from nerfstudio.engine.trainer import Trainer

        start = time.perf_counter()
        cfg = self.trainer_config(method, 10**9, **overrides)
        trainer = Trainer(cfg, local_rank=0, world_size=1)
        trainer.setup()
        step, first_image = 0, None
        for budget in sorted(self.budgets):
            while time.perf_counter() - start < budget:
                trainer.pipeline.train()
                trainer.train_iteration(step)
                step += 1
            train_time = time.perf_counter() - start
            metrics = self.evaluate(trainer.pipeline)
            first_image = first_image or train_time
            results.append({"method": label, "setting": f"budget {budget:g}s", "steps": step, "seconds": train_time,
                            **metrics})  # fmt: skip
            CONSOLE.print(results[-1])
            start += time.perf_counter() - start - train_time  # evaluation time does not count towards the budget

    def run_feed_forward(self, results: List[Dict]) -> None:
        for k in self.source_views:
            start = time.perf_counter()
            cfg = self.trainer_config("tnerf", 0, pretrained=self.tnerf_checkpoint)
            cfg.pipeline.datamanager.num_source_views = k
            pipeline = cfg.pipeline.setup(device=self.device, test_mode="test")
            camera = pipeline.datamanager.eval_dataset.cameras[0:1].to(pipeline.device)
            pipeline.eval()
            with torch.no_grad():
                pipeline.model.get_outputs_for_camera(camera)
            first = time.perf_counter() - start
            metrics = self.evaluate(pipeline)
            results.append(
                {"method": "tnerf feed-forward", "setting": f"K={k}", "steps": 0, "seconds": first, **metrics}
            )
            CONSOLE.print(results[-1])

    def main(self) -> List[Dict]:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.replot:
            results = json.loads((self.out / "comparison.json").read_text())
            self.write_table(results)
            self.plot(results)
            return results
        lpips_or_stub()
        results: List[Dict] = []
        for method in self.methods:
            CONSOLE.rule(method)
            if method == "tnerf":
                if self.tnerf_checkpoint is None:
                    raise ValueError("--tnerf-checkpoint is required for the tnerf method")
                self.run_feed_forward(results)
                self.run_trained("tnerf refined (K=4)", "tnerf", results, pretrained=self.tnerf_checkpoint)
            else:
                self.run_trained(method, method, results)
        (self.out / "comparison.json").write_text(json.dumps(results, indent=2))
        self.write_table(results)
        self.plot(results)
        return results

    def write_table(self, results: List[Dict]) -> None:
        def fmt(r, key, digits):
            v = r.get(key)
            return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"

        views = results[0].get("eval_views", self.eval_images) if results else self.eval_images
        lines = [f"Scene `{self.data}` at scale {self.scale}, {views} evaluation views, device {self.device}.", "",
                 "| method | setting | steps | wall time (s) | PSNR | SSIM | LPIPS |", "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in results:
            lines.append(f"| {r['method']} | {r['setting']} | {r['steps']} | {r['seconds']:.1f} | {fmt(r, 'psnr', 2)} | "
                         f"{fmt(r, 'ssim', 3)} | {fmt(r, 'lpips', 3)} |")  # fmt: skip
        lines += ["", "Feed-forward rows: wall time = time to the first rendered image (model build, encoding, "
                  "one image). Budget rows: training time when the budget was reached (evaluation excluded)."]  # fmt: skip
        if all(fmt(r, "lpips", 3) == "n/a" for r in results):
            lines.append("LPIPS n/a: its AlexNet weights could not be downloaded on this machine (offline).")
        text = "\n".join(lines) + "\n"
        (self.out / "comparison.md").write_text(text)
        CONSOLE.print(text)

    def plot(self, results: List[Dict]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for method in dict.fromkeys(r["method"] for r in results):
            rows = [r for r in results if r["method"] == method]
            style = "o" if method == "tnerf feed-forward" else "o-"
            ax.plot([r["seconds"] for r in rows], [r["psnr"] for r in rows], style, label=method)
            if method == "tnerf feed-forward":
                for r in rows:
                    ax.annotate(r["setting"], (r["seconds"], r["psnr"]), textcoords="offset points", xytext=(5, 3),
                                fontsize=8)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("wall-clock seconds (log)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out / "psnr_vs_time.png", dpi=120)


if __name__ == "__main__":
    tyro.cli(CompareMethods).main()
