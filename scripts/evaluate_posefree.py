#!/usr/bin/env python
"""Pose-free evaluation: VGGT's cameras (``tnerf-photos``) against the ground truth on held-out generated scenes.

1. Generates fresh object scenes (a seed no training run used) and renders them like the demo (16 views, 96 px), unless
   ``--scenes`` already holds them.
2. Poses each scene's ``images/`` folder with :mod:`tnerf_ns.posing`, ignoring the ground-truth poses.
3. Camera accuracy after a Sim(3) alignment (Umeyama on camera centres) onto the ground truth: rotation error
   (degrees), centre error (fraction of the scene box's longest side) and field-of-view error (degrees), beside the
   mean-pose baseline (every camera at the true centroid with the chordal-mean rotation and the mean field of view).
4. With a trained T-NeRF run (default: the demo's), feed-forward novel-view PSNR in scene mode from the same K source
   photos: with ground-truth poses and scene box, and pose-free (``tnerf-photos``: predicted source cameras, predicted
   scene box), the targets rendered at the ground-truth cameras aligned into the predicted frame (the inverse Sim(3)).

Writes ``<out>/<label>.json`` and ``<out>/posefree.md`` (README includes it)::

    nice -n 5 python scripts/evaluate_posefree.py --backbone vggt-small --label vggt-small-synthetic
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import numpy as np
import torch
import tyro
import yaml
from nerfstudio.data.dataparsers.nerfstudio_dataparser import Nerfstudio, NerfstudioDataParserConfig
from nerfstudio.data.scene_box import SceneBox
from rich.console import Console

from tnerf_ns.data.photos_dataparser import TNeRFPhotosDataParserConfig
from tnerf_ns.evaluation.protocol import psnr
from tnerf_ns.posing import PosingConfig, ensure_transforms
from tnerf_ns.posing.metrics import align_sim3, aligned_errors, mean_pose_baseline
from tnerf_ns.scenes.render_dataset import recorded_world_box

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)


@dataclass
class BoxedNerfstudioConfig(NerfstudioDataParserConfig):
    """nerfstudio-data with the scene box given (the ground truth's)."""

    _target: Type = field(default_factory=lambda: BoxedNerfstudio)
    box: Tuple[Tuple[float, float, float], Tuple[float, float, float]] = ((-1, -1, -1), (1, 1, 1))
    """Scene box (min, max)."""


class BoxedNerfstudio(Nerfstudio):
    def _generate_dataparser_outputs(self, split="train"):
        outputs = super()._generate_dataparser_outputs(split)
        return dataclasses.replace(outputs, scene_box=SceneBox(aabb=torch.tensor(self.config.box, dtype=torch.float32)))


def read_cameras(meta_file: Path) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Image name -> (camera-to-world [3, 4], field of view (h, w) in degrees, intrinsics fx fy cx cy w h)."""
    meta = json.loads(meta_file.read_text())
    cams = {}
    for frame in meta["frames"]:
        get = lambda k: float(frame.get(k, meta.get(k)))  # noqa: E731  (per-frame value, else the shared one)
        fx, fy, cx, cy, w, h = (get(k) for k in ("fl_x", "fl_y", "cx", "cy", "w", "h"))
        fov = np.degrees([2 * math.atan(h / 2 / fy), 2 * math.atan(w / 2 / fx)])
        cams[Path(frame["file_path"]).name] = (np.asarray(frame["transform_matrix"])[:3], fov, (fx, fy, cx, cy, w, h))
    return cams


@dataclass
class EvaluatePoseFree:
    """Camera accuracy and T-NeRF novel-view PSNR of pose-free input on held-out generated scenes."""

    label: str = "current"
    """Name of this measurement (the weights, e.g. vggt-small-synthetic)."""
    backbone: Literal["vggt-1b", "vggt-small"] = "vggt-small"
    """VGGT that poses the photos."""
    weights: Optional[str] = None
    """Its weights; None: the preset's default (vggt-small: the shipped pre-trained file)."""
    max_tokens: int = 100_000
    """Token budget of one VGGT pass (a small one forces anchored chunks, to measure what chunking costs)."""
    scenes: Path = REPO / "demo_output" / "posefree_scenes"
    """Rendered held-out scenes (made here when missing)."""
    num_scenes: int = 5
    """Scenes generated when --scenes is missing."""
    max_scenes: Optional[int] = None
    """Evaluate only the first N scenes."""
    seed: int = 2026
    """Generator seed of those scenes (the demo and the backbone pre-training use 0)."""
    tnerf_config: Path = REPO / "demo_output" / "runs" / "demo" / "tnerf" / "run" / "config.yml"
    """Trained T-NeRF run for the PSNR part (skipped when missing)."""
    num_source_views: int = 4
    """K source photos per scene (farthest-point on the true cameras, the same photos in both settings)."""
    out: Path = REPO / "docs" / "results" / "posefree"
    """Folder of <label>.json and posefree.md."""
    work: Path = REPO / "demo_output" / "posefree_work"
    """Scratch folder (posed datasets)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"

    def make_scenes(self) -> None:
        if (self.scenes / "scenes.json").is_file():
            return
        grids = self.scenes.parent / (self.scenes.name + "_grids")
        for args in (["scripts/make_synthetic_scenes.py", "--out", str(grids), "--num-scenes", str(self.num_scenes),
                      "--max-res", "64", "--seed", str(self.seed)],
                     ["scripts/render_scenes.py", "--scenes", str(grids), "--out", str(self.scenes), "--views", "16",
                      "--size", "96x96", "--seed", str(self.seed)]):  # fmt: skip
            subprocess.run([sys.executable, *args], cwd=REPO, check=True)

    def pipeline(self, parser, scene: Path):
        config = yaml.load(self.tnerf_config.read_text(), Loader=yaml.Loader)
        config.pipeline.datamanager.dataparser = parser
        config.pipeline.datamanager.data = scene
        config.pipeline.datamanager.num_source_views = self.num_source_views
        config.pipeline.model.compute_lpips = False
        config.pipeline.model.pretrained = self.tnerf_config.parent / "nerfstudio_models"
        config.machine.device_type = "cuda" if self.device == "cuda" else "cpu"
        pipeline = config.pipeline.setup(device=self.device, test_mode="test")
        pipeline.eval()
        return pipeline

    def render(self, pipeline, sources: List[str], targets: Dict[str, torch.Tensor], cameras) -> Dict[str, float]:
        """PSNR of feed-forward renders at ``cameras`` (one per target) from the named source photos."""
        dm = pipeline.datamanager
        entry = dm.context_provider.entry(dm.context_provider.default_scene)
        names = [Path(f).name for f in entry.dataset.image_filenames]
        entry.source_indices = [names.index(s) for s in sources]
        dm.context_provider._contexts.clear()  # the sources changed: forget cached contexts and planes
        pipeline.model.encoder.plane_cache.clear()
        blend = pipeline.model.renderer_rgb.blend_background
        values, empty = [], []
        for (name, image), camera in zip(targets.items(), cameras):
            gt = blend(image.to(pipeline.device)).cpu()
            with torch.no_grad():
                rgb = pipeline.model.get_outputs_for_camera(camera.to(pipeline.device))["rgb"].cpu()
            values.append(psnr(rgb, gt))
            empty.append(psnr(blend(torch.zeros(*image.shape[:2], 4, device=pipeline.device)).cpu(), gt))
        return {"psnr": float(np.mean(values)), "empty_psnr": float(np.mean(empty))}

    def novel_views(self, scene: Path, posed: Path, gt: Dict, pred: Dict) -> Dict[str, float]:
        from nerfstudio.cameras.cameras import Cameras, CameraType

        box = tuple(map(tuple, recorded_world_box(scene).tolist()))
        gt_parser = BoxedNerfstudioConfig(data=scene, box=box, orientation_method="none", center_method="none",
                                          auto_scale_poses=False, eval_mode="all",
                                          depth_unit_scale_factor=1.0)  # fmt: skip
        with_gt = self.pipeline(gt_parser, scene)
        entry = with_gt.datamanager.context_provider.entry(with_gt.datamanager.context_provider.default_scene)
        names = [Path(f).name for f in entry.dataset.image_filenames]
        sources = [names[i] for i in entry.source_indices]
        dataset = entry.dataset
        targets = {n: dataset.get_image_float32(i) for i, n in enumerate(names) if n not in sources}
        result = {"sources": sources, "targets": len(targets)}
        result["gt_poses"] = self.render(with_gt, sources, targets, [dataset.cameras[names.index(n)] for n in targets])
        del with_gt

        free_parser = TNeRFPhotosDataParserConfig(data=scene / "images", output_dir=posed, eval_mode="all",
                                                  backbone=self.backbone, weights=self.weights,
                                                  max_tokens=self.max_tokens)  # fmt: skip
        free = self.pipeline(free_parser, scene / "images")
        order = sorted(gt)
        to_pred = align_sim3(torch.tensor(np.stack([gt[n][0] for n in order])).float(),
                             torch.tensor(np.stack([pred[n][0] for n in order])).float())  # fmt: skip
        cameras = []
        for name in targets:
            c2w = to_pred.c2w(torch.tensor(gt[name][0]).float())
            fx, fy, cx, cy, w, h = gt[name][2]
            cameras.append(Cameras(camera_to_worlds=c2w[None], fx=fx, fy=fy, cx=cx, cy=cy, width=int(w), height=int(h),
                                   camera_type=CameraType.PERSPECTIVE))  # fmt: skip
        result["pose_free"] = self.render(free, sources, targets, cameras)
        return result

    def main(self) -> None:
        self.make_scenes()
        index = json.loads((self.scenes / "scenes.json").read_text())
        names = list(index["scenes"])[: self.max_scenes]  # all generated here: none was seen in training
        config = PosingConfig(backbone=self.backbone, weights=self.weights, max_tokens=self.max_tokens)
        results = {"label": self.label, "backbone": self.backbone, "weights": config.resolved_weights(),
                   "max_tokens": self.max_tokens,
                   "measured": datetime.now().isoformat(timespec="minutes"), "scenes": {}}  # fmt: skip
        for name in names:
            scene = self.scenes / name
            posed = self.work / self.label / name
            meta_file = ensure_transforms(scene / "images", config, posed, self.device)
            gt, pred = read_cameras(scene / "transforms.json"), read_cameras(meta_file)
            order = sorted(gt)
            stack = lambda cams, i: torch.tensor(np.stack([cams[n][i] for n in order])).double()  # noqa: E731
            size = float(np.ptp(recorded_world_box(scene), 0).max())
            row = {
                "views": len(order),
                "passes": len(json.loads(meta_file.read_text())["tnerf_photos"]["passes"]),
                "vggt": aligned_errors(stack(pred, 0), stack(pred, 1), stack(gt, 0), stack(gt, 1), size),
                "baseline": mean_pose_baseline(stack(gt, 0), stack(gt, 1), size),
            }
            if self.tnerf_config.is_file():
                row.update(self.novel_views(scene, posed, gt, pred))
            results["scenes"][name] = row
            CONSOLE.print(f"{name}: {json.dumps(row)}", soft_wrap=True)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{self.label}.json").write_text(json.dumps(results, indent=2))
        write_markdown(self.out)


def write_markdown(folder: Path) -> None:
    """posefree.md: per measurement (label) the mean camera errors beside the baseline, and the PSNRs."""
    lines = ["| weights (label) | scenes | VGGT passes per scene | rotation error (deg) | centre error (x scene size) "
             "| FoV error (deg) | AUC@30 (pairs) | T-NeRF PSNR, true poses | T-NeRF PSNR, pose-free | empty-field PSNR |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for path in sorted(folder.glob("*.json")):
        res = json.loads(path.read_text())
        if "scenes" not in res:  # a real capture's cameras (scripts/evaluate_posefree_capture.py, its own table)
            continue
        rows = list(res["scenes"].values())
        mean = lambda *keys: float(np.mean([_get(r, keys) for r in rows]))  # noqa: E731
        psnrs = ("—", "—", "—")
        if all("gt_poses" in r for r in rows):
            psnrs = tuple(
                f"{mean(*k):.2f}" for k in (("gt_poses", "psnr"), ("pose_free", "psnr"), ("gt_poses", "empty_psnr"))
            )
        cells = [f"{res['label']} (`{res['backbone']}`)", str(len(rows)), f"{mean('passes'):g}"]
        for key, digits in (("rotation_deg", 1), ("centre_rel", 3), ("fov_deg", 1), ("auc30", 3)):
            cells.append(f"{mean('vggt', key):.{digits}f} (baseline {mean('baseline', key):.{digits}f})")
        lines.append("| " + " | ".join([*cells, *psnrs]) + " |")
    (folder / "posefree.md").write_text("\n".join(lines) + "\n")


def _get(row: Dict, keys) -> float:
    for key in keys:
        row = row[key]
    return row


if __name__ == "__main__":
    tyro.cli(EvaluatePoseFree).main()
