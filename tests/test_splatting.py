"""Bilinear splatting with a weight grid (shared by tri-plane lifting and dynamic token flow)."""

from __future__ import annotations

import torch

from tnerf_ns.splatting import bilinear_splat


def test_integer_positions_land_on_one_cell():
    coords = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]])
    values = torch.tensor([[[5.0], [7.0]]])
    acc, wsum = bilinear_splat(coords, values, torch.ones(1, 2), (4, 5))
    assert acc.shape == (1, 1, 4, 5) and wsum.shape == (1, 4, 5)
    assert acc[0, 0, 2, 1] == 5 and acc[0, 0, 0, 3] == 7 and wsum.sum() == 2


def test_fractional_position_splits_bilinearly_and_normalises_back():
    coords = torch.tensor([[0.25, 0.5]])
    values = torch.tensor([[2.0, -4.0]])
    acc, wsum = bilinear_splat(coords, values, torch.ones(1), (2, 2))
    expected = torch.tensor([[0.75 * 0.5, 0.25 * 0.5], [0.75 * 0.5, 0.25 * 0.5]])
    torch.testing.assert_close(wsum, expected)
    torch.testing.assert_close(acc / wsum, torch.tensor([2.0, -4.0])[:, None, None].expand(2, 2, 2))


def test_out_of_grid_corners_are_dropped_and_weights_scale():
    coords = torch.tensor([[-0.5, 0.0], [1.5, 1.0]])
    acc, wsum = bilinear_splat(coords, torch.ones(2, 1), torch.tensor([2.0, 1.0]), (2, 2))
    torch.testing.assert_close(wsum, torch.tensor([[1.0, 0.0], [0.0, 0.5]]))


def test_batches_are_independent_and_gradients_flow():
    coords = (torch.rand(3, 50, 2) * 7).requires_grad_()
    values = torch.randn(3, 50, 4, requires_grad=True)
    weights = torch.rand(3, 50, requires_grad=True)
    acc, wsum = bilinear_splat(coords, values, weights, (8, 8))
    for b in range(3):
        a1, w1 = bilinear_splat(coords[b], values[b], weights[b], (8, 8))
        torch.testing.assert_close(acc[b], a1)
        torch.testing.assert_close(wsum[b], w1)
    torch.testing.assert_close(wsum.sum(), weights.sum())  # all corners inside
    (acc.sum() + wsum.pow(2).sum()).backward()
    assert coords.grad.abs().sum() > 0 and values.grad.abs().sum() > 0 and weights.grad.abs().sum() > 0
