"""The surroundings beyond the box come from the source photos (fields/source_surroundings.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tnerf_ns.fields.source_projection import SourceViews
from tnerf_ns.fields.source_surroundings import swept_surroundings

PLANE_Z = -6.0
"""A textured wall behind the box (canonical units)."""


def wall_colour(xy: torch.Tensor) -> torch.Tensor:
    x, y = xy.unbind(-1)
    return torch.stack(
        [0.5 + 0.4 * torch.sin(1.3 * x), 0.5 + 0.4 * torch.cos(0.9 * y), 0.5 + 0.2 * torch.sin(x + y)], -1
    )


def camera_at(eye) -> torch.Tensor:
    """OpenGL camera-to-world looking along -z (at the wall)."""
    return torch.cat([torch.eye(3), torch.tensor(eye, dtype=torch.float32)[:, None]], 1)


def rays_of(c2w: torch.Tensor, focal: float, size: int):
    v, u = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    d = torch.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -torch.ones_like(u)], -1).reshape(-1, 3)
    d = F.normalize(d @ c2w[:, :3].T, dim=-1)
    return c2w[:, 3].expand_as(d), d


def photo_of_wall(c2w: torch.Tensor, focal: float, size: int) -> torch.Tensor:
    o, d = rays_of(c2w, focal, size)
    t = (PLANE_Z - o[:, 2]) / d[:, 2]
    return wall_colour((o + t[:, None] * d)[:, :2]).reshape(size, size, 3).permute(2, 0, 1)


def test_a_ray_leaving_the_box_sees_the_wall_the_sources_photographed():
    size, focal = 64, 48.0
    eyes = [(-0.6, -0.4, 3.0), (0.6, -0.4, 3.0), (0.0, 0.6, 3.0), (0.3, 0.1, 3.5)]
    c2w = torch.stack([camera_at(e) for e in eyes])
    colours = torch.stack([photo_of_wall(c, focal, size) for c in c2w])
    intr = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]]).expand(len(eyes), 3, 3)
    views = SourceViews.from_cameras(colours, torch.zeros(len(eyes), 1, 8, 8), c2w, intr, (size, size))
    novel = camera_at((0.1, -0.1, 2.5))
    o, d = rays_of(novel, 40.0, 24)
    t_exit = (-1.0 - o[:, 2]) / d[:, 2]  # the box's back face z = -1
    got = swept_surroundings(views, o, d, t_exit)
    truth = wall_colour((o + ((PLANE_Z - o[:, 2]) / d[:, 2])[:, None] * d)[:, :2])
    error = (got - truth).abs().mean()
    flat = (colours.mean((0, 2, 3)) - truth).abs().mean()  # what a flat background colour would give
    assert error < 0.03 and error < flat / 3, (float(error), float(flat))


def test_rays_no_source_sees_get_the_photos_mean_colour():
    size, focal = 16, 12.0
    c2w = camera_at((0.0, 0.0, 3.0))[None]
    colours = torch.rand(1, 3, size, size)
    intr = torch.tensor([[[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]]])
    views = SourceViews.from_cameras(colours, torch.zeros(1, 1, 4, 4), c2w, intr, (size, size))
    o = torch.tensor([[0.0, 0.0, 5.0]]).expand(5, 3)  # behind the camera, looking away from what it sees
    d = torch.tensor([[0.0, 0.0, 1.0]]).expand(5, 3)
    got = swept_surroundings(views, o, d, torch.ones(5))
    assert torch.allclose(got, colours.mean((0, 2, 3)).expand(5, 3), atol=1e-6)
