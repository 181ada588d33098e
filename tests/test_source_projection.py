"""The projection branch (tnerf_ns/fields/source_projection.py): projection consistent with the rays of the lifting,
permutation invariance across views, source colours reproduced on an input view, and the field's fallbacks."""

from __future__ import annotations

import torch
from test_triplane import camera

from tnerf_ns.fields.source_projection import ProjectionAggregator, SourceViews, TriplaneScene
from tnerf_ns.fields.triplane_field import TriplaneField
from tnerf_ns.geometry import pixel_rays

H, W = 12, 16
INTR = torch.tensor([[20.0, 0, 8.5], [0, 18, 5.5], [0, 0, 1]])


def views(k: int = 3, seed: int = 0, maps_channels: int = 3) -> SourceViews:
    gen = torch.Generator().manual_seed(seed)
    c2w = torch.stack([camera([3 * torch.cos(torch.tensor(a)).item(), 0.5, 3 * torch.sin(torch.tensor(a)).item()])
                       for a in torch.linspace(0.3, 2.0, k).tolist()])  # fmt: skip
    colours = torch.rand(k, 3, H, W, generator=gen)
    maps = torch.rand(k, maps_channels, H // 2, W // 2, generator=gen)
    maps[:, -1] = 3.0  # predicted depth behind the box: nothing occludes
    return SourceViews.from_cameras(colours, maps, c2w, INTR.expand(k, 3, 3), (H, W))


def test_pixel_centres_project_back_to_their_pixels():
    v = views()
    origins, dirs, norm = pixel_rays(v_c2w := torch.cat([v.w2c[:, :, :3].transpose(1, 2), v.centres[..., None]], -1),
                                     INTR.expand(3, 3, 3), H, W)  # fmt: skip
    assert torch.allclose(v_c2w[:, :, 3], v.centres)
    z = 2.0
    points = origins + (z * norm)[..., None] * dirs  # z-depth 2 along every pixel's ray
    coords, depth = v.project(points[1].reshape(-1, 3))
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    expected = torch.stack([(2 * (xs + 0.5) / W - 1), (2 * (ys + 0.5) / H - 1)], -1).reshape(-1, 2)
    torch.testing.assert_close(coords[1], expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(depth[1], torch.full_like(depth[1], z), atol=1e-4, rtol=0)


def test_aggregate_and_blend_do_not_depend_on_view_order():
    torch.manual_seed(0)
    agg = ProjectionAggregator(map_channels=3, hidden=8)
    v = views(k=4)
    perm = torch.tensor([2, 0, 3, 1])
    shuffled = SourceViews(v.colours[perm], v.maps[perm], v.w2c[perm], v.focal[perm], v.principal[perm],
                           v.centres[perm])  # fmt: skip
    points = torch.rand(50, 3) * 1.6 - 0.8
    dirs = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    a1, c1, s1 = agg(v, points, dirs)
    a2, c2, s2 = agg(shuffled, points, dirs)
    torch.testing.assert_close(a1, a2)
    torch.testing.assert_close(c1, c2)
    assert agg(v, points)[1] is None  # no direction, no blend: the aggregate alone (density grids)


def test_an_input_view_gets_its_own_pixels_back():
    """On a source camera's own rays the blend is sharpened onto that camera: its pixel colours come back."""
    agg = ProjectionAggregator(map_channels=3, hidden=8)
    with torch.no_grad():
        agg.log_sharpness.fill_(8.0)  # the learned sharpness, pushed up: the nearest ray dominates
    v = views(k=3)
    c2w = torch.cat([v.w2c[:, :, :3].transpose(1, 2), v.centres[..., None]], -1)
    origins, dirs, norm = pixel_rays(c2w[:1], INTR[None], H, W)
    points = (origins + (2.5 * norm)[..., None] * dirs)[0].reshape(-1, 3)
    _, rgb, seen = agg(v, points, dirs[0].reshape(-1, 3))
    torch.testing.assert_close(rgb, v.colours[0].permute(1, 2, 0).reshape(-1, 3), atol=1e-3, rtol=0)
    assert bool((seen == 1).all())


def test_points_no_view_sees_fall_back_to_the_mlp_colour():
    torch.manual_seed(0)
    field = TriplaneField(plane_channels=2, hidden_dim=8, projection_channels=3, projection_hidden=4)
    planes = torch.randn(3, 2, 8, 8)
    v = views()
    behind = v.centres[:1] * 1.5  # behind the first camera, outside every view's frustum
    far = torch.tensor([[0.0, -40.0, 0.0]])
    points = torch.cat([behind, far])
    d1, rgb_with = field.decode(TriplaneScene(planes, v), points)
    _, seen = field.projection(v, points, torch.ones_like(points))[1:]
    assert bool((seen == 0).all())
    # planes alone: the branch's inputs read zero, and the colour is the MLP's everywhere
    d0, rgb_without = field.decode(planes, points)
    assert d0.shape == d1.shape and rgb_without.shape == rgb_with.shape
    # a field without the branch ignores the views
    plain = TriplaneField(plane_channels=2, hidden_dim=8)
    torch.testing.assert_close(plain.decode(TriplaneScene(planes, v), points)[1], plain.decode(planes, points)[1])


def test_gradients_reach_the_view_maps_and_colours():
    field = TriplaneField(plane_channels=2, hidden_dim=8, projection_channels=3, projection_hidden=4)
    v = views()
    v.maps.requires_grad_(True)
    v.colours.requires_grad_(True)
    points = torch.rand(64, 3) * 1.0 - 0.5
    density, rgb = field.decode(TriplaneScene(torch.zeros(3, 2, 8, 8), v), points, torch.randn(64, 3))
    (density.sum() + rgb.sum()).backward()
    assert v.maps.grad.abs().sum() > 0 and v.colours.grad.abs().sum() > 0


def test_surface_votes_fuse_the_depth_maps():
    """A point on one view's predicted surface gets that view's full vote (times its opacity); points well in front
    of every surface are free space; the votes do not depend on view order and widen the aggregate by three."""
    k = 3
    v = views(k=k)
    v.maps[:, -1] = 5.0  # views 0 and 2 see past the box
    v.maps[1, -1] = 2.5
    v.opacity = torch.ones(k, 1, H // 2, W // 2)
    v.opacity[1] = 0.4
    agg = ProjectionAggregator(map_channels=3, hidden=8, surface_votes=True)
    assert agg.out_dim == ProjectionAggregator(map_channels=3, hidden=8).out_dim + 3
    c2w = torch.cat([v.w2c[:, :, :3].transpose(1, 2), v.centres[..., None]], -1)
    origins, dirs, norm = pixel_rays(c2w, INTR.expand(k, 3, 3), H, W)
    centre = (slice(4, 8), slice(6, 10))  # pixels near the image centre: the other views see these points too
    on_surface = (origins + (2.5 * norm)[..., None] * dirs)[1][centre].reshape(-1, 3)
    in_front = (origins + (0.5 * norm)[..., None] * dirs)[1][centre].reshape(-1, 3)
    votes = agg(v, torch.cat([on_surface, in_front]))[0][:, -3:]
    n = len(on_surface)
    torch.testing.assert_close(votes[:n, 0], torch.full((n,), 0.4), atol=1e-3, rtol=0)  # view 1's vote, its opacity
    assert bool((votes[n:, 0] < 1e-3).all()) and bool((votes[n:, 2] > 0.99).all())  # in front of every surface
    torch.testing.assert_close(votes[:n, 2], torch.full((n,), 2 / 3), atol=1e-3, rtol=0)  # free for views 0 and 2
    perm = torch.tensor([2, 0, 1])
    shuffled = SourceViews(v.colours[perm], v.maps[perm], v.w2c[perm], v.focal[perm], v.principal[perm],
                           v.centres[perm], v.opacity[perm])  # fmt: skip
    torch.testing.assert_close(agg(shuffled, on_surface)[0], agg(v, on_surface)[0])


def test_a_prediction_counts_its_numbers_like_a_tensor():
    """Scripts size a prediction with ``numel()``, whether it is planes alone or planes with source views."""
    planes = torch.zeros(3, 2, 8, 8)
    v = views(k=2)
    expected = planes.numel() + v.colours.numel() + v.maps.numel() + v.w2c.numel() + v.focal.numel()
    expected += v.principal.numel() + v.centres.numel()
    assert TriplaneScene(planes, v).numel() == expected and TriplaneScene(planes).numel() == planes.numel()
