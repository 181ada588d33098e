"""Lifting per-pixel latents of the source views into a tri-plane over the canonical scene box ``[-1, 1]^3``.

Each source pixel's feature lands at its 3-D point (its ray, at the predicted depth inside the box) and is splatted
bilinearly onto planes xy, xz and yz together with the point's coordinate along the plane's missing axis. Cells are
normalised by their accumulated weight; empty cells take a learned embedding; a small convolution refines.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from tnerf_ns.splatting import bilinear_splat

PLANE_AXES = ((0, 1), (0, 2), (1, 2))
"""Planes xy, xz, yz: the two coordinates each plane is indexed by (column, row)."""
MISSING_AXIS = (2, 1, 0)


def box_intersection(
    origins: Float[Tensor, "*b 3"], dirs: Float[Tensor, "*b 3"], half: float = 1.0
) -> Tuple[Float[Tensor, "*b"], Float[Tensor, "*b"]]:
    """Entry/exit distances of rays with the cube ``[-half, half]^3`` (entry clamped at 0)."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (-half - origins) * inv
    t1 = (half - origins) * inv
    return torch.minimum(t0, t1).amax(-1).clamp_min(0.0), torch.maximum(t0, t1).amin(-1)


def pixel_rays(
    c2w: Float[Tensor, "s 3 4"], intrinsics: Float[Tensor, "s 3 3"], height: int, width: int
) -> Tuple[Float[Tensor, "s h w 3"], Float[Tensor, "s h w 3"], Float[Tensor, "s h w"]]:
    """Rays through pixel centres of OpenGL cameras: origins, unit directions, and |d_cam| (z-depth -> distance)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=c2w.device, dtype=c2w.dtype) + 0.5,
        torch.arange(width, device=c2w.device, dtype=c2w.dtype) + 0.5,
        indexing="ij",
    )
    fx, fy = intrinsics[:, 0, 0, None, None], intrinsics[:, 1, 1, None, None]
    cx, cy = intrinsics[:, 0, 2, None, None], intrinsics[:, 1, 2, None, None]
    d_cam = torch.stack([(u - cx) / fx, -(v - cy) / fy, -torch.ones_like(u - cx)], dim=-1)
    norm = d_cam.norm(dim=-1)
    dirs = torch.einsum("sij,shwj->shwi", c2w[:, :, :3], d_cam) / norm[..., None]
    origins = c2w[:, None, None, :, 3].expand_as(dirs)
    return origins, dirs, norm


class TriplaneLifter(nn.Module):
    """Per-pixel latents of S source views -> tri-plane ``[3, channels, resolution, resolution]``.

    Args:
        feature_dim: latent width of the LatentHead.
        resolution: plane side.
        channels: plane channels.
        lift_stride: source maps are average-pooled by this factor before lifting (bounds the number of splats).
        refine_layers: residual 3x3 convolutions after splatting.
        empty_softness: accumulated weight at which a cell counts as half filled.
    """

    def __init__(
        self,
        feature_dim: int = 32,
        resolution: int = 64,
        channels: int = 32,
        lift_stride: int = 2,
        refine_layers: int = 2,
        empty_softness: float = 0.05,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.channels = channels
        self.lift_stride = lift_stride
        self.empty_softness = empty_softness
        in_ch = feature_dim + 1  # features and the coordinate along the missing axis
        self.empty = nn.Parameter(torch.zeros(3, in_ch))
        self.plane_embed = nn.Parameter(torch.zeros(3, channels, 1, 1))
        self.refine_in = nn.Conv2d(in_ch + 1, channels, 3, padding=1)  # + occupancy channel
        self.refine = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(refine_layers))
        for conv in self.refine:
            nn.init.zeros_(conv.weight)  # start as identity residuals
            nn.init.zeros_(conv.bias)

    def lift(
        self,
        features: Float[Tensor, "s f H W"],
        depth_logit: Float[Tensor, "s H W"],
        weight_logit: Float[Tensor, "s H W"],
        c2w: Float[Tensor, "s 3 4"],
        intrinsics: Float[Tensor, "s 3 3"],
    ) -> Dict[str, Tensor]:
        """3-D points, features and weights of the (pooled) source pixels; intrinsics are for the H x W maps."""
        k = self.lift_stride
        if k > 1:
            features = F.avg_pool2d(features, k)
            depth_logit = F.avg_pool2d(depth_logit[:, None], k)[:, 0]
            weight_logit = F.avg_pool2d(weight_logit[:, None], k)[:, 0]
            intrinsics = intrinsics.clone()
            intrinsics[:, :2] = intrinsics[:, :2] / k
        s, _, h, w = features.shape
        origins, dirs, dir_norm = pixel_rays(c2w, intrinsics, h, w)
        t_near, t_far = box_intersection(origins, dirs)
        valid = t_far > t_near + 1e-4
        fraction = torch.sigmoid(depth_logit)
        t = t_near + fraction * (t_far - t_near).clamp_min(0)
        points = origins + t[..., None] * dirs
        weights = torch.sigmoid(weight_logit) * valid
        return {
            "points": points,
            "features": features.permute(0, 2, 3, 1),
            "weights": weights,
            "weight_logit": weight_logit,
            "valid": valid,
            "t": t,
            "t_near": t_near,
            "t_far": t_far,
            "fraction": fraction,
            "dir_norm": dir_norm,
            "intrinsics": intrinsics,
        }

    def splat(self, points: Tensor, features: Tensor, weights: Tensor) -> Tuple[Tensor, Tensor]:
        """Normalised plane inputs ``[3, f + 1, R, R]`` and accumulated weights ``[3, R, R]``."""
        r = self.resolution
        pts = points.reshape(-1, 3)
        feats = features.reshape(pts.shape[0], -1)
        wts = weights.reshape(-1)
        grid = (pts.clamp(-1, 1) + 1) / 2 * (r - 1)
        coords = torch.stack([grid[:, list(ax)] for ax in PLANE_AXES])  # [3, n, 2] (column, row)
        values = torch.stack([torch.cat([feats, pts[:, m : m + 1]], dim=-1) for m in MISSING_AXIS])
        acc, wsum = bilinear_splat(coords, values, wts.expand(3, -1), (r, r))
        mean = acc / wsum.clamp_min(1e-6)[:, None]
        occ = (wsum / (wsum + self.empty_softness))[:, None]
        planes_in = occ * mean + (1 - occ) * self.empty[:, :, None, None]
        return torch.cat([planes_in, occ], dim=1), wsum

    def refine_planes(self, planes_in: Tensor) -> Float[Tensor, "3 c r r"]:
        x = self.refine_in(planes_in) + self.plane_embed
        for conv in self.refine:
            x = x + conv(F.gelu(x))
        return x

    def forward(
        self,
        features: Float[Tensor, "s f H W"],
        depth_logit: Float[Tensor, "s H W"],
        weight_logit: Float[Tensor, "s H W"],
        c2w: Float[Tensor, "s 3 4"],
        intrinsics: Float[Tensor, "s 3 3"],
    ) -> Tuple[Float[Tensor, "3 c r r"], Dict[str, Tensor]]:
        lifted = self.lift(features, depth_logit, weight_logit, c2w, intrinsics)
        planes_in, wsum = self.splat(lifted["points"], lifted["features"], lifted["weights"])
        lifted["plane_weight"] = wsum
        return self.refine_planes(planes_in), lifted
