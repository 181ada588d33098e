"""Evaluation reports for trained T-NeRF runs: a background-only baseline and image grids to look at."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchmetrics.functional import structural_similarity_index_measure


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def target_rgb(pipeline, image: torch.Tensor) -> torch.Tensor:
    """A dataset image (RGB or RGBA) as the model is scored against it: composited on the model's evaluation
    background (nerfstudio's blend; ``random`` evaluates on black)."""
    return pipeline.model.renderer_rgb.blend_background(image.to(pipeline.device)).cpu()


def empty_field_baseline(pipeline, background: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """PSNR/SSIM of rendering nothing (the background colour) on every evaluation image."""
    dataset = pipeline.datamanager.eval_dataset
    psnrs, ssims = [], []
    for i in range(len(dataset)):
        image = dataset.get_image_float32(i)
        gt = target_rgb(pipeline, image)
        empty = target_rgb(pipeline, torch.zeros(*image.shape[:2], 4))  # fully transparent: the background only
        pred = empty if background is None else background.to(gt).expand_as(gt)
        psnrs.append(psnr(pred, gt))
        ssims.append(
            float(
                structural_similarity_index_measure(
                    pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None], data_range=1.0
                )
            )
        )
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "images": len(psnrs)}


def _to_pil(image: torch.Tensor, size: int) -> Image.Image:
    arr = (image.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    pil = Image.fromarray(arr)
    return pil.resize((size * pil.width // pil.height, size), Image.Resampling.BILINEAR)


def prediction_grid(pipeline, out_path: Path, num_scenes: int = 3, tile: int = 128) -> Path:
    """Per held-out scene one row: its source views, then prediction and ground truth of one target view."""
    dm = pipeline.datamanager
    provider = pipeline.model.context_provider
    dataset = dm.eval_dataset
    scene_ids = dataset.cameras.metadata["scene_idx"][:, 0].tolist() if dataset.cameras.metadata else [0] * len(dataset)
    rows: List[List[Image.Image]] = []
    seen: List[int] = []
    for i, scene in enumerate(scene_ids):
        if scene in seen or len(seen) >= num_scenes:
            continue
        seen.append(scene)
        camera = dataset.cameras[i : i + 1]
        ctx = provider.context(provider.scene_for_camera(camera))
        with torch.no_grad():
            out = pipeline.model.get_outputs_for_camera(camera.to(pipeline.device))
        gt = target_rgb(pipeline, dataset.get_image_float32(i))
        tiles = [_to_pil(img.permute(1, 2, 0), tile) for img in ctx.images]
        tiles += [_to_pil(out["rgb"], tile), _to_pil(gt, tile)]
        rows.append(tiles)
    if not rows:
        raise ValueError("no evaluation images to show")
    n_src = max(len(r) for r in rows) - 2
    width = sum(t.width for t in rows[0]) + 8 * len(rows[0])
    header = 18
    grid = Image.new("RGB", (width, header + len(rows) * (tile + 8)), "white")
    draw = ImageDraw.Draw(grid)
    x = 0
    for j, t in enumerate(rows[0]):
        label = f"source {j + 1}" if j < n_src else ("T-NeRF" if j == n_src else "ground truth")
        draw.text((x + 4, 3), label, fill=(0, 0, 0))
        x += t.width + 8
    for r, tiles in enumerate(rows):
        x = 0
        for t in tiles:
            grid.paste(t, (x, header + r * (tile + 8)))
            x += t.width + 8
    out_path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out_path)
    return out_path


def write_report(
    out_path: Path,
    eval_json: Path,
    baseline: Dict[str, float],
    grid_png: Optional[Path],
    video: Optional[Path],
    extra_rows: Sequence[str] = (),
    timings: Optional[Dict[str, float]] = None,
    shipped: Optional[Dict[str, float]] = None,
) -> str:
    """Markdown report: metrics table (model vs. empty-field baseline), the image grid and the video."""
    results = json.loads(Path(eval_json).read_text())["results"]
    lpips = f"{results['lpips']:.3f}" if "lpips" in results else "n/a (offline: AlexNet weights unavailable)"
    gain = results["psnr"] - baseline["psnr"]
    lines = [
        "# T-NeRF demo report",
        "",
        "## Held-out scenes",
        "",
        f"Held-out scenes (never seen in training), {baseline['images']} target views, source views excluded.",
        "",
        "| method | PSNR | SSIM | LPIPS |",
        "|---|---:|---:|---:|",
        f"| T-NeRF (feed-forward) | {results['psnr']:.2f} | {results['ssim']:.3f} | {lpips} |",
        *(
            [
                f"| T-NeRF, the shipped head (`tnerf_ns/weights`; trained longer, on other generated scenes) | "
                f"{shipped['psnr']:.2f} | {shipped['ssim']:.3f} | - |"
            ]
            if shipped
            else []
        ),
        f"| empty field (background only) | {baseline['psnr']:.2f} | {baseline['ssim']:.3f} | - |",
        "",
        f"T-NeRF beats the empty-field baseline by **{gain:+.2f} dB** PSNR.",
        "",
        *extra_rows,
    ]
    if "depth_abs_rel" in results:
        lines += [f"Depth abs-rel error on the held-out views: {results['depth_abs_rel']:.3f}.", ""]
    if timings:
        lines += (
            ["## Timings", "", "| stage | seconds |", "|---|---:|"]
            + [f"| {k} | {v:.0f} |" for k, v in timings.items()]
            + [""]
        )
    if grid_png is not None:
        lines += ["## Pictures", "", "Source views, prediction and ground truth (one held-out scene per row):", "",
                  f"![predictions]({grid_png.name})", ""]  # fmt: skip
    if video is not None:
        lines += [f"Spiral video around the default held-out scene: [{video.name}]({video.name})", ""]
    text = "\n".join(lines)
    out_path.write_text(text)
    return text


def shipped_head_metrics(config_path: Path) -> Optional[Dict[str, float]]:
    """``ns-eval``'s mean metrics of the run's evaluation data predicted by the head shipped for its backbone
    (None when there is none): the demo reports it beside its own head."""
    import yaml

    from tnerf_ns.models.checkpoints import HEAD_WEIGHTS, SHIPPED_HEADS

    config = yaml.load(Path(config_path).read_text(), Loader=yaml.Loader)
    head = SHIPPED_HEADS.get(config.pipeline.model.backbone)
    if head is None or not (head / HEAD_WEIGHTS).is_file():
        return None
    config.pipeline.model.pretrained = head
    config.pipeline.model.compute_lpips = False
    pipeline = config.pipeline.setup(device="cpu" if config.machine.device_type == "cpu" else "cuda", test_mode="test")
    pipeline.eval()
    metrics = pipeline.get_average_eval_image_metrics()
    return {k: float(v) for k, v in metrics.items()}
