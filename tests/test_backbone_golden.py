"""Numerical equivalence with the official implementation on the small golden configuration."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tnerf_ns.backbone import load_vggt
from tnerf_ns.backbone.golden import FP32_TOLERANCE, GOLDEN_CASES, golden_errors, relative_error


@pytest.fixture(scope="module")
def golden(golden_dir):
    model = load_vggt(golden_dir / "weights.safetensors", "vggt-small")
    return model, load_file(str(golden_dir / "inputs_and_outputs.safetensors"))


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_every_golden_tensor_matches(golden, case):
    model, ref = golden
    grid = tuple(d // 14 for d in ref[f"{case}/images"].shape[-2:])
    positions = model.aggregator.rope_positions(*grid, device=torch.device("cpu"))
    assert torch.equal(positions, ref[f"{case}/rope_positions"])
    errors = golden_errors(model, ref, case)  # raises if any stored output is not compared
    assert len(errors) == len([k for k in ref if k.startswith(f"{case}/")]) - 2
    worst = max(errors, key=errors.get)
    assert errors[worst] < FP32_TOLERANCE, f"case {case}: {worst} off by {errors[worst]:.2e}; all: {errors}"


def test_golden_comparison_fails_on_a_wrong_model(golden):
    """The comparison itself can fail: a perturbed weight shows up as a large error."""
    model, ref = golden
    weight = model.aggregator.frame_blocks[0].attn.qkv.weight
    saved = weight.clone()
    try:
        weight.mul_(1.01)
        assert max(golden_errors(model, ref, "a").values()) > 100 * FP32_TOLERANCE
    finally:
        weight.copy_(saved)


def test_patch_token_path_equals_full_forward(golden):
    """Running the trunk from the exposed patch tokens is the same computation as the plain forward."""
    model, ref = golden
    images = ref["a/images"]
    with torch.no_grad():
        full = model(images)
        tokens = model.embed_patches(images)
        split = model.forward_from_patch_tokens(tokens, tuple(images.shape[-2:]))
    for key in ("pose_enc", "depth", "world_points"):
        torch.testing.assert_close(split[key], full[key], rtol=0, atol=0)


def test_only_needed_layers_are_kept(golden):
    model, ref = golden
    images = ref["b/images"]
    with torch.no_grad():
        out = model(images, heads=["camera"])
    kept = [i for i, t in enumerate(out["aggregated"]) if t is not None]
    assert kept == [model.config.depth - 1]
    assert "depth" not in out and "pose_enc" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_golden_on_cuda_fp32(golden):
    model, ref = golden
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    images = ref["a/images"].cuda()
    model = model.cuda()
    with torch.no_grad():
        tokens = model.aggregator.embed_patches(images)
        layers = model.aggregator.forward_from_patch_tokens(tokens, (4, 6))
    assert relative_error(layers[-1].cpu(), ref["a/aggregated_layer_3"]) < 1e-4
    model.cpu()
