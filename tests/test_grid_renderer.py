"""Grid volume renderer: analytic sphere silhouette, opacity convention, camera conventions, axes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnerf_ns.geometry import opencv_w2c_to_opengl_c2w, opengl_c2w_to_opencv_w2c
from tnerf_ns.scenes.camera_rigs import look_at_opengl, orbit_poses, room_poses
from tnerf_ns.scenes.grid_renderer import (
    GridVolume,
    analytic_sphere_radius_px,
    camera_rays,
    render_rays,
    render_view,
)
from tnerf_ns.scenes.nerfmae import CULLED, NerfMAEScene, sigma_to_alpha, world_to_ngp_axes


def unit_box_scene(sigma: np.ndarray, rgb: np.ndarray) -> NerfMAEScene:
    """A grid over the world box [0, 1]^3 with NGP-style normalisation (scale 1.5, centred at 0.5)."""
    scale = 1.5
    offset = np.full(3, 0.5 - scale * 0.5)
    raw = np.where(sigma >= 1e-12, np.log(np.maximum(sigma, 1e-12)), CULLED).astype(np.float32)
    return NerfMAEScene(
        "test", None, rgb.astype(np.float32), raw, "ngp_log",
        world_to_ngp_axes(offset), world_to_ngp_axes(np.ones(3) * scale + offset), scale, offset,
    )  # fmt: skip


def lattice(res: int) -> np.ndarray:
    ax = np.linspace(0, 1, res)
    return np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1)


@pytest.fixture(scope="module")
def sphere_volume():
    res = 96
    pts = lattice(res)
    sdf = np.linalg.norm(pts - 0.5, axis=-1) - 0.25
    sigma = 2000 * np.clip(0.5 - sdf * (res - 1), 0, 1)
    rgb = np.broadcast_to(np.array([0.8, 0.2, 0.1]), pts.shape).copy()
    return GridVolume.from_scene(unit_box_scene(sigma, rgb))


def test_sphere_silhouette_within_one_pixel_of_analytic(sphere_volume):
    distance, focal = 2.02, 80.0
    c2w = torch.tensor(look_at_opengl(np.array([0.5, 0.5 - distance, 0.5]), np.full(3, 0.5)), dtype=torch.float32)
    out = render_view(sphere_volume, c2w, focal, focal, 64, 48, 96, 128)
    measured = math.sqrt(float((out["opacity"] > 0.5).sum()) / math.pi)
    expected = analytic_sphere_radius_px(distance, 0.25, focal)
    assert abs(measured - expected) < 1.0, (measured, expected)
    torch.testing.assert_close(out["rgb"][48, 64], torch.tensor([0.8, 0.2, 0.1]))
    assert out["depth"][48, 64] == pytest.approx(distance - 0.25, abs=0.02)
    torch.testing.assert_close(out["rgb"][0, 0], torch.ones(3))  # background
    assert out["depth"][0, 0] == 0


def test_opacity_convention_matches_the_reader():
    """One step of 0.01 NGP units through uniform density gives the reader's per-voxel opacity."""
    res, sigma_ngp = 32, 40.0
    pts = lattice(res)
    scene = unit_box_scene(np.full(pts.shape[:3], sigma_ngp), np.full(pts.shape, 0.5))
    volume = GridVolume.from_scene(scene)
    step = 0.01 / scene.scale  # world length of 0.01 NGP units
    dirs = torch.tensor([[1.0, 0.0, 0.0]])
    one_step = render_rays(volume, torch.tensor([[1.0 - 0.999 * step, 0.5, 0.5]]), dirs, step=step)
    reader = float(sigma_to_alpha(np.array(sigma_ngp)))
    assert float(one_step["opacity"][0]) == pytest.approx(reader, rel=1e-4)
    # across the whole box (1 m = 1.5 NGP units) the opacity compounds to 1 - exp(-sigma * 1.5)
    thin = unit_box_scene(np.full(pts.shape[:3], 0.4), np.full(pts.shape, 0.5))
    full = render_rays(GridVolume.from_scene(thin), torch.tensor([[-1.0, 0.5, 0.5]]), dirs)
    assert float(full["opacity"][0]) == pytest.approx(1 - math.exp(-0.4 * 1.5), rel=1e-3)


