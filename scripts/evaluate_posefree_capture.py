#!/usr/bin/env python
"""Pose-free cameras on a real capture: ``tnerf-photos`` posing (as ``scripts/photos_to_transforms.py``) scored
against the capture's own (COLMAP) cameras.

1. Poses the capture's ``images/`` (all, or ``--max-images`` evenly spaced) with :mod:`tnerf_ns.posing`, ignoring the
   capture's cameras; the posed ``transforms.json`` lands in ``--work/<label>`` and is reused on the next run when it
   was made from the same photos and settings.
2. Matches the predicted and the capture's cameras by file name and aligns the predicted camera centres onto the true
   ones with a Sim(3) (Umeyama), then measures, per camera: rotation error (degrees), centre error (in units of the
   longest side of the bounding box of the true camera centres: a capture has no scene box) and field-of-view error
   (degrees, mean over both axes; the capture's lens distortion is ignored), and VGGT's alignment-free AUC@30 over all
   view pairs; all beside the mean-pose baseline of ``scripts/evaluate_posefree.py`` (every camera at the true
   centroid with the chordal-mean true rotation and the mean true field of view).

Writes ``<out>/capture-<label>.json`` and ``<out>/capture.md`` (every ``capture-*.json`` of ``<out>``; docs/posefree.md
includes it)::

    nice -n 5 python scripts/evaluate_posefree_capture.py --label fox-vggt-small        # the fox capture, 50 photos
    python scripts/evaluate_posefree_capture.py --poser colmap --label fox-colmap       # COLMAP (pycolmap) instead

With ``--poser colmap`` the photos are posed by COLMAP through pycolmap (``tnerf_ns.posing.colmap``): the path that
works on real captures; photos it cannot register are left out of the scores (their count is recorded).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple

import numpy as np
import torch
from rich.console import Console

from tnerf_ns.backbone.preprocess import list_images
from tnerf_ns.posing import PosingConfig, photos_to_transforms
from tnerf_ns.posing.convert import image_fingerprint, made_from, run_posing_cli
from tnerf_ns.posing.metrics import align_sim3, camera_errors, chordal_mean_rotation, rotation_angle_deg

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)
NORMALISATION = "longest side of the bounding box of the true camera centres"
"""What the centre errors are divided by (a capture has no scene box)."""


def shown(path) -> str:
    """A path as written in the results: relative to the repository when it lies beside it (``../shared/...``)."""
    path = Path(path).resolve()
    return os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else str(path)


class CaptureInputError(ValueError):
    """The capture cannot be scored (the message names the file or folder)."""


Cameras = Dict[str, Tuple[np.ndarray, np.ndarray]]
"""Image name -> (OpenGL camera-to-world [3, 4], field of view (h, w) in degrees)."""


def read_cameras(meta_file: Path) -> Cameras:
    """The cameras of a nerfstudio transforms.json (per-frame intrinsics, else the file-level ones)."""
    if not meta_file.is_file():
        raise CaptureInputError(f"{meta_file}: no such transforms file")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        raise CaptureInputError(f"{meta_file}: not valid JSON ({err})") from err
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not frames:
        raise CaptureInputError(f"{meta_file}: the transforms file has no frames")
    cams = {}
    for frame in frames:
        try:
            get = lambda k: float(frame[k] if k in frame else meta[k])  # noqa: E731  (per frame, else shared)
            fx, fy, w, h = (get(k) for k in ("fl_x", "fl_y", "w", "h"))
            c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)[:3]
            name = Path(frame["file_path"]).name
        except (KeyError, TypeError, ValueError) as err:
            raise CaptureInputError(f"{meta_file}: a frame lacks a camera field ({err!r}): {frame}") from err
        cams[name] = (c2w, np.degrees([2 * math.atan(h / 2 / fy), 2 * math.atan(w / 2 / fx)]))
    return cams


def evenly_spaced(files: List[Path], count: Optional[int]) -> List[Path]:
    """``count`` of the files, evenly spaced in their (natural) order; all when ``count`` is None or larger."""
    if count is None or count >= len(files):
        return files
    if count < 3:
        raise CaptureInputError(f"--max-images {count}: a Sim(3) alignment needs at least 3 cameras")
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


def per_camera(c2w: torch.Tensor, fov: torch.Tensor, gt_c2w: torch.Tensor, gt_fov: torch.Tensor, size: float) -> Dict:
    """Per-camera errors of cameras already in the true frame: rotation (deg), centre (x size), FoV (deg)."""
    return {
        "rotation_deg": rotation_angle_deg(c2w[:, :3, :3], gt_c2w[:, :3, :3]),
        "centre_rel": (c2w[:, :3, 3] - gt_c2w[:, :3, 3]).norm(dim=-1) / size,
        "fov_deg": (fov - gt_fov).abs().mean(-1),
    }


def summary(c2w: torch.Tensor, fov: torch.Tensor, gt_c2w: torch.Tensor, gt_fov: torch.Tensor, size: float) -> Dict:
    """The metrics of :func:`tnerf_ns.posing.metrics.camera_errors` (means, maxima, AUC@30) and the medians."""
    errors = camera_errors(c2w, fov, gt_c2w, gt_fov, size)
    for key, values in per_camera(c2w, fov, gt_c2w, gt_fov, size).items():
        errors[f"{key}_median"] = float(values.median())
    return errors


def score(pred: Cameras, gt: Cameras, names: List[str]) -> Dict:
    """Sim(3)-aligned errors of the predicted cameras and the mean-pose baseline's, on the named cameras."""
    stack = lambda cams, i: torch.tensor(np.stack([cams[n][i] for n in names]))  # noqa: E731
    pred_c2w, pred_fov, gt_c2w, gt_fov = stack(pred, 0), stack(pred, 1), stack(gt, 0), stack(gt, 1)
    centres = gt_c2w[:, :3, 3]
    size = float((centres.max(0).values - centres.min(0).values).max())
    if size <= 0:
        raise CaptureInputError("the matched true cameras all share one centre: no scale to normalise by")
    sim = align_sim3(pred_c2w, gt_c2w)
    aligned = sim.c2w(pred_c2w)
    n = len(names)
    mean = torch.cat([chordal_mean_rotation(gt_c2w[:, :3, :3]), centres.mean(0)[:, None]], -1).expand(n, 3, 4)
    cams = per_camera(aligned, pred_fov, gt_c2w, gt_fov, size)
    return {
        "scene_size": size,
        "scene_size_is": NORMALISATION,
        "mean_distance_to_centroid": float((centres - centres.mean(0)).norm(dim=-1).mean()),
        "sim3_scale": sim.scale,
        "vggt": summary(aligned, pred_fov, gt_c2w, gt_fov, size),
        "baseline": summary(mean, gt_fov.mean(0).expand(n, 2), gt_c2w, gt_fov, size),
        "true_fov_deg_mean": gt_fov.mean(0).tolist(),
        "predicted_fov_deg_mean": pred_fov.mean(0).tolist(),
        "per_camera": {
            name: {key: round(float(values[i]), 4) for key, values in cams.items()} for i, name in enumerate(names)
        },
    }


