#!/usr/bin/env python
"""Feed-forward quality against the number of source views K, on held-out scenes and in scene mode.

For a trained multi-scene run (e.g. ``make demo``'s), this measures PSNR/SSIM of pure feed-forward predictions
(0 iterations) with K source views:

* on the run's held-out scenes: every scene is encoded from its K farthest-point views and scored on the views that
  are not among its largest source set (so every K is scored on the same images), beside the empty field;
* in scene mode on Blender scenes (``../shared/data/nerf_synthetic/lego`` and ``mic``): sources from the train
  split, scored on spread views of the test split at ``--scale``, beside an all-white image.

Each run writes ``<out>/<label>.json``; ``<out>/method.md`` tabulates every label found there (e.g. ``before`` and
``after`` a change), so README can include it.

    python scripts/evaluate_source_views.py --config demo_output/runs/demo/tnerf/run/config.yml --label after
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, Iterable, List, Literal, Optional, Tuple

import numpy as np
import torch
import tyro
import yaml
from rich.console import Console
from rich.progress import track

from tnerf_ns.evaluation.protocol import psnr, ssim

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)


def load_run(path: Path) -> Tuple[object, Path]:
    """The trainer config and the weights of a trained head: a run's ``config.yml`` (its ``nerfstudio_models/``
    beside it) or an exported head's folder (``config.json`` + ``model.safetensors``, e.g. the shipped
    ``tnerf_ns/weights/tnerf-head-vggt-small``: ``tnerf``'s defaults with the head's recorded model settings, so its
    numbers can be re-measured on a fresh clone without the run that made it)."""
    from tnerf_ns.models.checkpoints import HEAD_WEIGHTS, recorded_head_settings

    if path.is_dir() and (path / "config.json").is_file() and (path / HEAD_WEIGHTS).is_file():
        from tnerf_ns.configs import tnerf_method

        config = copy.deepcopy(tnerf_method.config)
        for name, value in recorded_head_settings(path).items():
            setattr(config.pipeline.model, name, value)
        weights = json.loads((path / "config.json").read_text()).get("backbone_weights")
        if weights and not Path(weights).is_absolute() and (REPO / weights).is_file():
            weights = str(REPO / weights)
        config.pipeline.model.backbone_weights = weights
        return config, path
    if not path.is_file():
        raise SystemExit(
            f"{path}: neither a run's config.yml nor an exported head's folder (config.json + {HEAD_WEIGHTS})"
        )
    return yaml.load(path.read_text(), Loader=yaml.Loader), path.parent / "nerfstudio_models"


def setup_pipeline(config, checkpoint_dir: Path, device: str):
    """A pipeline for evaluation with the run's model weights (any data: the model starts from the checkpoint)."""
    config.pipeline.model.compute_lpips = False
    config.pipeline.model.pretrained = checkpoint_dir
    config.machine.device_type = "cuda" if device == "cuda" else "cpu"
    pipeline = config.pipeline.setup(device=device, test_mode="test")
    pipeline.eval()
    return pipeline


def forget_predictions(pipeline) -> None:
    """Drop cached contexts and planes after the source views changed."""
    model = pipeline.model
    encoder = getattr(model, "encoder", None)
    (encoder.plane_cache if encoder is not None else model._plane_cache).clear()
    pipeline.datamanager.context_provider._contexts.clear()


def score(pipeline, indices: Iterable[int]) -> Dict[str, float]:
    """Mean PSNR/SSIM of feed-forward renders of eval images, and of the empty field (the background only)."""
    dataset = pipeline.datamanager.eval_dataset
    renderer = pipeline.model.renderer_rgb
    rows = []
    for i in indices:
        image = dataset.get_image_float32(i)
        gt = renderer.blend_background(image.to(pipeline.device)).cpu()
        empty = renderer.blend_background(torch.zeros(*image.shape[:2], 4, device=pipeline.device)).cpu()
        with torch.no_grad():
            rgb = pipeline.model.get_outputs_for_camera(dataset.cameras[i : i + 1].to(pipeline.device))["rgb"].cpu()
        rows.append((psnr(rgb, gt), ssim(rgb, gt), psnr(empty, gt), ssim(empty, gt)))
    mean = np.mean(np.array(rows), axis=0)
    return {"psnr": mean[0], "ssim": mean[1], "empty_psnr": mean[2], "empty_ssim": mean[3], "images": len(rows)}


