"""Camera accuracy of predicted poses against ground truth, after a Sim(3) alignment (Umeyama on camera centres)."""

from __future__ import annotations

from typing import Dict

import torch
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.backbone.geometry_metrics import auc, relative_pose_errors
from tnerf_ns.geometry import opengl_c2w_to_opencv_w2c, umeyama_similarity
from tnerf_ns.posing.cameras import Similarity


def align_sim3(pred_c2w: Float[Tensor, "n 3 4"], gt_c2w: Float[Tensor, "n 3 4"]) -> Similarity:
    """Least-squares similarity taking predicted camera centres onto ground-truth ones (needs 3 non-collinear)."""
    scale, rot, trans = umeyama_similarity(pred_c2w[:, :3, 3].double(), gt_c2w[:, :3, 3].double())
    return Similarity(float(scale), rot.to(pred_c2w.dtype), trans.to(pred_c2w.dtype))


def rotation_angle_deg(rot_a: Float[Tensor, "*b 3 3"], rot_b: Float[Tensor, "*b 3 3"]) -> Float[Tensor, "*b"]:
    """Geodesic angle between rotations, in degrees."""
    trace = (rot_a.transpose(-1, -2) @ rot_b).diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.rad2deg(torch.acos(((trace - 1) / 2).clamp(-1.0, 1.0)))


def chordal_mean_rotation(rots: Float[Tensor, "n 3 3"]) -> Float[Tensor, "3 3"]:
    """The rotation nearest (Frobenius) to the mean of the matrices."""
    u, _, vt = torch.linalg.svd(rots.mean(0))
    fix = torch.ones(3, dtype=rots.dtype)
    fix[2] = torch.sign(torch.det(u @ vt))
    return u @ torch.diag(fix) @ vt


def camera_errors(
    c2w: Float[Tensor, "n 3 4"],
    fov_deg: Float[Tensor, "n 2"],
    gt_c2w: Float[Tensor, "n 3 4"],
    gt_fov_deg: Float[Tensor, "n 2"],
    scene_size: float,
) -> Dict[str, float]:
    """Mean errors of cameras already in the ground-truth frame: rotation (degrees), centre (fraction of
    ``scene_size``) and field of view (degrees, mean over both axes); and VGGT's alignment-free AUC@30 over all view
    pairs (relative rotation and translation-direction errors)."""
    pairs = relative_pose_errors(opengl_c2w_to_opencv_w2c(c2w)[None], opengl_c2w_to_opencv_w2c(gt_c2w)[None])
    rot = rotation_angle_deg(c2w[:, :3, :3], gt_c2w[:, :3, :3])
    centre = (c2w[:, :3, 3] - gt_c2w[:, :3, 3]).norm(dim=-1) / scene_size
    fov = (fov_deg - gt_fov_deg).abs().mean(-1)
    return {
        "rotation_deg": float(rot.mean()),
        "rotation_deg_max": float(rot.max()),
        "centre_rel": float(centre.mean()),
        "centre_rel_max": float(centre.max()),
        "fov_deg": float(fov.mean()),
        "auc30": auc(pairs["rre"], pairs["rta"]),
    }


def aligned_errors(
    pred_c2w: Float[Tensor, "n 3 4"],
    pred_fov_deg: Float[Tensor, "n 2"],
    gt_c2w: Float[Tensor, "n 3 4"],
    gt_fov_deg: Float[Tensor, "n 2"],
    scene_size: float,
) -> Dict[str, float]:
    """Errors of predicted cameras after the Sim(3) alignment of their centres onto the ground truth."""
    sim = align_sim3(pred_c2w, gt_c2w)
    return camera_errors(sim.c2w(pred_c2w), pred_fov_deg, gt_c2w, gt_fov_deg, scene_size)


def mean_pose_baseline(
    gt_c2w: Float[Tensor, "n 3 4"], gt_fov_deg: Float[Tensor, "n 2"], scene_size: float
) -> Dict[str, float]:
    """Errors of a constant guess that already knows the ground truth's averages: every camera at the centroid of the
    true centres with the chordal-mean rotation and the mean field of view (a floor any prediction must beat)."""
    n = gt_c2w.shape[0]
    mean = torch.cat([chordal_mean_rotation(gt_c2w[:, :3, :3]), gt_c2w[:, :3, 3].mean(0)[:, None]], -1)
    return camera_errors(mean.expand(n, 3, 4), gt_fov_deg.mean(0).expand(n, 2), gt_c2w, gt_fov_deg, scene_size)
