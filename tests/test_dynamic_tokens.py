"""Token interpolation between two time steps (lerp / flow / nearest) and DynamicVGGT's token cache."""

from __future__ import annotations

import pytest
import torch

from tnerf_ns.backbone import build_vggt
from tnerf_ns.backbone.dynamic import DynamicVGGT, interpolate_tokens, match_patches


def shifted(tokens: torch.Tensor, grid_hw, dr: int, dc: int) -> torch.Tensor:
    """tokens1[r + dr, c + dc] = tokens0[r, c]; cells uncovered by the shift get fresh random tokens."""
    h, w = grid_hw
    s, _, c = tokens.shape
    grid0 = tokens.reshape(s, h, w, c)
    grid1 = torch.randn_like(grid0)
    grid1[:, max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = grid0[
        :, max(-dr, 0) : h - max(dr, 0), max(-dc, 0) : w - max(dc, 0)
    ]
    return grid1.reshape(s, h * w, c)


@pytest.fixture
def tokens():
    torch.manual_seed(0)
    return torch.randn(3, 8 * 12, 16)


@pytest.mark.parametrize("mode", ["lerp", "flow", "nearest"])
def test_identity_at_t0_and_endpoints(tokens, mode):
    other = torch.randn_like(tokens)
    torch.testing.assert_close(interpolate_tokens(tokens, other, 0.0, (8, 12), mode), tokens)
    if mode != "flow":
        torch.testing.assert_close(interpolate_tokens(tokens, other, 1.0, (8, 12), mode), other)


def test_lerp_and_nearest_rules(tokens):
    other = torch.randn_like(tokens)
    torch.testing.assert_close(interpolate_tokens(tokens, other, 0.3, (8, 12), "lerp"), 0.7 * tokens + 0.3 * other)
    assert torch.equal(interpolate_tokens(tokens, other, 0.49, (8, 12), "nearest"), tokens)
    assert torch.equal(interpolate_tokens(tokens, other, 0.5, (8, 12), "nearest"), other)


def test_flow_recovers_a_known_translation(tokens):
    grid = (8, 12)
    t1 = shifted(tokens, grid, 1, 2)
    match = match_patches(tokens, t1, grid, radius=2)
    rows, cols = torch.arange(96) // 12, torch.arange(96) % 12
    interior = (rows < 7) & (cols < 10)
    assert torch.equal(match[:, interior], ((rows + 1) * 12 + cols + 2)[interior].expand(3, -1))
    # halfway, every interior patch has moved by (0.5, 1): row moves are fractional, columns exact
    out = interpolate_tokens(tokens, t1, 0.5, grid, "flow", radius=2).reshape(3, 8, 12, 16)
    # the cell one column to the right of a patch gets half of it (the other half goes one row further down)
    src = tokens.reshape(3, 8, 12, 16)
    torch.testing.assert_close(out[:, 2, 4], 0.5 * src[:, 1, 3] + 0.5 * src[:, 2, 3], atol=1e-5, rtol=0)


def test_flow_at_t1_lands_on_the_t1_tokens(tokens):
    grid = (8, 12)
    t1 = shifted(tokens, grid, 0, 3)
    out = interpolate_tokens(tokens, t1, 1.0, grid, "flow", radius=3).reshape(3, 8, 12, 16)
    torch.testing.assert_close(out[:, :, 3:9], t1.reshape(3, 8, 12, 16)[:, :, 3:9])


def test_flow_fills_holes_from_the_nearer_end(tokens):
    grid = (8, 12)
    t1 = shifted(tokens, grid, 0, 4)
    early = interpolate_tokens(tokens, t1, 0.25, grid, "flow", radius=4).reshape(3, 8, 12, 16)
    late = interpolate_tokens(tokens, t1, 0.5, grid, "flow", radius=4).reshape(3, 8, 12, 16)
    # at t = 0.25 patches moved one column right: column 0 received nothing -> t0 tokens
    torch.testing.assert_close(early[:, :, 0], tokens.reshape(3, 8, 12, 16)[:, :, 0])
    # at t = 0.5 they moved two columns: columns 0 and 1 are holes -> t1 tokens (second half of the interval)
    torch.testing.assert_close(late[:, :, :2], t1.reshape(3, 8, 12, 16)[:, :, :2])


def test_bad_inputs_are_refused(tokens):
    with pytest.raises(ValueError, match="same cameras"):
        interpolate_tokens(tokens, tokens[:2], 0.5, (8, 12), "lerp")
    with pytest.raises(ValueError, match="outside"):
        interpolate_tokens(tokens, tokens, 1.5, (8, 12), "lerp")
    with pytest.raises(ValueError, match="unknown interpolation mode"):
        interpolate_tokens(tokens, tokens, 0.5, (8, 12), "cubic")


def test_large_grid_memory_stays_bounded():
    """37 x 37 patches, radius 4, many frames: one similarity matrix per chunk of frames."""
    a = torch.randn(24, 37 * 37, 32)
    b = torch.randn(24, 37 * 37, 32)
    out = interpolate_tokens(a, b, 0.5, (37, 37), "flow", radius=4)
    assert out.shape == a.shape and torch.isfinite(out).all()


def test_sequence_embeds_each_time_step_once(monkeypatch):
    vggt = build_vggt("vggt-small")
    calls = {"n": 0}
    original = vggt.embed_patches

    def counting(images):
        calls["n"] += 1
        return original(images)

    monkeypatch.setattr(vggt, "embed_patches", counting)
    dyn = DynamicVGGT(vggt, mode="flow", radius=1)
    images0, images1 = torch.rand(2, 3, 28, 42), torch.rand(2, 3, 28, 42)
    with torch.no_grad():
        outs = dyn.sample_sequence(images0, images1, [0.0, 0.25, 0.5, 1.0], heads=["depth"])
    assert len(outs) == 4 and calls["n"] == 1
    with torch.no_grad():
        direct = vggt(images0[None], heads=["depth"])["depth"]
    torch.testing.assert_close(outs[0]["depth"], direct)  # t = 0 is the plain t0 prediction
    with pytest.raises(ValueError, match="photo groups differ"):
        dyn.embed_pair(images0, images1[:1])
