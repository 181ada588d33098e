"""The density activation stays finite: a huge logit on a ray's tiny, rounding-negative spacing must not make the
transmittance infinite (what stopped a training at step 2714)."""

from __future__ import annotations

import torch
from nerfstudio.cameras.rays import Frustums, RaySamples

from tnerf_ns.fields.density_activation import MAX_LOG_DENSITY, density_from_logits


def _samples(starts: torch.Tensor, ends: torch.Tensor) -> RaySamples:
    n = starts.shape[0]
    zeros = torch.zeros(1, n, 3)
    frustums = Frustums(origins=zeros, directions=zeros + torch.tensor([0.0, 0.0, 1.0]), starts=starts[None, :, None],
                        ends=ends[None, :, None], pixel_area=torch.ones(1, n, 1))  # fmt: skip
    return RaySamples(frustums=frustums, deltas=(ends - starts)[None, :, None])


def test_huge_logits_give_finite_density_and_weights():
    logits = torch.tensor([[0.0], [14.0], [100.0], [1e4]])
    density = density_from_logits(logits)
    assert torch.isfinite(density).all()
    assert density[2, 0] == density[3, 0] == torch.exp(torch.tensor(MAX_LOG_DENSITY))
    torch.testing.assert_close(density[:2], torch.exp(logits[:2]))
    # a segment whose spacing came out a hair negative, then an opaque sample
    starts = torch.tensor([1e-7, 0.99e-7, 2e-7, 3e-7])
    ends = torch.tensor([0.99e-7, 2e-7, 3e-7, 4e-7])
    weights = _samples(starts, ends).get_weights(density_from_logits(torch.full((1, 4, 1), 100.0)))
    assert torch.isfinite(weights).all() and weights.sum() <= 1.01
    raw = _samples(starts, ends).get_weights(torch.exp(torch.full((1, 4, 1), 100.0)))  # the uncapped activation
    assert raw.abs().max() > 1e30  # +-inf, which get_weights' nan_to_num turns into the largest floats


def test_gradient_flows_below_the_cap_only():
    logits = torch.tensor([1.0, 20.0], requires_grad=True)
    density_from_logits(logits).sum().backward()
    assert logits.grad[0] > 0 and logits.grad[1] == 0
