"""Lifting per-pixel latents of the source views into a tri-plane over the canonical scene box ``[-1, 1]^3``.

Each source pixel's feature lands at its 3-D point (its ray, at the predicted depth inside the box) and is splatted
bilinearly onto planes xy, xz and yz together with the point's coordinate along the plane's missing axis. Cells are
normalised by their accumulated weight; empty cells take a learned embedding; a small convolution refines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from tnerf_ns.geometry import fraction_from_z_depth, pixel_rays, ray_box_intersection
from tnerf_ns.heads.depth_sweep import photo_consistent_fraction
from tnerf_ns.splatting import bilinear_splat
from tnerf_ns.triplane import MISSING_AXIS, plane_coordinates


@dataclass
class LiftedViews:
    """The (pooled) source pixels as lifted into the canonical box; the source-view losses read them."""

    points: Float[Tensor, "s h w 3"]
    features: Float[Tensor, "s h w f"]
    weights: Float[Tensor, "s h w"]
    """Splat weight (sigmoid of ``weight_logit``, zero for rays that miss the box)."""
    weight_logit: Float[Tensor, "s h w"]
    valid: Float[Tensor, "s h w"]
    """The pixel's ray crosses the box."""
    t: Float[Tensor, "s h w"]
    """Distance of the point along the unit ray."""
    t_near: Float[Tensor, "s h w"]
    t_far: Float[Tensor, "s h w"]
    fraction: Float[Tensor, "s h w"]
    """Where the point sits between ``t_near`` and ``t_far`` (the LatentHead's depth, in [0, 1])."""
    dir_norm: Float[Tensor, "s h w"]
    """z-depth -> distance along the ray."""
    intrinsics: Float[Tensor, "s 3 3"]
    """Intrinsics of the pooled maps."""
    plane_weight: Optional[Float[Tensor, "3 r r"]] = None
    """Accumulated splat weight per plane cell."""


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
        oracle_z: Optional[Float[Tensor, "s H W"]] = None,
        sweep_colours: Optional[Float[Tensor, "s 3 H W"]] = None,
    ) -> LiftedViews:
        """3-D points, features and weights of the (pooled) source pixels; intrinsics are for the H x W maps.
        ``oracle_z``: ground-truth canonical z-depth (0 = unknown) that replaces the predicted depth where known (the
        diagnosis's oracle geometry). ``sweep_colours``: the source photos at the maps' size; the predicted depth is
        then refined by photo-consistency across them (:mod:`tnerf_ns.heads.depth_sweep`; not differentiable)."""
        k = self.lift_stride
        if k > 1:
            features = F.avg_pool2d(features, k)
            depth_logit = F.avg_pool2d(depth_logit[:, None], k)[:, 0]
            weight_logit = F.avg_pool2d(weight_logit[:, None], k)[:, 0]
            intrinsics = intrinsics.clone()
            intrinsics[:, :2] = intrinsics[:, :2] / k
        s, _, h, w = features.shape
        origins, dirs, dir_norm = pixel_rays(c2w, intrinsics, h, w)
        t_near, t_far = ray_box_intersection(origins, dirs, -1.0, 1.0)
        valid = t_far > t_near + 1e-4
        fraction = torch.sigmoid(depth_logit)
        if oracle_z is not None:
            z = F.interpolate(oracle_z[:, None], size=(h, w), mode="nearest")[:, 0]
            fraction = torch.where(z > 0, fraction_from_z_depth(z, t_near, t_far, dir_norm), fraction)
        weights = torch.sigmoid(weight_logit) * valid
        if sweep_colours is not None and oracle_z is None:
            colours = F.avg_pool2d(sweep_colours, k) if k > 1 else sweep_colours
            fraction = photo_consistent_fraction(fraction, origins, dirs, t_near, t_far, weights, colours, c2w,
                                                 intrinsics)  # fmt: skip
        t = t_near + fraction * (t_far - t_near).clamp_min(0)
        points = origins + t[..., None] * dirs
        return LiftedViews(
            points=points,
            features=features.permute(0, 2, 3, 1),
            weights=weights,
            weight_logit=weight_logit,
            valid=valid,
            t=t,
            t_near=t_near,
            t_far=t_far,
            fraction=fraction,
            dir_norm=dir_norm,
            intrinsics=intrinsics,
        )

    def splat(self, points: Tensor, features: Tensor, weights: Tensor) -> Tuple[Tensor, Tensor]:
        """Points ``[s, h, w, 3]`` of s views -> normalised plane inputs ``[3, f + 1, R, R]`` and accumulated weights
        ``[3, R, R]``."""
        r = self.resolution
        pts = points.reshape(-1, 3)
        feats = features.reshape(pts.shape[0], -1)
        wts = weights.reshape(-1)
        grid = (pts.clamp(-1, 1) + 1) / 2 * (r - 1)
        coords = plane_coordinates(grid)  # [3, n, 2] (column, row)
        values = torch.stack([torch.cat([feats, pts[:, m : m + 1]], dim=-1) for m in MISSING_AXIS])
        acc, wsum = bilinear_splat(coords, values, wts.expand(3, -1), (r, r))
        mean = acc / wsum.clamp_min(1e-6)[:, None]  # features averaged with the predicted splat weights
        # occupancy from the weight per source view, so that it means the same for 2 views as for 8
        per_view = wsum / max(points.shape[0], 1)
        occ = (per_view / (per_view + self.empty_softness))[:, None]
        planes_in = occ * mean + (1 - occ) * self.empty[:, :, None, None]
        return torch.cat([planes_in, occ], dim=1), wsum

    def refine_planes(self, planes_in: Tensor) -> Float[Tensor, "3 c r r"]:
        x = self.refine_in(planes_in) + self.plane_embed
        for conv in self.refine:
            x = x + conv(F.gelu(x))
        return x

    def forward(
        self, *maps: Tensor, oracle_z: Optional[Tensor] = None, sweep_colours: Optional[Tensor] = None
    ) -> Tuple[Float[Tensor, "3 c r r"], LiftedViews]:
        """Lift (same arguments as :meth:`lift`), splat, refine: the planes and the lifted source pixels."""
        lifted = self.lift(*maps, oracle_z=oracle_z, sweep_colours=sweep_colours)
        planes_in, lifted.plane_weight = self.splat(lifted.points, lifted.features, lifted.weights)
        return self.refine_planes(planes_in), lifted
