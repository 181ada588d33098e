"""Geometry metrics of a VGGT prediction against normalised ground truth, and what trivial predictors score.

* depth: abs-rel after per-image median scaling; trivial: a constant depth per image at the ground-truth median;
* point map: mean Euclidean error in the normalised first-camera frame (mean point distance 1); trivial: each view's
  pixels at its median depth along its own rays, every camera at the first one;
* cameras over all view pairs: relative rotation error (degrees), relative translation angle (degrees, sign
  ambiguity removed as in VGGT's evaluation), AUC@30 of max(rotation, translation) error; trivial: identity
  rotations and a fixed sideways (+x) translation; field-of-view error (degrees); trivial: the mean ground truth.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from tnerf_ns.geometry import invert_rigid, pose_encoding_to_extri_intri, unproject_depth

DEG = 180.0 / math.pi


def median_scaled_abs_rel(
    pred: Float[Tensor, "n H W"], gt: Float[Tensor, "n H W"], mask: Bool[Tensor, "n H W"]
) -> Float[Tensor, "n"]:
    """Per image: scale the prediction by median(gt) / median(pred) over valid pixels, then mean |p - g| / g."""
    out = []
    for p, g, m in zip(pred, gt, mask):
        p, g = p[m], g[m]
        if g.numel() == 0:
            out.append(pred.new_tensor(float("nan")))
            continue
        p = p * (g.median() / p.median().clamp_min(1e-8))
        out.append(((p - g).abs() / g).mean())
    return torch.stack(out)


def constant_depth_abs_rel(gt: Float[Tensor, "n H W"], mask: Bool[Tensor, "n H W"]) -> Float[Tensor, "n"]:
    """abs-rel of a constant depth at each image's ground-truth median (the trivial predictor)."""
    return median_scaled_abs_rel(torch.ones_like(gt), gt, mask)


def point_error(
    pred: Float[Tensor, "b s H W 3"], gt: Float[Tensor, "b s H W 3"], mask: Bool[Tensor, "b s H W"]
) -> Float[Tensor, "b"]:
    """Mean Euclidean point error over valid pixels, per sample (normalised units)."""
    err = (pred - gt).norm(dim=-1) * mask
    return err.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)


def trivial_points(
    gt_depth: Float[Tensor, "b s H W"], intrinsics: Float[Tensor, "b s 3 3"], mask: Bool[Tensor, "b s H W"]
) -> Float[Tensor, "b s H W 3"]:
    """Each view at its median ground-truth depth along its own rays, all cameras at the first (identity)."""
    med = torch.stack([torch.stack([d[m].median() if m.any() else d.new_tensor(1.0) for d, m in zip(ds, ms)])
                       for ds, ms in zip(gt_depth, mask)])  # fmt: skip
    eye = torch.eye(3, 4, dtype=gt_depth.dtype, device=gt_depth.device).expand(*gt_depth.shape[:2], 3, 4)
    return unproject_depth(torch.ones_like(gt_depth) * med[..., None, None], eye, intrinsics)


def _angle(rot: Float[Tensor, "*b 3 3"]) -> Float[Tensor, "*b"]:
    cos = ((rot.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.acos(cos) * DEG


def _relative(extrinsics: Float[Tensor, "b s 3 4"]) -> tuple:
    """Relative rotations and translations T_j T_i^-1 for all pairs i < j: [b, pairs, 3, 3], [b, pairs, 3]."""
    s = extrinsics.shape[1]
    i, j = torch.triu_indices(s, s, offset=1, device=extrinsics.device)
    inv_i = invert_rigid(extrinsics[:, i])
    rot = extrinsics[:, j, :, :3] @ inv_i[..., :3]
    trans = (extrinsics[:, j, :, :3] @ inv_i[..., 3:])[..., 0] + extrinsics[:, j, :, 3]
    return rot, trans


def relative_pose_errors(
    pred: Float[Tensor, "b s 3 4"], gt: Float[Tensor, "b s 3 4"]
) -> Dict[str, Float[Tensor, "b pairs"]]:
    """Relative rotation error and translation angle (degrees, min(a, 180 - a)) over all view pairs."""
    rot_p, t_p = _relative(pred)
    rot_g, t_g = _relative(gt)
    rre = _angle(rot_p.transpose(-1, -2) @ rot_g)
    cos = torch.nn.functional.cosine_similarity(t_p, t_g, dim=-1, eps=1e-8).clamp(-1, 1)
    rta = torch.acos(cos) * DEG
    return {"rre": rre, "rta": torch.minimum(rta, 180 - rta)}


def trivial_pose_errors(gt: Float[Tensor, "b s 3 4"]) -> Dict[str, Float[Tensor, "b pairs"]]:
    """Errors of identity rotations with a fixed +x relative translation."""
    b, s = gt.shape[:2]
    trivial = torch.eye(3, 4, dtype=gt.dtype, device=gt.device).repeat(b, s, 1, 1)
    trivial[..., 0, 3] = torch.arange(s, dtype=gt.dtype, device=gt.device)
    return relative_pose_errors(trivial, gt)


def auc(rre: Tensor, rta: Tensor, max_threshold: int = 30) -> float:
    """Area under the accuracy curve of max(rre, rta) for thresholds 1..max_threshold degrees (VGGT's AUC@30)."""
    err = torch.maximum(rre, rta).flatten()
    thresholds = torch.arange(1, max_threshold + 1, dtype=err.dtype, device=err.device)
    return float((err[None] < thresholds[:, None]).float().mean())


def sample_metrics(
    outputs: Dict[str, object], gt: Dict[str, Tensor], mask: Bool[Tensor, "b s H W"]
) -> Dict[str, float]:
    """Quick means for validation: depth abs-rel, point error, rotation / translation / field-of-view errors."""
    out: Dict[str, float] = {}
    if "depth" in outputs:
        d = outputs["depth"][..., 0].flatten(0, 1)
        out["depth_abs_rel"] = float(median_scaled_abs_rel(d, gt["depth"].flatten(0, 1), mask.flatten(0, 1)).nanmean())
    if "world_points" in outputs:
        out["point_error"] = float(point_error(outputs["world_points"], gt["points"], mask).mean())
    if "pose_enc" in outputs:
        hw = tuple(mask.shape[-2:])
        ext, _ = pose_encoding_to_extri_intri(outputs["pose_enc"], hw)
        errs = relative_pose_errors(ext, gt["extrinsics"])
        out["rotation_error_deg"] = float(errs["rre"].median())
        out["translation_angle_deg"] = float(errs["rta"].median())
        out["fov_error_deg"] = float((outputs["pose_enc"][..., 7:] - gt["pose_enc"][..., 7:]).abs().mean() * DEG)
    return out