@dataclass
class EvaluatePoseFreeCapture:
    """Cameras predicted from a real capture's photos, scored against the capture's own (COLMAP) cameras."""

    data: Path = REPO.parent / "shared" / "data" / "captures" / "fox"
    """Capture folder: images/ and transforms.json (nerfstudio format, the reference cameras)."""
    label: str = "fox-vggt-small"
    """Name of this measurement (capture-<label>.json, the row of capture.md)."""
    backbone: Literal["vggt-1b", "vggt-small"] = "vggt-small"
    """VGGT that poses the photos."""
    poser: Literal["vggt", "colmap"] = "vggt"
    """Who poses the photos: VGGT (--backbone), or COLMAP through pycolmap."""
    weights: Optional[str] = None
    """Its weights; None: the preset's default (vggt-small: the shipped pre-trained file)."""
    image_width: Optional[int] = None
    """Longer side given to VGGT (multiple of 14); None: the preset's (518 / 140)."""
    max_tokens: int = 100_000
    """Token budget of one VGGT pass; more views go in anchored chunks."""
    max_images: Optional[int] = None
    """Pose only N photos, evenly spaced in name order (a quick run); None: all."""
    out: Path = REPO / "docs" / "results" / "posefree"
    """Folder of capture-<label>.json and capture.md."""
    work: Path = REPO / "demo_output" / "posefree_capture"
    """Work folder: the posed transforms.json in <work>/<label>, reused when made from the same photos and settings."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where VGGT runs."""

    def pose(self, files: List[Path], config: PosingConfig) -> Tuple[Path, bool]:
        """The posed transforms.json of these photos (reused when it matches them and the settings)."""
        posed = self.work / self.label
        meta_file = posed / "transforms.json"
        if meta_file.is_file():
            if made_from(meta_file, image_fingerprint(files), config):
                CONSOLE.print(f"reusing the cameras of {meta_file}")
                return meta_file, True
            CONSOLE.print(f"[yellow]{meta_file} was made from other photos or settings: posing again")
        return photos_to_transforms(self.data / "images", posed, config, self.device, files), False

    def main(self) -> Dict:
        start = time.perf_counter()
        images, truth = self.data / "images", self.data / "transforms.json"
        if not images.is_dir():
            raise CaptureInputError(f"{images}: no images folder (a capture holds images/ and transforms.json)")
        gt = read_cameras(truth)
        every = list_images(images)
        if not {f.name for f in every} & set(gt):
            raise CaptureInputError(
                f"{truth}: no frame's file name matches a photo of {images} (e.g. {sorted(gt)[:3]} against "
                f"{[f.name for f in every[:3]]})"
            )
        files = evenly_spaced(every, self.max_images)
        config = PosingConfig(backbone=self.backbone, weights=self.weights, image_width=self.image_width,
                              max_tokens=self.max_tokens, poser=self.poser)  # fmt: skip
        poser = self.backbone if self.poser == "vggt" else "COLMAP"
        with CONSOLE.status(f"posing {len(files)} photos of {images} with {poser}"):
            meta_file, reused = self.pose(files, config)
        pred = read_cameras(meta_file)
        names = sorted(set(pred) & set(gt))
        if not names:
            raise CaptureInputError(
                f"{truth}: no frame's file name matches a posed photo of {meta_file} (e.g. {sorted(pred)[:3]} against "
                f"{sorted(gt)[:3]})"
            )
        if len(names) < 3:
            raise CaptureInputError(f"{truth}: only {len(names)} posed photos have a camera; the Sim(3) needs 3")
        record = json.loads(meta_file.read_text())["tnerf_photos"]
        weights = record.get("weights") or {}
        for key in ("source", "file"):
            if key in weights and Path(weights[key]).exists():
                weights[key] = shown(weights[key])
        results = {
            "label": self.label,
            "capture": shown(self.data),
            "backbone": self.backbone if self.poser == "vggt" else f"colmap (pycolmap {record.get('pycolmap')})",
            "weights": weights,
            "settings": {"image_width": config.width(), "max_tokens": self.max_tokens, "max_images": self.max_images},
            "network_hw": record.get("network_hw"),
            "photos": len(every),
            "posed": len(files),
            "matched": len(names),
            "passes": len(record.get("passes", [])),
            "mean_reprojection_error_px": record.get("mean_reprojection_error_px"),
            "posing_seconds": record["seconds"],
            "posing_device": record.get("device", "cpu"),
            "reused_posing": reused,
            "measured": datetime.now().isoformat(timespec="minutes"),
            "posed_transforms": shown(meta_file),
            **score(pred, gt, names),
        }
        results["wall_seconds"] = round(time.perf_counter() - start, 2)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"capture-{self.label}.json").write_text(json.dumps(results, indent=2) + "\n")
        table = write_markdown(self.out)
        CONSOLE.print(table, soft_wrap=True, markup=False)
        return results


