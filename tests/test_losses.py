"""The loss functions on hand-made tensors with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from tnerf_ns import losses


def test_photometric_loss_is_the_mean_squared_error():
    pred = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert float(losses.photometric_loss(pred, torch.full((2, 3), 0.5))) == pytest.approx(0.25)


def test_depth_loss_ignores_unknown_depth():
    pred = torch.tensor([1.0, 2.0, 5.0])
    assert float(losses.depth_loss(pred, torch.tensor([1.5, 0.0, 4.0]))) == pytest.approx(0.75)  # (0.5 + 1) / 2
    assert losses.depth_loss(pred, torch.zeros(3)) is None


def test_point_opacity_loss_compares_step_opacities():
    step = 0.1
    pred, target = torch.tensor([0.0, 10.0]), torch.tensor([10.0, 10.0])
    expected = (1 - math.exp(-1.0)) ** 2 / 2  # first point transparent instead of opacity 1 - e^-1; second exact
    assert float(losses.point_opacity_loss(pred, target, step)) == pytest.approx(expected)
    assert float(losses.point_opacity_loss(target, target, step)) == 0.0


def test_point_colour_loss_only_at_occupied_points():
    pred = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert float(losses.point_colour_loss(pred, target, torch.tensor([True, False]))) == pytest.approx(1.0)
    assert float(losses.point_colour_loss(pred, target, torch.tensor([False, True]))) == pytest.approx(3.0)
    assert losses.point_colour_loss(pred, target, torch.tensor([False, False])) is None


def test_source_weight_loss_is_cross_entropy_on_valid_pixels():
    logit = torch.tensor([[[0.0, 100.0]]])
    alpha = torch.tensor([[[1.0, 0.0]]])
    assert float(losses.source_weight_loss(logit, alpha, torch.tensor([[[True, False]]]))) == pytest.approx(math.log(2))
    assert losses.source_weight_loss(logit, alpha, torch.zeros(1, 1, 2, dtype=torch.bool)) is None


def test_source_depth_loss_in_fractions_of_the_ray_inside_the_box():
    # ray enters at t=2, leaves at t=4; ground-truth z-depth 1.5 on a ray with |d_cam| = 2 -> t = 3 -> fraction 0.5
    ones = torch.ones(1, 1, 2)
    fraction = torch.tensor([[[0.75, 0.0]]])
    loss = losses.source_depth_loss(
        fraction, 2 * ones, 4 * ones, 2 * ones, torch.tensor([[[1.5, 0.0]]]), ones.bool(), ones
    )
    assert float(loss) == pytest.approx(0.25)  # the second pixel has no depth
    transparent = losses.source_depth_loss(fraction, 2 * ones, 4 * ones, 2 * ones, 1.5 * ones, ones.bool(), 0 * ones)
    assert transparent is None  # only opaque pixels have a surface to match


def test_triplane_regularisers():
    planes = torch.zeros(3, 1, 4, 4)
    assert float(losses.triplane_l2(planes)) == 0.0 and float(losses.triplane_tv(planes)) == 0.0
    planes[..., 2:] = 1.0  # one vertical edge per plane: columns differ once out of three neighbour pairs
    assert float(losses.triplane_l2(planes)) == pytest.approx(0.5)
    assert float(losses.triplane_tv(planes)) == pytest.approx(1 / 3)
