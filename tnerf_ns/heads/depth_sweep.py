"""Photo-consistent source depth: a local plane sweep around the LatentHead's predicted depth.

The head's depth comes from one view's tokens of a small backbone; the diagnosis's oracle row (ground-truth depth in
the lifting) shows that the rest of the trained head turns better depth into better renders. Under known cameras the
source photos themselves say where a surface is: at the right depth a pixel's colour reappears where its 3-D point
projects into the other views. Each lifted pixel tries depths around the prediction (a fraction of its ray inside the
box); a candidate's cost is the squared colour difference to the other views, aggregated over the better half of
those views (the others may see the point occluded) and over a small window of pixels (one pixel's colour is too
ambiguous), plus a small pull towards the prediction. A pixel does not move where no other view sees its predicted
point; with two views (where no third one outvotes a match against an occluded view) it moves only to a clear winner
that the other view's depth map agrees with (multi-view stereo's geometric consistency check). With three views or
more a view that sees an occluder in front of a candidate (its depth map) does not judge it, and a second pass judges
visibility with the first pass's depth maps. Nothing is learned:
it transfers to any capture whose views agree in colour, and a head trained on predicted depth reads it unchanged
(``--pipeline.model.lift-depth photo-consistent``).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.fields.source_projection import SourceViews

SWEEP_SPAN = 0.3
"""Largest change tried, as a fraction of the pixel's ray inside the box (either side of the prediction)."""
SWEEP_STEPS = 61
"""Depths tried per pixel (odd: the prediction itself is one)."""
SWEEP_WINDOW = 3
"""Side of the pixel window (on the lifted, pooled maps) whose costs are summed."""
SWEEP_PRIOR = 0.5
"""Cost per squared fraction of change: ties and textureless windows keep the prediction."""
SWEEP_MARGIN = 0.5
"""With two views a pixel moves only where its best window cost is below this share of the cost at the predicted
depth (a clear winner: with one other view a wrong match often looks as good as the right one)."""
SWEEP_MARGIN_MANY = 1.0
"""The same share with three views or more: any better cost wins, as the better half of the other views outvotes a
wrong match (0.5 here lost 0.11 dB at K = 4 on the tuning scenes)."""
SWEEP_AGREEMENT = 0.02
"""With two views, a moved pixel is kept only where the other view's depth map agrees with its new depth within
this share."""
SWEEP_OPACITY = 0.5
"""Only pixels whose splat weight (the head's opacity) exceeds this move: background rays keep their depth."""
SWEEP_OCCLUSION = 0.05
"""When > 0, a view whose depth map puts a surface in front of a candidate point (its depth there times 1 + this
share) does not judge that candidate: it sees the occluder. 0: off (the better half of the views decides alone)."""
SWEEP_OCCLUSION_VIEWS = 3
"""Fewest source views the occlusion test runs with: with two, the one other view is the only judge, and ruling it
out where the head's depth map is wrong leaves a pixel unjudged (K = 2 lost 0.04 dB on novel and 0.23 dB on input
views of the benchmark with it)."""
SWEEP_PASSES = 2
"""Sweeps in a row; each later pass judges visibility with the depth maps of the pass before it (with the occlusion
test on), still centred on the prediction."""


@torch.no_grad()
def photo_consistent_fraction(
    fraction: Float[Tensor, "s h w"],
    origins: Float[Tensor, "s h w 3"],
    dirs: Float[Tensor, "s h w 3"],
    t_near: Float[Tensor, "s h w"],
    t_far: Float[Tensor, "s h w"],
    weights: Float[Tensor, "s h w"],
    colours: Float[Tensor, "s 3 h w"],
    c2w: Float[Tensor, "s 3 4"],
    intrinsics: Float[Tensor, "s 3 3"],
) -> Float[Tensor, "s h w"]:
    """The depth fraction of each lifted pixel after the sweep (unchanged for one view, or where nothing is better).

    ``colours`` are the source photos at the lifted maps' resolution, ``intrinsics`` those of the maps."""
    s, h, w = fraction.shape
    if s < 2:
        return fraction
    views = SourceViews.from_cameras(colours, colours, c2w, intrinsics, (h, w))  # only cameras and colours are read
    own = (
        torch.arange(s, device=fraction.device).repeat_interleave(h * w)[None]
        == torch.arange(s, device=fraction.device)[:, None]
    )  # [s views, s*h*w points]: a pixel is not compared with its own view
    span = (t_far - t_near).clamp_min(0)
    surface = (weights > SWEEP_OPACITY) & (t_far > t_near + 1e-4)
    result = fraction
    occlusion = SWEEP_OCCLUSION > 0 and s >= SWEEP_OCCLUSION_VIEWS
    for _ in range(max(1, SWEEP_PASSES) if occlusion else 1):  # without visibility a pass repeats itself
        depth_maps = None
        if occlusion:  # the views' depth maps as they stand: the prediction, then the pass before
            depth_maps = own_depth_maps(views, origins, dirs, t_near + result * span, surface, own)
        result = sweep_pass(fraction, origins, dirs, t_near, span, surface, colours, views, own, depth_maps)
    return result


