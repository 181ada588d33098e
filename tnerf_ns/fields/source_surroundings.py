"""What lies outside the box on a capture: the surroundings as the source views see them.

The tri-plane covers the object's box; a capture also shows a table, walls and sky. Instead of forcing them into the
box or leaving them white, a ray that leaves the box (or misses it) takes its colour from the source photos: a small
plane sweep along the ray beyond the box. Candidate points at depths spaced evenly in inverse depth are projected into
every source view; at each depth the views that see the point give a mean colour and a variance (multi-view
consistency: low where the depth is right), views closer in direction to the ray weigh more; a soft minimum of the
variance over depths picks the colour. A view whose pixel there is opaque by the head's splat weight (it sees the
box's content, e.g. the object, not what lies behind it) does not count. No weights are learned, so it works for any head (and refinement leaves it
as it is); rays no source view sees get the photos' mean colour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.fields.source_projection import SourceViews

SWEEP_DEPTHS = 24
"""Candidate depths per ray."""
SWEEP_FAR = 100.0
"""Farthest candidate, in canonical units (the box is 2 across)."""
SWEEP_NEAR = 0.5
"""Nearest candidate of a ray that misses the box (canonical units from its origin)."""
DIRECTION_SHARPNESS = 8.0
"""A view's weight falls as exp(sharpness * (cos - 1)) of the angle between its ray and the query ray."""
VARIANCE_TEMPERATURE = 0.005
"""Soft minimum over depths of the colour variance (summed over RGB)."""
OPAQUE = 0.5
"""A source pixel whose predicted splat weight (opacity) is above this sees the box's content, not the surroundings."""


@torch.no_grad()
def swept_surroundings(
    views: SourceViews,
    origins: Float[Tensor, "r 3"],
    directions: Float[Tensor, "r 3"],
    start: Float[Tensor, "r"],
) -> Float[Tensor, "r 3"]:
    """Colour of what each canonical ray (unit ``directions``) meets beyond ``start`` (its box exit, canonical units),
    from the source photos."""
    r = len(origins)
    start = start.clamp_min(SWEEP_NEAR)[:, None]
    steps = torch.linspace(0, 1, SWEEP_DEPTHS, device=origins.device)
    t = 1.0 / torch.lerp(1.0 / start, torch.full_like(start, 1.0 / SWEEP_FAR), steps)  # [r, d]: even in 1/depth
    points = (origins[:, None] + t[..., None] * directions[:, None]).reshape(-1, 3)
    xy, z = views.project(points)  # [k, n, 2], [k, n]
    colours = F.grid_sample(views.colours, xy[:, None], align_corners=False)[:, :, 0]  # [k, 3, n]
    seen = views.in_frame(xy, z)
    if views.opacity is not None:  # a view whose pixel holds the box's content does not see past it
        blocked = F.grid_sample(views.opacity, xy[:, None], align_corners=False)[:, 0, 0] > OPAQUE
        seen = seen & ~blocked
    to_point = F.normalize(points[None] - views.centres[:, None], dim=-1)
    cosine = (to_point * directions.repeat_interleave(SWEEP_DEPTHS, 0)[None]).sum(-1)
    weight = seen * torch.exp(DIRECTION_SHARPNESS * (cosine - 1))  # [k, n]: the colour favours nearby views
    mean = (weight[:, None] * colours).sum(0) / weight.sum(0).clamp_min(1e-8)  # [3, n]
    # consistency counts every view that sees the point alike (a direction-weighted variance would follow the nearest
    # view alone and call any single photo consistent)
    count = seen.sum(0)
    plain = (seen[:, None] * colours).sum(0) / count.clamp_min(1)
    variance = (seen[:, None] * (colours - plain[None]) ** 2).sum((0, 1)) / count.clamp_min(1)  # [n]
    # a depth seen by fewer than two views says nothing about consistency: it loses to any depth that is seen twice
    cost = torch.where(count >= 2, variance, variance + 1.0).reshape(r, SWEEP_DEPTHS)
    cost = torch.where(count.reshape(r, SWEEP_DEPTHS) > 0, cost, torch.full_like(cost, 1e3))
    pick = torch.softmax(-cost / VARIANCE_TEMPERATURE, dim=-1)  # [r, d]
    colour = (pick[..., None] * mean.T.reshape(r, SWEEP_DEPTHS, 3)).sum(1)
    fallback = views.colours.mean((0, 2, 3))
    nothing = ~seen.any(0).reshape(r, SWEEP_DEPTHS).any(-1)
    return torch.where(nothing[:, None], fallback.expand(r, 3), colour).clamp(0, 1)