def write_markdown(folder: Path) -> str:
    """capture.md: per measurement (label) the errors beside the mean-pose baseline, and the posing time."""
    lines = ["| capture, weights (label) | photos posed / matched | VGGT passes (input) | rotation error, mean / median "
             "(deg) | centre error, mean / median (x camera extent) | FoV error (deg) | AUC@30 (pairs) "
             "| posing time (s, device) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for path in sorted(folder.glob("capture-*.json")):
        res = json.loads(path.read_text())
        vggt, base = res["vggt"], res["baseline"]
        passes = "- (COLMAP)"
        if res.get("network_hw"):
            passes = f"{res['passes']} ({res['network_hw'][1]}x{res['network_hw'][0]} px)"
        cells = [f"{Path(res['capture']).name}, {res['label']} (`{res['backbone']}`)",
                 f"{res['posed']} / {res['matched']}", passes]  # fmt: skip
        for key, digits in (("rotation_deg", 1), ("centre_rel", 3)):
            cells.append(f"{vggt[key]:.{digits}f} / {vggt[key + '_median']:.{digits}f} "
                         f"(baseline {base[key]:.{digits}f} / {base[key + '_median']:.{digits}f})")  # fmt: skip
        for key, digits in (("fov_deg", 1), ("auc30", 3)):
            cells.append(f"{vggt[key]:.{digits}f} (baseline {base[key]:.{digits}f})")
        cells.append(f"{res['posing_seconds']:.1f} ({res['posing_device']})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Centre errors in units of the {NORMALISATION} (camera extent), after a Sim(3) alignment of the "
                 "predicted centres onto the true ones; baseline: every camera at the true centroid with the "
                 "chordal-mean true rotation and the mean true field of view.")  # fmt: skip
    text = "\n".join(lines) + "\n"
    (folder / "capture.md").write_text(text)
    return text


def entrypoint() -> None:
    run_posing_cli(EvaluatePoseFreeCapture)


if __name__ == "__main__":
    entrypoint()
