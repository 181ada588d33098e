"""Empty-space skipping: packed compositing, the occupancy grid, and the fast path against the reference path."""

from __future__ import annotations

import math

import pytest
import torch

from tnerf_ns.models.occupancy_renderer import OccupancyGrid, composite_packed, render_occupied


def sphere_field(points: torch.Tensor, directions=None):
    """Density 40 inside a sphere of radius 0.3 at (0.2, 0, 0), colour from the position; zero elsewhere."""
    inside = ((points - torch.tensor([0.2, 0.0, 0.0])).norm(dim=-1, keepdim=True) < 0.3).float()
    return 40.0 * inside, (points + 1) / 2


def dense_reference(origins, directions, step, t_max=3.5):
    """Every step along every ray, composited with the textbook formulas (no skipping, no early stop)."""
    t = (torch.arange(int(t_max / step)) + 0.5) * step
    pts = origins[:, None] + t[None, :, None] * directions[:, None]
    density, rgb = sphere_field(pts.reshape(-1, 3))
    density = density.reshape(len(origins), -1)
    inside_box = (pts.abs() <= 1).all(-1)
    tau = density * step * inside_box
    trans = torch.exp(-torch.cumsum(tau, 1) + tau)
    w = trans * (1 - torch.exp(-tau))
    return (w[..., None] * rgb.reshape(*w.shape, 3)).sum(1), w.sum(1), (w * t).sum(1)


def test_packed_compositing_equals_dense_compositing():
    torch.manual_seed(0)
    counts = torch.tensor([3, 0, 5, 1])
    rays = torch.repeat_interleave(torch.arange(4), counts)
    density, rgb = torch.rand(len(rays)) * 5, torch.rand(len(rays), 3)
    t = torch.cat([torch.sort(torch.rand(int(c))).values for c in counts])
    out = composite_packed(rays, t, torch.full_like(t, 0.1), density, rgb, 4, torch.zeros(4))
    for r in range(4):
        sel = rays == r
        tau = density[sel] * 0.1
        w = torch.exp(-(torch.cumsum(tau, 0) - tau)) * (1 - torch.exp(-tau))
        torch.testing.assert_close(out["rgb"][r], (w[:, None] * rgb[sel]).sum(0))
        torch.testing.assert_close(out["accumulation"][r], w.sum())
        torch.testing.assert_close(out["log_transmittance"][r], -tau.sum())
    # carried-in transmittance scales a ray's contribution
    half = composite_packed(rays, t, torch.full_like(t, 0.1), density, rgb, 4, torch.full((4,), math.log(0.5)))
    torch.testing.assert_close(half["rgb"], 0.5 * out["rgb"])


def test_occupancy_grid_covers_the_density_and_little_else():
    grid = OccupancyGrid.from_density(lambda p: sphere_field(p)[0], resolution=32, threshold=0.01)
    inside = torch.rand(2000, 3) * 2 - 1
    inside = inside[(inside - torch.tensor([0.2, 0.0, 0.0])).norm(dim=-1) < 0.3]
    assert grid.lookup(inside).all()  # conservative: no visible matter is skipped
    assert grid.fraction < 0.05  # the sphere is 1.4 % of the box; dilation adds a margin
    assert (grid.box_min > -1).all() and (grid.box_max < 1).all()
    empty = OccupancyGrid.from_density(lambda p: torch.zeros(len(p), 1), resolution=8)
    out = render_occupied(empty, sphere_field, torch.tensor([[0.0, 0, 3]]), torch.tensor([[0.0, 0, -1]]), step=0.01)
    assert float(out["accumulation"][0]) == 0.0 and int(out["samples"]) == 0


def test_fast_path_matches_dense_marching_with_far_fewer_samples():
    torch.manual_seed(1)
    n = 400
    origins = torch.nn.functional.normalize(torch.randn(n, 3), dim=-1) * 2.5
    targets = torch.rand(n, 3) * 0.8 - 0.4
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)
    grid = OccupancyGrid.from_density(lambda p: sphere_field(p)[0], resolution=32)
    step = 1 / 128
    fast = render_occupied(grid, sphere_field, origins, directions, step=step, min_transmittance=0.0)
    rgb, acc, depth = dense_reference(origins, directions, step)
    assert float(acc.max()) > 0.9  # some rays hit the sphere
    # the fast path starts its steps at the occupied box, so samples sit at other places along the ray than the dense
    # reference's: agreement up to the discretisation of the sphere's boundary
    assert float((fast["accumulation"] - acc).abs().mean()) < 0.02
    assert float((fast["rgb"] - rgb).abs().mean()) < 0.02
    assert int(fast["samples"]) < 0.15 * n * int(3.5 / step)  # about 54 field evaluations per ray instead of 448


@pytest.mark.slow
def test_model_fast_path_matches_the_reference_path(trained):
    from nerfstudio.utils.eval_utils import eval_setup

    from tnerf_ns.report import psnr, target_rgb

    _, pipeline, _, _ = eval_setup(trained, test_mode="test")
    model = pipeline.model
    dataset = pipeline.datamanager.eval_dataset
    scores = {}
    for sampler in ("hierarchical", "occupancy"):
        model.config.eval_sampler = sampler
        values = []
        for i in range(len(dataset)):
            out = model.get_outputs_for_camera(dataset.cameras[i : i + 1].to(pipeline.device))
            values.append(psnr(out["rgb"].cpu(), target_rgb(pipeline, dataset.get_image_float32(i))))
            assert out["rgb"].shape[-1] == 3 and out["depth"].shape[-1] == 1
        scores[sampler] = sum(values) / len(values)
    assert abs(scores["occupancy"] - scores["hierarchical"]) < 0.5, scores


def test_exporters_render_on_the_same_path_as_ns_eval(trained):
    """ns-export calls get_outputs_for_camera_ray_bundle: the same image as get_outputs_for_camera (the occupancy
    path), and depth set to far where the ray sees little."""
    from nerfstudio.utils.eval_utils import eval_setup

    from tnerf_ns.models.tnerf_model import FAR_DEPTH

    _, pipeline, _, _ = eval_setup(trained, test_mode="test")
    model = pipeline.model
    camera = pipeline.datamanager.eval_dataset.cameras[0:1].to(pipeline.device)
    assert model.config.eval_sampler == "occupancy"
    reference = model.get_outputs_for_camera(camera)
    exported = model.get_outputs_for_camera_ray_bundle(camera.generate_rays(camera_indices=0, keep_shape=True))
    assert torch.equal(exported["rgb"], reference["rgb"])
    seen = reference["accumulation"] > 0.5
    assert torch.equal(exported["depth"][seen], reference["depth"][seen])
    assert (exported["depth"][~seen] == FAR_DEPTH).all()
