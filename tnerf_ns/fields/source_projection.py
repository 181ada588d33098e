"""The projection branch: what a query point sees in each source view.

A tri-plane averages every surface point along a plane's missing axis into one cell, so it cannot hold the photos'
detail on its own. This branch keeps the source views beside the planes: each query point is projected into the K
source cameras, their colour and per-pixel features are sampled there (bilinear), and a small per-view MLP turns
(colour, features, the point's depth against the view's predicted depth) into a view code. Across views the codes
are aggregated by a masked mean and variance (permutation-invariant; the variance measures multi-view consistency,
the cue for geometry that does not depend on what objects look like), and the colour is a learned blend of the
source colours (IBRNet-style), sharpened towards the views whose direction is closest to the query ray's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

FAR_Z = 4.0
"""Canonical z-depth given to source pixels whose ray misses the box (nothing there occludes anything)."""


@dataclass
class SourceViews:
    """Source views of one prediction in the canonical frame, as the projection branch samples them."""

    colours: Float[Tensor, "k 3 H W"]
    """Source photos (at most ``source_colour_width`` wide)."""
    maps: Float[Tensor, "k c h w"]
    """Per-pixel view features of the head; the last channel is the predicted canonical z-depth."""
    w2c: Float[Tensor, "k 3 4"]
    """World-to-camera (OpenGL, canonical units)."""
    focal: Float[Tensor, "k 2"]
    """Focal lengths in grid_sample units (2 / image side per pixel)."""
    principal: Float[Tensor, "k 2"]
    """Principal point in grid_sample units ([-1, 1] spans the image)."""
    centres: Float[Tensor, "k 3"]
    """Camera centres (canonical)."""
    opacity: Optional[Float[Tensor, "k 1 h w"]] = None
    """The head's splat weight per pixel (trained against the photos' opacity): where a view sees something inside
    the box, not past it (the surroundings sweep's visibility)."""

    @staticmethod
    def from_cameras(
        colours: Tensor,
        maps: Tensor,
        c2w: Float[Tensor, "k 3 4"],
        intrinsics: Float[Tensor, "k 3 3"],
        hw: Tuple[int, int],
        opacity: Optional[Tensor] = None,
    ) -> "SourceViews":
        """``intrinsics`` are pixel intrinsics of an ``hw`` image (any of the views' resolutions: the maps are scaled
        copies of one another, so grid_sample coordinates are shared)."""
        rot, centre = c2w[:, :, :3], c2w[:, :, 3]
        w2c = torch.cat([rot.transpose(1, 2), -(rot.transpose(1, 2) @ centre[..., None])], dim=-1)
        size = torch.tensor([hw[1], hw[0]], dtype=c2w.dtype, device=c2w.device)
        focal = 2 * torch.stack([intrinsics[:, 0, 0], intrinsics[:, 1, 1]], -1) / size
        principal = 2 * torch.stack([intrinsics[:, 0, 2], intrinsics[:, 1, 2]], -1) / size - 1
        return SourceViews(colours, maps, w2c, focal, principal, centre, opacity)

    def to(self, device: torch.device) -> "SourceViews":
        return SourceViews(*(None if (v := getattr(self, f.name)) is None else v.to(device) for f in fields(self)))

    def tensors(self) -> Tuple[Tensor, ...]:
        """The tensors the views hold (opacity where present)."""
        return tuple(v for f in fields(self) if (v := getattr(self, f.name)) is not None)

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.tensors())

    def numel(self) -> int:
        return sum(v.numel() for v in self.tensors())

    def project(self, points: Float[Tensor, "n 3"]) -> Tuple[Float[Tensor, "k n 2"], Float[Tensor, "k n"]]:
        """grid_sample coordinates and z-depth (positive in front) of canonical points in every view."""
        cam = torch.einsum("kij,nj->kni", self.w2c[:, :, :3], points) + self.w2c[:, None, :, 3]
        z = -cam[..., 2]
        safe = torch.where(z.abs() < 1e-4, torch.full_like(z, 1e-4), z)
        xy = torch.stack([cam[..., 0], -cam[..., 1]], -1) / safe[..., None]  # image x right, y down
        return xy * self.focal[:, None] + self.principal[:, None], z

    @staticmethod
    def in_frame(coords: Float[Tensor, "k n 2"], z: Float[Tensor, "k n"]) -> Tensor:
        """Whether each projection (:meth:`project`'s output) lies in front of its view and inside its image."""
        return (z > 1e-3) & (coords.abs() <= 1).all(-1)


@dataclass
class TriplaneScene:
    """A tri-plane prediction with the source views its projection branch reads."""

    planes: Float[Tensor, "3 c r r"]
    views: Optional[SourceViews] = None

    @property
    def device(self) -> torch.device:
        return self.planes.device

    def to(self, device: torch.device) -> "TriplaneScene":
        return replace(self, planes=self.planes.to(device), views=None if self.views is None else self.views.to(device))

    @property
    def nbytes(self) -> int:
        """Memory the prediction holds (planes, and the views the projection branch samples)."""
        return self.planes.nbytes + (0 if self.views is None else self.views.nbytes)

    def numel(self) -> int:
        """Numbers the prediction holds, as ``Tensor.numel`` (planes, and the source views' maps and photos)."""
        return self.planes.numel() + (0 if self.views is None else self.views.numel())


Prediction = Union[Tensor, TriplaneScene]
"""What a tri-plane field decodes: planes alone, or planes with source views."""


def planes_of(prediction: Prediction) -> Tensor:
    return prediction.planes if isinstance(prediction, TriplaneScene) else prediction


def views_of(prediction: Prediction) -> Optional[SourceViews]:
    return prediction.views if isinstance(prediction, TriplaneScene) else None


