"""T-NeRF's loss terms as plain functions (the model weights and sums them).

Lengths are in canonical units (one unit = half the scene box's longest side) unless said otherwise. Functions that
may have nothing to supervise (no valid pixel, no occupied point) return ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from tnerf_ns.geometry import fraction_from_z_depth

if TYPE_CHECKING:
    from tnerf_ns.heads.triplane_lifting import LiftedViews


def photometric_loss(pred: Float[Tensor, "n 3"], target: Float[Tensor, "n 3"]) -> Tensor:
    """Mean squared colour error."""
    return F.mse_loss(pred, target)


def depth_loss(pred_z: Float[Tensor, "n"], target_z: Float[Tensor, "n"]) -> Optional[Tensor]:
    """L1 error of rendered z-depth where the ground truth is known (``target_z > 0``)."""
    valid = target_z > 0
    if not valid.any():
        return None
    return (pred_z[valid] - target_z[valid]).abs().mean()


def step_opacity(density: Tensor, step: float) -> Tensor:
    """Opacity of a step of length ``step`` through constant ``density`` (same length unit)."""
    return 1 - torch.exp(-density * step)


def point_opacity_loss(
    pred_density: Float[Tensor, "n"], target_density: Float[Tensor, "n"], step: float
) -> Float[Tensor, ""]:
    """3-D loss at query points: squared error of the opacity of a reference step (empty points must come out
    transparent, occupied ones opaque); densities per canonical unit."""
    return F.mse_loss(step_opacity(pred_density, step), step_opacity(target_density, step))


def point_colour_loss(
    pred_rgb: Float[Tensor, "n 3"], target_rgb: Float[Tensor, "n 3"], occupied: Bool[Tensor, "n"]
) -> Optional[Tensor]:
    """Squared colour error summed over channels, at occupied query points only (empty space has no colour)."""
    if not occupied.any():
        return None
    return (pred_rgb[occupied] - target_rgb[occupied]).pow(2).sum(-1).mean()


def source_weight_loss(
    weight_logit: Float[Tensor, "s h w"], alpha: Float[Tensor, "s h w"], valid: Bool[Tensor, "s h w"]
) -> Optional[Tensor]:
    """The lifting's splat weight against the source views' ground-truth opacity (binary cross-entropy)."""
    if not valid.any():
        return None
    return F.binary_cross_entropy_with_logits(weight_logit[valid], alpha[valid].clamp(0, 1))


def source_depth_loss(
    fraction: Float[Tensor, "s h w"],
    t_near: Float[Tensor, "s h w"],
    t_far: Float[Tensor, "s h w"],
    dir_norm: Float[Tensor, "s h w"],
    target_z: Float[Tensor, "s h w"],
    valid: Bool[Tensor, "s h w"],
    alpha: Float[Tensor, "s h w"],
) -> Optional[Tensor]:
    """The LatentHead's depth (as a fraction of each source ray inside the box) against ground-truth z-depth, on
    opaque pixels whose ray crosses the box."""
    fraction_gt = fraction_from_z_depth(target_z, t_near, t_far, dir_norm)
    mask = (target_z > 0) & valid & (alpha > 0.5)
    if not mask.any():
        return None
    return (fraction[mask] - fraction_gt[mask]).abs().mean()


def source_view_losses(
    lifted: LiftedViews, alpha: Float[Tensor, "s H W"], depth: Optional[Float[Tensor, "s H W"]], half_extent: Tensor
) -> Dict[str, Optional[Tensor]]:
    """The lifting supervised on its source views: splat weight against opacity, depth (as a fraction of the ray in
    the box) against z-depth. Ground truth at the source resolution (depth in dataset units) is pooled to the lifted
    maps' size first."""
    h, w = lifted.t.shape[-2:]
    alpha = F.adaptive_avg_pool2d(alpha[:, None], (h, w))[:, 0]
    out: Dict[str, Optional[Tensor]] = {
        "source_weight_loss": source_weight_loss(lifted.weight_logit, alpha, lifted.valid)
    }
    if depth is not None:
        z = F.interpolate(depth[:, None], size=(h, w), mode="nearest")[:, 0] / half_extent
        out["source_depth_loss"] = source_depth_loss(
            lifted.fraction, lifted.t_near, lifted.t_far, lifted.dir_norm, z, lifted.valid, alpha
        )
    return out


def triplane_l2(planes: Float[Tensor, "3 c r r"]) -> Float[Tensor, ""]:
    """Mean squared feature magnitude."""
    return planes.pow(2).mean()


def triplane_tv(planes: Float[Tensor, "3 c r r"]) -> Float[Tensor, ""]:
    """Total variation: mean absolute difference of neighbouring cells along both plane axes."""
    return (planes[..., 1:, :] - planes[..., :-1, :]).abs().mean() + (planes[..., 1:] - planes[..., :-1]).abs().mean()
