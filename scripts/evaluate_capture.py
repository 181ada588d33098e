#!/usr/bin/env python
"""Feed-forward scene mode (0 iterations) on a real capture, beside trivial baselines and the published figures.

    python scripts/evaluate_capture.py                                   # DTU scan24, 3 / 6 / 9 input views
    python scripts/evaluate_capture.py --pretrained outputs/.../nerfstudio_models --label my-head

For each transforms file (``--data``/``transforms_{n}views.json`` for every ``--views``; or ``--data`` itself, a
nerfstudio-data folder or file) the scene is encoded from all of its train views (``ns-train tnerf ...
--max-num-iterations 0 nerfstudio-data --data <file>``: the shipped head, or ``--pretrained``) and each test view is
rendered at full resolution and scored:

* **PSNR / SSIM** on the full image;
* **object-masked** where the capture has ``masks/<image name>`` (white = object): PSNR over the object pixels only
  (the mean squared error of the pixels inside the mask, per image), SSIM with the background set to white in both
  images: the definition of RegNeRF's evaluation code, which the published sparse-view DTU figures use;
* **outside the mask** (the background: table, backdrop): PSNR over the pixels outside it;
* beside: the **mean-colour image** (every pixel the mean colour of the input views), the **empty field** (the
  renderer's white background) and the **nearest source photo** (the input view whose camera centre is closest,
  shown as is: the next bar to beat).

Writes ``<out>/<label>.json`` and ``<out>/capture.md`` (every label of the folder, with the published DTU figures of
``../shared/reference/published_anchors.md``: other DTU scans, methods trained on DTU).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import tyro
from PIL import Image
from rich.console import Console
from rich.progress import track

from tnerf_ns.evaluation.masks import mask_finder, masked_scores
from tnerf_ns.evaluation.published import PUBLISHED_DTU

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)
ROWS = (
    "prediction (surroundings: sources)",
    "prediction (surroundings: none, white)",
    "surroundings alone (sweep, no tri-plane)",
    "mean-colour image",
    "empty field",
    "nearest source photo",
)
"""Rows of every measurement: the prediction with the surroundings swept from the source photos behind the box, the
same on the flat white background, the sweep alone, and the trivial baselines."""


@dataclass
class EvaluateCapture:
    """Scene-mode feed-forward prediction on a real capture against trivial baselines."""

    data: Path = REPO.parent / "shared/data/dtu/scan24"
    """A capture folder (nerfstudio-data) or a transforms file."""
    views: List[int] = field(default_factory=lambda: [3, 6, 9])
    """Input-view counts: ``transforms_{n}views.json`` of --data (empty: --data's own split)."""
    pretrained: Optional[Path] = None
    """T-NeRF weights (None: the head shipped in tnerf_ns/weights)."""
    label: str = "shipped-head"
    """Name of this measurement (<out>/<label>.json)."""
    max_source_views: int = 8
    """K for captures with more train views (farthest-point choice)."""
    occupancy_step: float = 1 / 64
    """Step of the occupancy renderer in canonical units (the model's default is 1/128; a capture's box is mostly
    occupied by a head trained on objects in a void, and marching it at 1/128 costs minutes per image here)."""
    max_views_scored: Optional[int] = None
    """Score only the first N test views (quick looks; None: all)."""
    out: Path = REPO / "docs/results/capture"
    """Results folder."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"

    def pipeline(self, transforms: Path, num_views: int):
        from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

        from tnerf_ns.configs import tnerf_method

        config = copy.deepcopy(tnerf_method.config)
        config.pipeline.model.backbone = "vggt-small"
        config.pipeline.model.compute_lpips = False
        config.pipeline.model.pretrained = self.pretrained
        config.pipeline.model.surroundings = "sources"
        config.pipeline.model.occupancy_step = self.occupancy_step
        config.pipeline.datamanager.dataparser = NerfstudioDataParserConfig(data=transforms)
        config.pipeline.datamanager.data = transforms
        config.pipeline.datamanager.num_source_views = num_views
        config.machine.device_type = "cuda" if self.device == "cuda" else "cpu"
        pipeline = config.pipeline.setup(device=self.device, test_mode="test")
        pipeline.eval()
        return pipeline

    def measure(self, transforms: Path, num_views: int) -> Dict:
        pipeline = self.pipeline(transforms, num_views)
        model, dm = pipeline.model, pipeline.datamanager
        entry = dm.eval_scenes[0]
        ctx = dm.context_provider.context(entry.scene_idx)
        prediction = model.encoder.encode_cached(ctx.to(model.device))
        sources = ctx.images.permute(0, 2, 3, 1)  # [k, h, w, 3]
        mean_colour = sources.reshape(-1, 3).mean(0)
        centres = ctx.c2w[:, :, 3]
        dataset = dm.eval_dataset
        find_mask = mask_finder(transforms.parent if transforms.is_file() else transforms, dataset)
        rows: Dict[str, List[Dict[str, float]]] = {name: [] for name in ROWS}
        seconds: List[float] = []
        count = len(dataset) if self.max_views_scored is None else min(self.max_views_scored, len(dataset))
        for i in track(range(count), description=f"{transforms.name}", console=CONSOLE, transient=True):
            gt = model.renderer_rgb.blend_background(dataset.get_image_float32(i))  # RGBA photos: on the background
            mask = find_mask(i, gt.shape[:2]) if find_mask is not None else None
            camera = dataset.cameras[i : i + 1].to(pipeline.device)
            start = time.perf_counter()
            with torch.no_grad():  # one render on the flat background, then the surroundings composited behind it
                model.renderer.surroundings = False
                out = model.get_outputs_for_camera(camera)
                model.renderer.surroundings = True
                bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
                around = torch.cat([model.renderer.background(prediction, o, d) for o, d in zip(
                    bundle.origins.reshape(-1, 3).split(16384), bundle.directions.reshape(-1, 3).split(16384))])  # fmt: skip
            seconds.append(time.perf_counter() - start)
            acc, flat = out["accumulation"].cpu(), out["rgb"].cpu()
            around = around.reshape(flat.shape).cpu()
            empty = torch.ones_like(gt)
            nearest = int((centres - dataset.cameras.camera_to_worlds[i, :, 3]).norm(dim=-1).argmin())
            photo = sources[nearest]
            if photo.shape != gt.shape:
                photo = torch.nn.functional.interpolate(photo.permute(2, 0, 1)[None], size=gt.shape[:2],
                                                        mode="bilinear", align_corners=False)[0].permute(1, 2, 0)  # fmt: skip
            candidates = dict(zip(ROWS, [(flat - empty * (1 - acc) + around * (1 - acc)).clamp(0, 1), flat.clamp(0, 1),
                                         around, mean_colour.expand_as(gt), empty, photo]))  # fmt: skip
            for name, image in candidates.items():
                rows[name].append(masked_scores(image, gt, mask))
            if i == 0:  # a picture: the predictions, the surroundings alone, the nearest photo and the ground truth
                strip = torch.cat([candidates[n] for n in (*ROWS[:3], ROWS[5])] + [gt], dim=1)
                picture = self.out / f"{self.label}-{transforms.stem}.jpg"
                picture.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray((strip.numpy() * 255 + 0.5).astype(np.uint8)).save(picture, quality=85)
        summary = {name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
        summary["images"] = count
        summary["source_views"] = len(ctx.images)
        summary["seconds_per_image"] = float(np.median(seconds))
        summary["placement"] = None if dm.placement is None else {
            "centre": dm.placement.centre.tolist(), "half_extent": dm.placement.half_extent}  # fmt: skip
        CONSOLE.print(f"{transforms.name}: {summary}")
        return summary

    def main(self) -> None:
        files = [self.data / f"transforms_{n}views.json" for n in self.views] if self.views else [self.data]
        results = {"data": str(self.data), "pretrained": str(self.pretrained or "shipped head"),
                   "measured": datetime.now().isoformat(timespec="minutes"), "rows": {}}  # fmt: skip
        for n, transforms in zip(self.views or [self.max_source_views], files):
            if not transforms.exists():
                raise FileNotFoundError(f"{transforms}: no such transforms file or capture folder")
            results["rows"][transforms.name] = self.measure(transforms, n if self.views else self.max_source_views)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{self.label}.json").write_text(json.dumps(results, indent=2) + "\n")
        write_markdown(self.out)


def write_markdown(folder: Path) -> None:
    """``capture.md``: every label's rows, then the published sparse-view DTU figures."""
    lines = ["| measured | data | views | row | PSNR | SSIM | PSNR object (masked) | SSIM masked | PSNR outside mask |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        if "rows" not in result:  # e.g. scripts/capture_cli_check.py's cli-<label>.json in the same folder
            continue
        for file, rows in result["rows"].items():
            for name, r in rows.items():
                if not isinstance(r, dict) or "psnr" not in r:
                    continue
                cells = [f"{r[k]:.2f}" if k in r else "-" for k in ("psnr",)] + [f"{r['ssim']:.3f}"]
                cells += [f"{r['psnr_masked']:.2f}", f"{r['ssim_masked']:.3f}", f"{r['psnr_outside']:.2f}"] if (
                    "psnr_masked" in r) else ["-", "-", "-"]  # fmt: skip
                lines.append(f"| {path.stem} | {Path(result['data']).name} | {file} ({rows['source_views']} inputs) "
                             f"| {name} | " + " | ".join(cells) + " |")  # fmt: skip
    lines += ["", "Published object-masked PSNR on sparse-view DTU (3 / 6 / 9 views; the 15 DTU test scans, not scan24; "
              "methods trained on DTU or optimised per scene; `published_anchors.md`):", "",
              "| method | 3 | 6 | 9 |", "|---|---:|---:|---:|"]  # fmt: skip
    lines += [f"| {name} | {a:.2f} | {b:.2f} | {c:.2f} |" for name, (a, b, c) in PUBLISHED_DTU.items()]
    (folder / "capture.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    tyro.cli(EvaluateCapture).main()