class ProjectionAggregator(nn.Module):
    """Per-view codes of a query's projections, their masked mean/variance, and the blend of the source colours.

    Args:
        map_channels: channels of :attr:`SourceViews.maps` (view features and the depth channel).
        hidden: width of the per-view code.
        depth_scale: canonical depth difference that counts as one unit for the visibility input.
        surface_votes: add the depth maps' fusion to the aggregate: the strongest vote of a view whose predicted
            surface passes through the point (weighted by the view's opacity there), the mean vote, and the share of
            views that see the point in front of their surface (free space). A mean of per-view codes cannot express
            "one view sees a surface here", the cue that keeps thin parts and silhouette edges opaque.
    """

    def __init__(
        self, map_channels: int, hidden: int = 16, depth_scale: float = 0.05, surface_votes: bool = False
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.depth_scale = depth_scale
        self.surface_votes = surface_votes
        self.view_in = nn.Linear(3 + map_channels, hidden)  # colour, features, depth difference (replaces depth)
        self.view_out = nn.Linear(hidden, hidden)
        self.score = nn.Linear(hidden + 2 * hidden, 1)  # the view's code against the aggregate
        # blending starts close to "take the source camera whose ray is closest to the query's" (a learned
        # sharpness on the cosine between them)
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(20.0)))

    @property
    def out_dim(self) -> int:
        """Aggregate width: mean and variance of the view codes, the colours' mean and variance, the visible share
        (and the three surface votes)."""
        return 2 * self.hidden + 6 + 1 + (3 if self.surface_votes else 0)

    def view_codes(
        self, views: SourceViews, points: Float[Tensor, "n 3"]
    ) -> Tuple[Float[Tensor, "k n h"], Float[Tensor, "k n 3"], Float[Tensor, "k n"], Optional[Float[Tensor, "n 3"]]]:
        """Codes, sampled colours and validity (in front, inside the image) of the points in each view, and with
        ``surface_votes`` the votes (:meth:`votes`)."""
        coords, z = views.project(points)
        grid = coords[:, :, None]  # [k, n, 1, 2]
        colour = F.grid_sample(views.colours, grid, mode="bilinear", padding_mode="border", align_corners=False)
        with_opacity = self.surface_votes and views.opacity is not None  # sampled in the same pass as the maps
        sampled = torch.cat([views.maps, views.opacity], 1) if with_opacity else views.maps
        maps = F.grid_sample(sampled, grid, mode="bilinear", padding_mode="border", align_corners=False)
        colour, maps = colour[..., 0].transpose(1, 2), maps[..., 0].transpose(1, 2)  # [k, n, c]
        opacity = maps[..., -1] if with_opacity else None
        c = views.maps.shape[1]  # features, then the depth channel
        depth, features = maps[..., c - 1], maps[..., : c - 1]
        valid = views.in_frame(coords, z).to(points.dtype)
        # the point against the view's predicted surface: > 0 behind it (occluded), < 0 in front (free space)
        behind = ((z - depth) / self.depth_scale).clamp(-10, 10)
        h = F.relu(self.view_in(torch.cat([colour, features, behind[..., None]], -1)))
        votes = self.votes(valid, behind, opacity) if self.surface_votes else None
        return F.relu(self.view_out(h)), colour, valid, votes

    @staticmethod
    def votes(
        valid: Float[Tensor, "k n"], behind: Float[Tensor, "k n"], opacity: Optional[Float[Tensor, "k n"]]
    ) -> Float[Tensor, "n 3"]:
        """Depth-map fusion at the points: the strongest and the mean vote of views whose predicted surface passes
        through the point (times their opacity there), and the share of the seeing views that find the point more
        than two depth units in front of their surface (free space)."""
        vote = valid * torch.exp(-0.5 * behind**2)
        vote = vote if opacity is None else vote * opacity
        free = valid * torch.sigmoid(-4 * (behind + 2))
        count = valid.sum(0).clamp_min(1)
        return torch.stack([vote.amax(0), vote.sum(0) / count, free.sum(0) / count], -1)

    def forward(
        self, views: SourceViews, points: Float[Tensor, "n 3"], directions: Optional[Float[Tensor, "n 3"]] = None
    ) -> Tuple[Float[Tensor, "n d"], Optional[Float[Tensor, "n 3"]], Optional[Float[Tensor, "n"]]]:
        """Aggregate ``[n, out_dim]`` (direction-free: density may read it), and with ``directions`` the blended
        colour ``[n, 3]`` and the blend's total validity ``[n]`` (0 where no view sees the point)."""
        codes, colour, valid, votes = self.view_codes(views, points)
        w = valid[..., None]
        count = w.sum(0)
        share = count / max(len(valid), 1)
        mean = (codes * w).sum(0) / count.clamp_min(1)
        var = ((codes - mean) ** 2 * w).sum(0) / count.clamp_min(1)
        cmean = (colour * w).sum(0) / count.clamp_min(1)
        cvar = ((colour - cmean) ** 2 * w).sum(0) / count.clamp_min(1)
        aggregate = torch.cat([mean, var, cmean, cvar, share] + ([] if votes is None else [votes]), -1)
        if directions is None:
            return aggregate, None, None
        to_point = F.normalize(points[None] - views.centres[:, None], dim=-1)  # source rays through the point
        cosine = (to_point * F.normalize(directions, dim=-1)[None]).sum(-1)
        logits = self.score(torch.cat([codes, mean.expand_as(codes), var.expand_as(codes)], -1))[..., 0]
        logits = logits + self.log_sharpness.exp() * (cosine - 1)
        logits = logits.masked_fill(valid == 0, -1e4)
        blend = torch.softmax(logits, dim=0)
        return aggregate, (blend[..., None] * colour).sum(0), (count[:, 0] > 0).to(points.dtype)
