"""The trivial feed-forward baseline: forward-splat the source pixels, with their depth, into a novel camera.

Every source pixel becomes a 3-D point (its ray at its z-depth); the points are projected into the target camera and
z-buffered (the nearest point of each target pixel wins); pixels no point lands on stay the background colour. What a
feed-forward radiance field adds over this is everything beyond reprojecting what the source views saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.geometry import pixel_rays


def source_points(
    c2w: Float[Tensor, "k 3 4"], intrinsics: Float[Tensor, "k 3 3"], depth: Float[Tensor, "k h w"]
) -> Float[Tensor, "k h w 3"]:
    """World points of the source pixels at z-depth ``depth`` (OpenGL cameras, pixel centres)."""
    origins, dirs, norm = pixel_rays(c2w, intrinsics, depth.shape[-2], depth.shape[-1])
    return origins + (depth * norm)[..., None] * dirs


def project(
    points: Float[Tensor, "n 3"], c2w: Float[Tensor, "3 4"], intrinsics: Float[Tensor, "3 3"]
) -> tuple[Float[Tensor, "n 2"], Float[Tensor, "n"]]:
    """Pixel coordinates (u, v; pixel centres at half integers) and z-depth of world points in an OpenGL camera."""
    cam = (points - c2w[:, 3]) @ c2w[:, :3]  # R^T (p - t)
    z = -cam[:, 2]  # the camera looks down -z
    safe = z.clamp_min(1e-8)
    u = intrinsics[0, 0] * cam[:, 0] / safe + intrinsics[0, 2]
    v = -intrinsics[1, 1] * cam[:, 1] / safe + intrinsics[1, 2]  # y up in camera space, down in the image
    return torch.stack([u, v], dim=-1), z


def camera_intrinsics(camera) -> Float[Tensor, "3 3"]:
    """The pixel intrinsics matrix of one nerfstudio camera (what :func:`project` and :func:`splat_image` take)."""
    fx, fy, cx, cy = (float(v) for v in (camera.fx, camera.fy, camera.cx, camera.cy))
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def splat_image(
    points: Float[Tensor, "n 3"],
    colours: Float[Tensor, "n 3"],
    c2w: Float[Tensor, "3 4"],
    intrinsics: Float[Tensor, "3 3"],
    height: int,
    width: int,
    background: Float[Tensor, "3"],
) -> Float[Tensor, "h w 3"]:
    """Z-buffered nearest-pixel splat of coloured points into one camera; empty pixels take ``background``."""
    uv, z = project(points, c2w, intrinsics)
    col, row = uv[:, 0].floor().long(), uv[:, 1].floor().long()
    keep = (z > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height) & torch.isfinite(z)
    pixel, z, colours = (row * width + col)[keep], z[keep], colours[keep]
    nearest = torch.full((height * width,), float("inf"), dtype=z.dtype, device=z.device)
    nearest = nearest.scatter_reduce(0, pixel, z, reduce="amin")
    wins = z <= nearest[pixel]  # ties (equal depth) all write; any of them is a correct nearest colour
    image = background.to(colours).expand(height * width, 3).clone()
    image[pixel[wins]] = colours[wins]
    return image.reshape(height, width, 3)


def reproject_views(
    images: Float[Tensor, "k 3 h w"],
    c2w: Float[Tensor, "k 3 4"],
    intrinsics: Float[Tensor, "k 3 3"],
    depth: Float[Tensor, "k h w"],
    valid: Float[Tensor, "k h w"],
    target_c2w: Float[Tensor, "3 4"],
    target_intrinsics: Float[Tensor, "3 3"],
    height: int,
    width: int,
    background: Float[Tensor, "3"],
) -> Float[Tensor, "height width 3"]:
    """The baseline's image of one target camera, from all source views' pixels whose ``valid`` mask is set (e.g.
    foreground pixels with a known depth)."""
    points = source_points(c2w, intrinsics, depth)
    mask = valid.bool()
    colours = images.permute(0, 2, 3, 1)[mask]
    return splat_image(points[mask], colours, target_c2w, target_intrinsics, height, width, background)


def source_cloud(ctx, encoder=None) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 3"], str]:
    """Coloured world points of a scene context's source pixels (foreground only), and where their depth came from:
    the ground-truth depth when the data has it, else the depth the encoder's LatentHead predicts (at the lifting
    resolution, in the same box the tri-plane covers)."""
    images, alpha = ctx.images.float(), ctx.alpha.float()
    if ctx.depth is not None and bool((ctx.depth > 0).any()):
        mask = (alpha > 0.5) & (ctx.depth > 0)
        points = source_points(ctx.c2w.float(), ctx.intrinsics.float(), ctx.depth.float())
        return points[mask], images.permute(0, 2, 3, 1)[mask], "ground-truth depth"
    if encoder is None:
        raise ValueError(f"scene {ctx.name}: no ground-truth depth, and no encoder to predict one")
    with torch.no_grad():
        _, lifted = encoder(ctx.to(encoder.device))
    h, w = lifted.points.shape[1:3]
    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.cat([images, alpha[:, None]], 1).to(lifted.points), (h, w))
    mask = lifted.valid & (pooled[:, 3] > 0.5)
    box = encoder.box
    world = box.from_canonical(lifted.points)  # canonical cube -> dataset units
    return world[mask].cpu(), pooled[:, :3].permute(0, 2, 3, 1)[mask].cpu(), "LatentHead depth"


def ground_truth_depth(data: Path, indices: Sequence[int], hw: Tuple[int, int], scale: float) -> Optional[Tensor]:
    """z-depth of training images ``indices`` at size ``hw``, times ``scale`` (the parser's unit), when the
    Blender-layout scene lists depth files (scripts/render_scenes.py writes them); None otherwise. The Blender parser
    keeps the frames' order."""
    meta = data / "transforms_train.json"
    frames = json.loads(meta.read_text()).get("frames", []) if meta.is_file() else []
    files = [f.get("depth_file_path") for f in frames]
    if not files or any(files[i] is None for i in indices):
        return None
    depth = torch.stack([torch.from_numpy(np.load(data / files[i]).astype(np.float32)) for i in indices])
    depth = torch.nn.functional.interpolate(depth[:, None], size=hw, mode="nearest")[:, 0]
    return depth * scale
