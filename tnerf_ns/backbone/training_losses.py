"""VGGT's training objectives as plain functions: ground truth in the first camera's frame, camera, depth and point
losses with aleatoric confidence and a multi-scale gradient term.

Facts and constants follow the VGGT paper (CVPR 2025, section 3.3) and, where they differ, the released training
configuration (``../shared/reference/vggt_training.md``): plain L1 camera errors (the paper writes Huber), camera
weight 5, gamma 0.6 over the camera head's iterations, gamma 1 / alpha 0.2 for the confidence term, gradient term at
4 strided scales, 98th-percentile outlier filtering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from tnerf_ns.geometry import extri_intri_to_pose_encoding, invert_rigid, unproject_depth


@dataclass(frozen=True)
class LossWeights:
    """Weights and constants of the objective (released-configuration values)."""

    camera: float = 5.0
    """Weight of the camera loss in the total."""
    depth: float = 1.0
    """Weight of the depth-head loss."""
    point: float = 1.0
    """Weight of the point-head loss."""
    camera_gamma: float = 0.6
    """Iteration ``i`` of ``n`` of the camera head weighs ``gamma^(n-1-i)``."""
    translation: float = 1.0
    rotation: float = 1.0
    fov: float = 0.5
    conf_gamma: float = 1.0
    """Weight of ``r * c`` in the confidence term."""
    conf_alpha: float = 0.2
    """Weight of ``-log c`` in the confidence term."""
    valid_range: float = 0.98
    """Per-pixel losses above this quantile are dropped (outliers); >= 1 keeps all."""
    gradient_scales: int = 4
    """Strided scales 2^k, k < gradient_scales, of the gradient term."""
    min_camera_points: int = 100
    """Frames with fewer valid ground-truth points are left out of the camera loss."""


def _homogeneous(transform: Float[Tensor, "*b 3 4"]) -> Float[Tensor, "*b 4 4"]:
    bottom = torch.zeros_like(transform[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([transform, bottom], dim=-2)


def normalize_to_first_camera(
    extrinsics: Float[Tensor, "b s 3 4"],
    intrinsics: Float[Tensor, "b s 3 3"],
    depth: Float[Tensor, "b s H W"],
    mask: Bool[Tensor, "b s H W"],
) -> Dict[str, Tensor]:
    """Ground truth as VGGT sees it: the first camera's frame, scaled by the mean distance of the valid points.

    ``extrinsics`` are OpenCV camera-from-world in any world frame. Returns ``extrinsics`` (first one the identity),
    ``points`` [b, s, H, W, 3] in the first camera's frame, ``depth`` (z-depth), all divided by ``scale`` [b], and
    ``pose_enc`` [b, s, 9].
    """
    world = unproject_depth(depth, extrinsics, intrinsics)
    first = extrinsics[:, :1]  # [b, 1, 3, 4]
    rel = (_homogeneous(extrinsics) @ _homogeneous(invert_rigid(first)))[..., :3, :]
    points = torch.einsum("bij,bshwj->bshwi", first[:, 0, :, :3], world) + first[:, 0, None, None, None, :, 3]
    valid = mask.to(points.dtype)
    dist = (points.norm(dim=-1) * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1.0)
    scale = dist.clamp_min(1e-6)
    rel = torch.cat([rel[..., :3], rel[..., 3:] / scale[:, None, None, None]], dim=-1)
    points = points / scale[:, None, None, None, None] * valid[..., None]
    depth = depth / scale[:, None, None, None] * valid
    pose_enc = extri_intri_to_pose_encoding(rel, intrinsics, tuple(depth.shape[-2:]))
    return {"extrinsics": rel, "points": points, "depth": depth, "pose_enc": pose_enc, "scale": scale}


def camera_loss(
    pose_enc_list: List[Float[Tensor, "b s 9"]],
    gt_pose_enc: Float[Tensor, "b s 9"],
    frame_valid: Optional[Bool[Tensor, "b s"]] = None,
    weights: LossWeights = LossWeights(),
) -> Dict[str, Tensor]:
    """L1 on translation (clamped at 100), quaternion and fields of view, for every refinement iteration.

    Iteration ``i`` of ``n`` weighs ``gamma^(n-1-i)``; the sum is divided by ``n``. Returns the weighted ``camera``
    loss (before the total's camera weight) and its parts at the last iteration, for logging.
    """
    n = len(pose_enc_list)
    if frame_valid is None:
        frame_valid = torch.ones(gt_pose_enc.shape[:2], dtype=torch.bool, device=gt_pose_enc.device)
    keep = frame_valid.to(gt_pose_enc.dtype)[..., None]
    denom = keep.sum().clamp_min(1.0)
    total = gt_pose_enc.new_zeros(())
    parts: Dict[str, Tensor] = {}
    for i, pred in enumerate(pose_enc_list):
        err = (pred - gt_pose_enc).abs() * keep
        loss_t = err[..., :3].clamp(max=100).sum() / (3 * denom)
        loss_r = err[..., 3:7].sum() / (4 * denom)
        loss_fov = err[..., 7:].sum() / (2 * denom)
        loss = weights.translation * loss_t + weights.rotation * loss_r + weights.fov * loss_fov
        total = total + weights.camera_gamma ** (n - 1 - i) * loss
        parts = {"camera_T": loss_t, "camera_R": loss_r, "camera_fov": loss_fov}
    return {"camera": total / n, **parts}


def filter_by_quantile(values: Float[Tensor, "n"], valid_range: float, min_elements: int = 1000) -> Bool[Tensor, "n"]:
    """Keep-mask of the values at or below the ``valid_range`` quantile (all kept when few or ``valid_range >= 1``)."""
    if valid_range >= 1.0 or values.numel() < min_elements:
        return torch.ones_like(values, dtype=torch.bool)
    k = max(1, int(round(valid_range * values.numel())))
    threshold = values.detach().kthvalue(k).values
    return values <= threshold


def confidence_regression_loss(
    pred: Float[Tensor, "b s H W c"],
    gt: Float[Tensor, "b s H W c"],
    conf: Float[Tensor, "b s H W"],
    mask: Bool[Tensor, "b s H W"],
    weights: LossWeights = LossWeights(),
) -> Tuple[Tensor, Tensor]:
    """Aleatoric loss ``gamma * r * c - alpha * log c`` and the plain regression ``r = ||pred - gt||``, means over
    valid pixels (outliers above the ``valid_range`` quantile dropped)."""
    r = (pred - gt)[mask].norm(dim=-1)
    c = conf[mask]
    if r.numel() == 0:
        zero = pred.sum() * 0.0
        return zero, zero
    keep = filter_by_quantile(r, weights.valid_range)
    r, c = r[keep], c[keep]
    loss_conf = weights.conf_gamma * r * c - weights.conf_alpha * torch.log(c)
    return loss_conf.mean(), r.mean()


def gradient_loss(
    pred: Float[Tensor, "n H W c"],
    gt: Float[Tensor, "n H W c"],
    mask: Bool[Tensor, "n H W"],
    conf: Optional[Float[Tensor, "n H W"]] = None,
    weights: LossWeights = LossWeights(),
) -> Tensor:
    """First-order image gradients of the residual, compared where both neighbours are valid; with ``conf`` in the
    aleatoric form. Sum over pixel pairs divided by the number of valid pixel-channels (as upstream normalises)."""
    diff = (pred - gt) * mask[..., None]
    m = mask.to(pred.dtype)
    total = pred.new_zeros(())
    for dim in (1, 2):
        n = diff.shape[dim] - 1
        grad = (diff.narrow(dim, 1, n) - diff.narrow(dim, 0, n)).abs().clamp(max=100)
        pair = (m.narrow(dim, 1, n) * m.narrow(dim, 0, n))[..., None]
        if conf is not None:
            c = conf.narrow(dim, 1, n)[..., None]
            grad = weights.conf_gamma * grad * c - weights.conf_alpha * torch.log(c)
        total = total + (grad * pair).sum()
    return total / (m.sum() * pred.shape[-1]).clamp_min(1.0)


def multiscale_gradient_loss(
    pred: Float[Tensor, "b s H W c"],
    gt: Float[Tensor, "b s H W c"],
    mask: Bool[Tensor, "b s H W"],
    conf: Optional[Float[Tensor, "b s H W"]] = None,
    weights: LossWeights = LossWeights(),
) -> Tensor:
    """:func:`gradient_loss` averaged over strided subsamplings 2^k, k < ``gradient_scales``."""
    flat = [t.flatten(0, 1) if t is not None else None for t in (pred, gt, mask, conf)]
    total = pred.new_zeros(())
    for k in range(weights.gradient_scales):
        step = 2**k
        p, g, m, c = (t[:, ::step, ::step] if t is not None else None for t in flat)
        total = total + gradient_loss(p, g, m, c, weights)
    return total / weights.gradient_scales


def dense_head_loss(
    pred: Float[Tensor, "b s H W c"],
    gt: Float[Tensor, "b s H W c"],
    conf: Float[Tensor, "b s H W"],
    mask: Bool[Tensor, "b s H W"],
    weights: LossWeights = LossWeights(),
) -> Dict[str, Tensor]:
    """A dense head's loss: confidence term + regression term + (confidence-weighted) gradient term."""
    loss_conf, loss_reg = confidence_regression_loss(pred, gt, conf, mask, weights)
    loss_grad = multiscale_gradient_loss(pred, gt, mask, conf, weights)
    return {"conf": loss_conf, "reg": loss_reg, "grad": loss_grad, "total": loss_conf + loss_reg + loss_grad}


def vggt_loss(
    outputs: Dict[str, object],
    gt: Dict[str, Tensor],
    mask: Bool[Tensor, "b s H W"],
    weights: LossWeights = LossWeights(),
) -> Dict[str, Tensor]:
    """Total objective of a VGGT forward pass against :func:`normalize_to_first_camera`'s ground truth.

    Returns ``loss`` (the total) and every term, detached values for logging included.
    """
    terms: Dict[str, Tensor] = {}
    total = gt["depth"].new_zeros(())
    if "pose_enc_list" in outputs:
        frame_valid = mask.flatten(2).sum(-1) >= weights.min_camera_points
        cam = camera_loss(outputs["pose_enc_list"], gt["pose_enc"], frame_valid, weights)
        total = total + weights.camera * cam["camera"]
        terms.update(cam)
    if "depth" in outputs:
        depth = dense_head_loss(outputs["depth"], gt["depth"][..., None], outputs["depth_conf"], mask, weights)
        total = total + weights.depth * depth["total"]
        terms.update({f"depth_{k}": v for k, v in depth.items()})
    if "world_points" in outputs:
        point = dense_head_loss(outputs["world_points"], gt["points"], outputs["world_points_conf"], mask, weights)
        total = total + weights.point * point["total"]
        terms.update({f"point_{k}": v for k, v in point.items()})
    terms["loss"] = total
    return terms
