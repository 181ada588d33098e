"""The photo-consistent depth sweep (--pipeline.model.lift-depth photo-consistent): on a textured wall seen by
several cameras it moves a wrong predicted depth onto the wall, and it leaves alone what it cannot judge."""

from __future__ import annotations

import math

import pytest
import torch
from test_diagnosis_switches import BOX, SIZES
from test_triplane import camera

from tnerf_ns.geometry import pixel_rays, ray_box_intersection
from tnerf_ns.heads import depth_sweep
from tnerf_ns.heads.depth_sweep import photo_consistent_fraction
from tnerf_ns.models.tnerf_model import TNeRFModelConfig
from tnerf_ns.scene_context import SceneContext

H = W = 40
WALL_Z = 0.0  # world z of the textured wall (inside the canonical box)


def texture(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A colour pattern on the wall, varied enough at every scale a 5-px window sees."""
    return torch.stack([0.5 + 0.4 * torch.sin(13 * x + 5 * y), 0.5 + 0.4 * torch.cos(11 * y - 4 * x),
                        0.5 + 0.4 * torch.sin(17 * x * y + 9 * x)], 0)  # fmt: skip


def views(eyes):
    """Cameras looking at the wall, the photos they take of it, and the true depth fraction of every pixel."""
    return occluded_wall(eyes, half=0.0)[:-1]  # a square of no size hides nothing


def sweep(fraction, origins, dirs, t_near, t_far, colours, c2w, intr, weights=None):
    weights = torch.ones_like(fraction) if weights is None else weights
    return photo_consistent_fraction(fraction, origins, dirs, t_near, t_far, weights, colours, c2w, intr)


@pytest.mark.parametrize("angles", [(0.0, 2.1, 4.2), (0.0, 3.1)])  # 3 views; 2 views (with the consistency check)
def test_a_wrong_depth_moves_onto_the_textured_wall(angles):
    eyes = [[math.cos(a), math.sin(a), 2.5] for a in angles]
    origins, dirs, t_near, t_far, colours, c2w, intr, truth = views(eyes)
    inner = (slice(None), slice(8, -8), slice(8, -8))  # pixels the other views see
    assert (truth[inner] > 0.2).all() and (truth[inner] < 0.8).all()
    wrong = truth + 0.12
    refined = sweep(wrong, origins, dirs, t_near, t_far, colours, c2w, intr)
    before = (wrong - truth)[inner].abs().mean()
    after = (refined - truth)[inner].abs().mean()
    assert before > 0.1 and after < 0.02, (before, after)


def test_what_the_sweep_cannot_judge_keeps_the_predicted_depth():
    eyes = [[1.0, 0.0, 2.5], [-1.0, 0.2, 2.5]]
    origins, dirs, t_near, t_far, colours, c2w, intr, truth = views(eyes)
    wrong = truth + 0.12
    # one view: nothing to compare with
    one = sweep(wrong[:1], origins[:1], dirs[:1], t_near[:1], t_far[:1], colours[:1], c2w[:1], intr[:1])
    assert torch.equal(one, wrong[:1])
    # background pixels (the head's splat weight below one half) keep their depth
    clear = sweep(wrong, origins, dirs, t_near, t_far, colours, c2w, intr, weights=torch.zeros_like(wrong))
    assert torch.equal(clear, wrong)
    # a wall without texture: every depth looks alike, no clear winner, nothing moves
    flat = torch.full_like(colours, 0.5)
    assert torch.equal(sweep(wrong, origins, dirs, t_near, t_far, flat, c2w, intr), wrong)
    # two views whose depth maps disagree where a match was found: the match is dropped (a view's occluder)
    other_wrong = torch.stack([wrong[0], truth[1] - 0.45])
    refined = sweep(other_wrong, origins, dirs, t_near, t_far, colours, c2w, intr)
    inner = (slice(8, -8), slice(8, -8))
    assert torch.equal(refined[1][inner], other_wrong[1][inner])  # beyond the sweep's reach: nothing to match
    assert torch.equal(refined[0][inner], other_wrong[0][inner])  # its match has no support in view 1's depth


def encode_wall(training: bool = False, **switches):
    eyes = [[math.cos(a), math.sin(a), 2.5] for a in (0.0, 2.1, 4.2)]
    _, _, _, _, colours, c2w, intr, _ = views(eyes)
    ctx = SceneContext(("wall", 0), 0, "wall", colours, torch.ones(3, H, W), c2w, intr)
    torch.manual_seed(0)
    encoder = TNeRFModelConfig(**SIZES, **switches).make_encoder(BOX).train(training)
    with torch.no_grad():
        return encoder(ctx)[0]


def test_the_default_sweeps_at_inference_and_training_lifts_the_heads_own_depth(monkeypatch):
    monkeypatch.setattr(depth_sweep, "SWEEP_OPACITY", -1.0)  # an untrained head's splat weights sit near one half
    assert TNeRFModelConfig().lift_depth == "photo-consistent"
    own = encode_wall(lift_depth="predicted")
    swept = encode_wall()
    assert torch.isfinite(swept.planes).all()
    assert not torch.allclose(swept.views.maps[:, -1], own.views.maps[:, -1])
    assert torch.equal(swept.views.maps[:, :-1], own.views.maps[:, :-1])  # the features are the head's
    trained = encode_wall(training=True)  # the head learns from (and its depth loss reads) its own depth
    torch.testing.assert_close(trained.views.maps, own.views.maps)


def occluded_wall(eyes, occluder_z=0.6, half=0.3):
    """The textured wall with a differently textured square hovering above it: each camera's photo, the true depth
    fraction, and which pixels see the square."""
    c2w = torch.stack([camera(e) for e in eyes])
    intr = torch.tensor([[80.0, 0, W / 2], [0, 80, H / 2], [0, 0, 1]]).expand(len(eyes), 3, 3)
    origins, dirs, _ = pixel_rays(c2w, intr, H, W)
    t_near, t_far = ray_box_intersection(origins, dirs, -1.0, 1.0)
    t_wall = (WALL_Z - origins[..., 2]) / dirs[..., 2]
    t_square = (occluder_z - origins[..., 2]) / dirs[..., 2]
    on_square = origins + t_square[..., None] * dirs
    square = (on_square[..., 0].abs() < half) & (on_square[..., 1].abs() < half)
    t = torch.where(square, t_square, t_wall)
    hit = origins + t[..., None] * dirs
    wall = torch.stack([texture(p[..., 0], p[..., 1]) for p in hit])
    other = torch.stack([texture(3 * p[..., 1] + 1, 3 * p[..., 0] - 2).flip(0) for p in hit])
    colours = torch.where(square[:, None], other, wall)
    return origins, dirs, t_near, t_far, colours, c2w, intr, (t - t_near) / (t_far - t_near), square


def test_views_that_see_an_occluder_do_not_judge_the_surface_behind_it(monkeypatch):
    eyes = [[1.2 * math.cos(a), 1.2 * math.sin(a), 2.5] for a in (0.0, 1.57, 3.14, 4.71)]
    origins, dirs, t_near, t_far, colours, c2w, intr, truth, square = occluded_wall(eyes)
    # wall pixels that some other view sees hidden behind the square (from the true geometry)
    s, span = len(eyes), t_far - t_near
    views = depth_sweep.SourceViews.from_cameras(colours, colours, c2w, intr, (H, W))
    own = torch.arange(s).repeat_interleave(H * W)[None] == torch.arange(s)[:, None]
    maps = depth_sweep.own_depth_maps(views, origins, dirs, t_near + truth * span, torch.ones_like(square), own)
    coords, z = views.project((origins + (t_near + truth * span)[..., None] * dirs).reshape(-1, 3))
    hidden = ((z > depth_sweep.sample_nearest(maps, coords) * 1.02) & ~own).any(0).reshape(s, H, W)
    judged = torch.zeros_like(square)
    judged[:, 6:-6, 6:-6] = True
    behind = judged & hidden & ~square
    assert behind.sum() > 1000
    wrong = truth + 0.1
    errors = {}
    for occlusion in (0.0, 0.05):
        monkeypatch.setattr(depth_sweep, "SWEEP_OCCLUSION", occlusion)
        errors[occlusion] = (sweep(wrong, origins, dirs, t_near, t_far, colours, c2w, intr) - truth).abs()
    # the better half of the views alone is misled where two of the three other views see the square
    assert errors[0.0][behind].mean() > 0.01
    assert errors[0.05][behind].mean() < 0.2 * errors[0.0][behind].mean()
    assert errors[0.05][judged].mean() < 0.002


def test_two_views_sweep_without_the_occlusion_test(monkeypatch):
    eyes = [[1.0, 0.0, 2.5], [-1.0, 0.2, 2.5]]
    origins, dirs, t_near, t_far, colours, c2w, intr, truth = views(eyes)
    wrong = truth + 0.12
    assert depth_sweep.SWEEP_OCCLUSION > 0 and depth_sweep.SWEEP_OCCLUSION_VIEWS > 2
    with_default = sweep(wrong, origins, dirs, t_near, t_far, colours, c2w, intr)
    monkeypatch.setattr(depth_sweep, "SWEEP_OCCLUSION", 0.0)
    assert torch.equal(with_default, sweep(wrong, origins, dirs, t_near, t_far, colours, c2w, intr))
    assert not torch.equal(with_default, wrong)  # the sweep itself ran