@dataclass
class EvaluateSourceViews:
    """Feed-forward PSNR/SSIM versus the number of source views."""

    config: Path
    """config.yml of a trained multi-scene T-NeRF run, or an exported head's folder (the Blender scenes only)."""
    label: str = "current"
    """Name of this measurement (e.g. before / after)."""
    views: List[int] = field(default_factory=lambda: [2, 4, 8])
    """Source-view counts K."""
    blender_scenes: List[Path] = field(
        default_factory=lambda: [
            REPO.parent / "shared/data/nerf_synthetic/lego",
            REPO.parent / "shared/data/nerf_synthetic/mic",
        ]
    )
    """Blender-layout scenes evaluated in scene mode (0 iterations)."""
    scale: float = 0.25
    """Image scale of the scene-mode evaluation."""
    scene_images: int = 8
    """Test views per Blender scene (spread over the split)."""
    out: Path = REPO / "docs/results/method"
    """Folder of the results (<label>.json, method.md)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    held_out_scenes: bool = True
    """Also measure the run's held-out scenes (False: the Blender scenes only)."""
    lift_depth: Optional[Literal["predicted", "photo-consistent"]] = None
    """Override the run's ``--pipeline.model.lift-depth`` (the sweep is inference-only: the same head with and
    without it)."""

    def load(self) -> Tuple[object, Path]:
        config, checkpoint = load_run(self.config)
        if self.lift_depth is not None:
            config.pipeline.model.lift_depth = self.lift_depth
        return config, checkpoint

    def held_out(self) -> Dict[str, Dict]:
        config, checkpoint = self.load()
        if checkpoint == self.config:
            raise SystemExit(
                f"{self.config}: an exported head has no held-out scenes of its own: pass --no-held-out-scenes"
            )
        config.pipeline.datamanager.num_source_views = max(self.views)
        pipeline = setup_pipeline(config, checkpoint, self.device)
        dm = pipeline.datamanager
        indices = list(range(len(dm.eval_dataset)))  # views outside the largest source sets: the same for every K
        results, largest_sets = {}, {}
        for k in self.views:
            for entry in dm.eval_scenes:  # farthest-point sets are nested: the K views are among the largest set's
                largest = set(entry.source_indices) if k == self.views[0] else largest_sets[entry.scene_idx]
                largest_sets[entry.scene_idx] = largest
                entry.source_indices = type(dm.context_provider).choose_sources(entry.dataset, entry.image_indices, k)
                assert set(entry.source_indices) <= largest, "source sets are not nested"
            forget_predictions(pipeline)
            results[f"K={k}"] = score(pipeline, track(indices, description=f"held-out K={k}", console=CONSOLE))
            CONSOLE.print(f"held-out K={k}: {results[f'K={k}']}")
        return results

    def scene_mode(self, scene: Path) -> Dict[str, Dict]:
        from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

        results = {}
        for k in self.views:
            config, checkpoint = self.load()
            config.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=scene)
            config.pipeline.datamanager.data = scene
            config.pipeline.datamanager.camera_res_scale_factor = self.scale
            config.pipeline.datamanager.num_source_views = k
            pipeline = setup_pipeline(config, checkpoint, self.device)
            n = len(pipeline.datamanager.eval_dataset)
            indices = np.linspace(0, n - 1, min(self.scene_images, n)).round().astype(int).tolist()
            results[f"K={k}"] = score(pipeline, indices)
            CONSOLE.print(f"{scene.name} K={k}: {results[f'K={k}']}")
        return results

    def main(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        results = {"config": str(self.config), "measured": datetime.now().isoformat(timespec="minutes")}
        if self.lift_depth is not None:
            results["lift_depth"] = self.lift_depth
        if self.held_out_scenes:
            results["held_out"] = self.held_out()
        for scene in self.blender_scenes:
            if (scene / "transforms_train.json").is_file():
                results[scene.name] = self.scene_mode(scene)
        (self.out / f"{self.label}.json").write_text(json.dumps(results, indent=2))
        write_markdown(self.out)


def write_markdown(folder: Path) -> None:
    """``method.md``: one row per label, data set and K, from every ``<label>.json`` of the folder."""
    lines = ["## Source views", "", "| measured | data | K | PSNR | SSIM | empty field PSNR | empty field SSIM | images |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    measured = {path: json.loads(path.read_text()) for path in folder.glob("*.json")}
    for path, results in sorted(measured.items(), key=lambda item: (item[1].get("measured", ""), item[0].name)):
        for data, rows in results.items():
            if not isinstance(rows, dict):
                continue
            name = "held-out scenes" if data == "held_out" else f"{data} (scene mode, 0 iterations)"
            for k, r in rows.items():
                lines.append(f"| {path.stem} | {name} | {k[2:]} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                             f"{r['empty_psnr']:.2f} | {r['empty_ssim']:.3f} | {r['images']} |")  # fmt: skip
    (folder / "method.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    tyro.cli(EvaluateSourceViews).main()