def test_opengl_and_opencv_rays_agree():
    c2w_gl = torch.tensor(look_at_opengl(np.array([2.0, -1.0, 1.5]), np.zeros(3)), dtype=torch.float32)
    o, d, _ = camera_rays(c2w_gl, 50.0, 50.0, 16.0, 12.0, 24, 32)
    w2c_cv = opengl_c2w_to_opencv_w2c(c2w_gl.double())
    torch.testing.assert_close(opencv_w2c_to_opengl_c2w(w2c_cv).float(), c2w_gl)
    rot = w2c_cv[:, :3].T.float()  # OpenCV camera-to-world rotation
    v, u = torch.meshgrid(torch.arange(24.0) + 0.5, torch.arange(32.0) + 0.5, indexing="ij")
    d_cv = torch.stack([(u - 16) / 50, (v - 12) / 50, torch.ones_like(u)], -1) @ rot.T
    torch.testing.assert_close(d, torch.nn.functional.normalize(d_cv, dim=-1), atol=1e-6, rtol=0)


def test_axes_red_right_green_up_from_above():
    res = 40
    pts = lattice(res)
    sigma = np.zeros(pts.shape[:3])
    rgb = np.zeros(pts.shape)
    for axis, colour in ((0, [1, 0, 0]), (1, [0, 1, 0]), (2, [0, 0, 1])):
        centre = np.full(3, 0.5)
        centre[axis] = 0.85
        sigma[np.abs(pts - centre).max(-1) < 0.08] = 2000
        rgb[np.abs(pts - centre).max(-1) < 0.12] = colour  # colour reaches past the surface, as in real grids
    volume = GridVolume.from_scene(unit_box_scene(sigma, rgb))
    # top-down camera looking along -z with +y as image up
    c2w = torch.tensor([[1.0, 0, 0, 0.5], [0, 1, 0, 0.5], [0, 0, 1, 3.0]])
    out = render_view(volume, c2w, 120.0, 120.0, 32, 32, 64, 64)
    rgb_img = out["rgb"]
    red = torch.nonzero((rgb_img[..., 0] > 0.8) & (rgb_img[..., 1] < 0.2)).float().mean(0)
    green = torch.nonzero((rgb_img[..., 1] > 0.8) & (rgb_img[..., 0] < 0.2)).float().mean(0)
    assert red[1] > 40 and abs(red[0] - 32) < 4  # right of centre
    assert green[0] < 24 and abs(green[1] - 32) < 4  # above centre (smaller row)


def test_empty_space_skipping_and_chunking_do_not_change_the_image(sphere_volume):
    c2w = torch.tensor(look_at_opengl(np.array([0.5, -1.5, 0.9]), np.full(3, 0.5)), dtype=torch.float32)
    a = render_view(sphere_volume, c2w, 60, 60, 24, 24, 48, 48, chunk=100000, segment=512, min_transmittance=0)
    b = render_view(sphere_volume, c2w, 60, 60, 24, 24, 48, 48, chunk=333, segment=7)
    torch.testing.assert_close(a["rgb"], b["rgb"], atol=2e-4, rtol=0)
    assert int(b["samples"]) < 0.2 * 48 * 48 * 200  # far fewer lookups than a dense march


def test_camera_rigs():
    poses = orbit_poses(12, np.zeros(3), 2.0, seed=1)
    assert poses.shape == (12, 3, 4)
    np.testing.assert_allclose(np.linalg.norm(poses[:, :, 3], axis=-1), 2.0)
    # every camera looks at the centre: -z axis points from eye to target
    np.testing.assert_allclose(-poses[:, :, 2], -poses[:, :, 3] / 2.0, atol=1e-9)
    box = np.array([[0, 0, 0], [5.0, 4.0, 2.8]])
    rooms = room_poses(10, box, seed=0, is_free=lambda eye: eye[0] > 1.0)
    assert (rooms[:, :, 3] > box[0]).all() and (rooms[:, :, 3] < box[1]).all()
    assert (rooms[:, 0, 3] > 1.0).all()
