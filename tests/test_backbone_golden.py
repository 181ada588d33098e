"""Numerical equivalence with the official implementation on the small golden configuration."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tnerf_ns.backbone import load_vggt

THRESHOLD = 2e-5  # max|ours - ref| / max|ref|, from the fixture's README


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@pytest.fixture(scope="module")
def golden(golden_dir):
    model = load_vggt(golden_dir / "weights.safetensors", "vggt-small")
    return model, load_file(str(golden_dir / "inputs_and_outputs.safetensors"))


@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_every_golden_tensor_matches(golden, case):
    model, ref = golden
    images = ref[f"{case}/images"]
    _, _, _, height, width = images.shape
    grid = (height // 14, width // 14)
    with torch.no_grad():
        patch_tokens = model.embed_patches(images)
        out = model(images)
        ours = {
            "dino_pos_embed": model.aggregator.patch_embed.resized_pos_embed(*grid)[0],
            "patch_tokens": patch_tokens,
            "tokens_in": model.aggregator.tokens_in(patch_tokens),
            "pose_enc": out["pose_enc"],
            "depth": out["depth"],
            "depth_conf": out["depth_conf"],
            "world_points": out["world_points"],
            "world_points_conf": out["world_points_conf"],
        }
        ours.update({f"aggregated_layer_{i}": t for i, t in enumerate(out["aggregated"])})
        ours.update({f"pose_enc_iter_{k}": t for k, t in enumerate(out["pose_enc_list"])})
    positions = model.aggregator.rope_positions(*grid, device=torch.device("cpu"))
    assert torch.equal(positions, ref[f"{case}/rope_positions"])
    errors = {name: rel_err(t, ref[f"{case}/{name}"]) for name, t in ours.items()}
    in_file = {k.split("/", 1)[1] for k in ref if k.startswith(f"{case}/")}
    assert set(errors) == in_file - {"images", "rope_positions"}  # every reference output is checked
    worst = max(errors, key=errors.get)
    assert errors[worst] < THRESHOLD, f"case {case}: {worst} off by {errors[worst]:.2e}; all: {errors}"
    assert out["images"] is images


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
    assert rel_err(layers[-1].cpu(), ref["a/aggregated_layer_3"]) < 1e-4
    model.cpu()
