"""Run VGGT on a folder of photos: cameras, depth and confidence, in bounded memory.

**Token budget and chunking.** VGGT's global attention sees every token of every view at once, and only views seen
together get consistent cameras. A pass over ``S`` views at ``H x W`` holds ``S * (H/14 * W/14 + 5)`` tokens; up to
``max_tokens`` (default 100,000: about 72 VGGT-1B views at 518 px, 950 vggt-small views at 140 px) all views go in
one pass. Beyond it, with ``chunking`` on, the views are split into strided chunks that each also hold the **anchor**
(the first photo, VGGT's reference frame): every chunk's cameras are re-expressed so the anchor is exactly the
identity (so all chunks share one frame), and each chunk's scale is matched to the first chunk's by the median ratio
of the anchor's predicted depth at pixels confident in both. With ``chunking`` off, or a budget too small for the
anchor plus one view, it stops with a message naming the budget and how to raise it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from rich.progress import Progress
from torch import Tensor

from tnerf_ns.backbone.preprocess import ImageInputError, read_rgb, vggt_size
from tnerf_ns.geometry import unproject_depth
from tnerf_ns.posing.cameras import pose_encoding_to_w2c, relative_to_anchor

LOGGER = logging.getLogger(__name__)


class TokenBudgetError(ValueError):
    """The photos need more tokens in one VGGT pass than allowed."""


@dataclass
class Prediction:
    """VGGT's outputs for every photo, in one frame (the anchor's) and one scale."""

    w2c: Float[Tensor, "n 3 4"]
    """OpenCV camera-from-world extrinsics; the anchor (photo 0) is the identity."""
    fov: Float[Tensor, "n 2"]
    """Predicted ``(fov_h, fov_w)`` in radians."""
    depth: Float[Tensor, "n h w"]
    """Z-depth at the network's resolution, in the registered scale."""
    depth_conf: Float[Tensor, "n h w"]
    """Depth confidence (>= 1)."""
    images: Float[Tensor, "n 3 h w"]
    """The photos as the network saw them."""
    original_hw: Float[Tensor, "n 2"]
    """Each photo's own (H, W)."""
    chunks: List[List[int]]
    """Photo indices of each VGGT pass (the anchor first)."""


def load_photos(paths: Sequence[Path], width: int, patch_size: int = 14) -> Tuple[Tensor, Tensor]:
    """Photos resized (no crop, no padding) to the first photo's aspect at longer side ``width``, sides rounded to
    whole patches; alpha is composited over white. Returns the images and each photo's original (H, W).

    Without crop or padding the image spans the same field of view as the photo, so the predicted field of view
    gives the focal lengths at the photo's own size; a photo of another aspect ratio is stretched to the common size
    (its per-axis field of view still maps exactly)."""
    if not paths:
        raise ImageInputError("no input images given")
    images, sizes, target = [], [], None
    for path in paths:
        rgb = torch.from_numpy(read_rgb(path)).permute(2, 0, 1)  # errors name the file
        h, w = rgb.shape[-2:]
        if min(h, w) < 2:
            raise ImageInputError(f"{path}: image of {w}x{h} pixels is too small")
        target = target or vggt_size(h, w, width, patch_size, mode="pad")
        images.append(F.interpolate(rgb[None], size=target, mode="bilinear", antialias=True, align_corners=False)[0])
        sizes.append((h, w))
    return torch.stack(images).clamp(0, 1), torch.tensor(sizes, dtype=torch.float32)