def sweep_pass(
    fraction: Float[Tensor, "s h w"],
    origins: Float[Tensor, "s h w 3"],
    dirs: Float[Tensor, "s h w 3"],
    t_near: Float[Tensor, "s h w"],
    span: Float[Tensor, "s h w"],
    surface: Tensor,
    colours: Float[Tensor, "s 3 h w"],
    views: SourceViews,
    own: Tensor,
    depth_maps: Optional[Float[Tensor, "s 1 h w"]],
) -> Float[Tensor, "s h w"]:
    """One sweep around ``fraction``; with ``depth_maps``, views that see an occluder in front of a candidate do not
    judge it."""
    s, h, w = fraction.shape
    reference = colours.permute(0, 2, 3, 1).reshape(1, -1, 3)  # [1, s*h*w, 3]
    keep = max(1, s // 2)  # the better half of the other s - 1 views
    offsets = torch.linspace(-SWEEP_SPAN, SWEEP_SPAN, SWEEP_STEPS, device=fraction.device)
    centre = len(offsets) // 2  # the prediction itself
    costs, candidates = [], []
    for i, offset in enumerate(offsets):  # one candidate depth for every pixel at a time: memory stays s * (s h w)
        candidate = (fraction + offset).clamp(0, 1)
        points = (origins + (t_near + candidate * span)[..., None] * dirs).reshape(-1, 3)
        coords, z = views.project(points)
        sampled = F.grid_sample(
            colours, coords[:, :, None], mode="bilinear", padding_mode="border", align_corners=False
        )
        error = (sampled[..., 0].transpose(1, 2) - reference).square().sum(-1)  # [s views, s*h*w]
        in_frame = views.in_frame(coords, z) & ~own  # another view's image holds the candidate
        seen = in_frame
        if depth_maps is not None:
            seen = in_frame & (z <= sample_nearest(depth_maps, coords) * (1 + SWEEP_OCCLUSION))
            if i == centre:  # the prediction: in other views' frames, behind all their surfaces
                hidden = (in_frame.any(0) & ~seen.any(0)).reshape(s, h, w)
        error = torch.where(seen, error, torch.full_like(error, float("inf")))
        best = error.sort(dim=0).values[:keep]  # unseen views sort last
        counted = best.isfinite()
        cost = torch.where(counted, best, torch.zeros_like(best)).sum(0) / counted.sum(0).clamp_min(1)
        seen_any = counted.any(0).to(cost.dtype)  # a point no other view sees cannot be judged
        pool = dict(kernel_size=SWEEP_WINDOW, stride=1, padding=SWEEP_WINDOW // 2)
        total = F.avg_pool2d((cost * seen_any).reshape(s, 1, h, w), **pool)[:, 0]
        judged = F.avg_pool2d(seen_any.reshape(s, 1, h, w), **pool)[:, 0]
        window = torch.where(judged > 0, total / judged.clamp_min(1e-6), torch.full_like(total, float("inf")))
        costs.append(window + SWEEP_PRIOR * float(offset) ** 2)
        candidates.append(candidate)
    costs = torch.stack(costs)
    best, choice = costs.min(0, keepdim=True)  # [1, s, h, w]
    refined = torch.stack(candidates).gather(0, choice)[0]
    at_prediction = costs[centre]
    margin = SWEEP_MARGIN if s == 2 else SWEEP_MARGIN_MANY
    move = surface & (best[0] < margin * at_prediction) & at_prediction.isfinite()
    if depth_maps is not None:  # a predicted point that every other view sees behind its surface is ruled out
        move = move | (surface & hidden & best[0].isfinite())
    if s == 2:  # one other view: nothing outvotes a match against an occluded view, so the depth maps must agree
        move = move & consistent(views, origins, dirs, t_near + torch.where(move, refined, fraction) * span, own)
    return torch.where(move, refined, fraction)


def sample_nearest(maps: Float[Tensor, "s 1 h w"], coords: Float[Tensor, "s n 2"]) -> Float[Tensor, "s n"]:
    """Each view's map at the points' grid_sample coordinates in that view (nearest pixel: no blend across an
    edge)."""
    return F.grid_sample(maps, coords[:, :, None], mode="nearest", padding_mode="border", align_corners=False)[
        :, 0, :, 0
    ]


def own_depth_maps(
    views: SourceViews, origins: Tensor, dirs: Tensor, t: Float[Tensor, "s h w"], surface: Tensor, own: Tensor
) -> Float[Tensor, "s 1 h w"]:
    """Each view's z-depth map of its lifted points; pixels without a surface (background, rays that miss the box)
    occlude nothing."""
    s, h, w = t.shape
    _, z = views.project((origins + t[..., None] * dirs).reshape(-1, 3))
    z = z[own].reshape(s, h, w)
    return torch.where(surface, z, torch.full_like(z, float("inf")))[:, None]


def consistent(
    views: SourceViews,
    origins: Float[Tensor, "s h w 3"],
    dirs: Float[Tensor, "s h w 3"],
    t: Float[Tensor, "s h w"],
    own: Tensor,
) -> Tensor:
    """Whether each pixel's point lies on the surface that another view's depth map puts there (within
    ``SWEEP_AGREEMENT`` of its depth in that view): a match of one view alone, e.g. against an occluded view, is
    dropped. ``[s, h, w]``."""
    s, h, w = t.shape
    points = (origins + t[..., None] * dirs).reshape(-1, 3)
    coords, z = views.project(points)  # [s views, s*h*w]
    seen_z = sample_nearest(z[own].reshape(s, 1, h, w), coords)  # each view's own depth map where the point lands
    inside = views.in_frame(coords, z) & ~own
    agree = inside & ((seen_z - z).abs() < SWEEP_AGREEMENT * z)
    return agree.any(0).reshape(s, h, w)
