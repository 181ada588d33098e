"""The tri-plane convention in one place: which axes index which plane, and how canonical points read the planes.

Planes are ``[3, channels, R, R]`` over the canonical box ``[-1, 1]^3``: xy, xz and yz, each indexed by (column, row)
= its two axes, ``align_corners=True`` (cell centres of the splatting lattice sit on the box faces).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

PLANE_AXES = ((0, 1), (0, 2), (1, 2))
"""Planes xy, xz, yz: the two coordinates each plane is indexed by (column, row)."""
MISSING_AXIS = (2, 1, 0)
"""The coordinate each plane does not see (z, y, x)."""


def plane_coordinates(points: Float[Tensor, "n 3"]) -> Float[Tensor, "3 n 2"]:
    """Each point's (column, row) coordinates on the three planes."""
    return torch.stack([points[:, list(ax)] for ax in PLANE_AXES])


def sample_planes(planes: Float[Tensor, "3 c r r"], points: Float[Tensor, "n 3"]) -> Float[Tensor, "3c n"]:
    """Bilinear lookups of canonical points, channel-first ``[xy channels, xz channels, yz channels] x n`` (the
    layout the field's first layer multiplies without a transposed copy)."""
    coords = plane_coordinates(points)[:, None]  # [3, 1, n, 2]
    feats = F.grid_sample(planes, coords, mode="bilinear", padding_mode="border", align_corners=True)  # [3, c, 1, n]
    return feats.reshape(-1, points.shape[0])


def sample_triplane(planes: Float[Tensor, "3 c r r"], points: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3c"]:
    """Bilinear lookups of canonical points on planes xy, xz, yz, concatenated per point."""
    return sample_planes(planes, points).T