def tokens_per_view(image_hw: Tuple[int, int], patch_size: int, extra_tokens: int) -> int:
    return (image_hw[0] // patch_size) * (image_hw[1] // patch_size) + extra_tokens


def plan_chunks(num_views: int, per_view: int, max_tokens: int, chunking: bool, hint: str) -> List[List[int]]:
    """View indices of each pass: all in one when they fit the budget, else strided chunks led by the anchor 0."""
    capacity = max_tokens // per_view
    if num_views <= capacity:
        return [list(range(num_views))]
    needed = num_views * per_view
    if not chunking or capacity < 2:
        why = "chunking is off" if not chunking else "the budget holds fewer than two views (the anchor and one more)"
        raise TokenBudgetError(
            f"{num_views} views x {per_view} tokens = {needed} tokens in one VGGT pass, above the token budget "
            f"{max_tokens} ({why}). Raise the budget ({hint} {needed}), use smaller images, or fewer photos."
        )
    groups = -(-(num_views - 1) // (capacity - 1))
    return [[0, *range(1 + g, num_views, groups)] for g in range(groups)]


def _anchor_scale(ref_depth: Tensor, ref_conf: Tensor, depth: Tensor, conf: Tensor) -> float:
    """Scale taking a chunk's anchor depth onto the reference chunk's (median ratio at mutually confident pixels)."""
    good = (ref_conf >= ref_conf.median()) & (conf >= conf.median()) & (depth > 0) & (ref_depth > 0)
    if good.sum() < 16:
        good = (depth > 0) & (ref_depth > 0)
    return float((ref_depth[good] / depth[good]).median()) if good.any() else 1.0


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    images: Float[Tensor, "n 3 h w"],
    original_hw: Float[Tensor, "n 2"],
    max_tokens: int = 100_000,
    chunking: bool = True,
    budget_hint: str = "--max-tokens",
    device: Optional[torch.device] = None,
) -> Prediction:
    """Cameras, depth and confidence for every photo, registered into the anchor's frame and scale."""
    device = device or next(model.parameters()).device
    if model.camera_head is None or model.depth_head is None:
        raise ValueError("posing needs a VGGT with its camera and depth heads")
    hw = tuple(images.shape[-2:])
    per_view = tokens_per_view(hw, model.patch_size, model.patch_start_idx)
    chunks = plan_chunks(images.shape[0], per_view, max_tokens, chunking, budget_hint)
    n = images.shape[0]
    w2c, fov = torch.zeros(n, 3, 4), torch.zeros(n, 2)
    depth, conf = torch.zeros(n, *hw), torch.zeros(n, *hw)
    ref: Optional[Tuple[Tensor, Tensor]] = None
    with Progress(transient=True) as progress:
        task = progress.add_task(f"VGGT on {n} photos ({len(chunks)} pass{'es' if len(chunks) > 1 else ''})", total=n)
        for chunk in chunks:
            out = model(images[chunk].to(device), heads=("camera", "depth"))
            pose = out["pose_enc"][0].float().cpu()
            d, c = out["depth"][0, ..., 0].float().cpu(), out["depth_conf"][0].float().cpu()
            scale = 1.0 if ref is None else _anchor_scale(ref[0], ref[1], d[0], c[0])
            ref = ref or (d[0], c[0])
            extr = relative_to_anchor(pose_encoding_to_w2c(pose).double()).float()
            extr[:, :, 3] *= scale
            w2c[chunk], fov[chunk], depth[chunk], conf[chunk] = extr, pose[:, 7:9], d * scale, c
            progress.advance(task, len(chunk) - (1 if chunk is not chunks[0] else 0))
    if len(chunks) > 1:
        LOGGER.info("registered %d VGGT passes on the anchor photo", len(chunks))
    return Prediction(w2c, fov, depth, conf, images, original_hw, chunks)


def confident_points(
    pred: Prediction, intrinsics_net: Float[Tensor, "n 3 3"], percentile: float = 50.0, max_points: int = 100_000
) -> Tuple[Float[Tensor, "p 3"], Float[Tensor, "p 3"]]:
    """World points (anchor frame) and colours of the pixels whose depth confidence is in the top
    ``100 - percentile`` % of their own photo; a fixed-seed subset of at most ``max_points``."""
    points = unproject_depth(pred.depth, pred.w2c, intrinsics_net)
    thresh = torch.quantile(pred.depth_conf.flatten(1), percentile / 100, dim=1)[:, None, None]
    keep = (pred.depth_conf >= thresh) & (pred.depth_conf > 1.0) & (pred.depth > 0) & points.isfinite().all(-1)
    xyz = points[keep]
    rgb = pred.images.permute(0, 2, 3, 1)[keep]
    if xyz.shape[0] > max_points:
        pick = torch.randperm(xyz.shape[0], generator=torch.Generator().manual_seed(0))[:max_points]
        xyz, rgb = xyz[pick], rgb[pick]
    return xyz, rgb
