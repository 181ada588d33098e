"""Comparison with the golden VGGT fixture (official implementation's outputs on a small random model).

Used by the golden test (CPU) and by ``scripts/gpu_check.py`` (CUDA, fp32 and bf16), so both check the same tensors.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

from tnerf_ns.backbone.vggt import VGGT

GOLDEN_CASES = ("a", "b", "c")
FP32_TOLERANCE = 2e-5
"""max|ours - ref| / max|ref| allowed in float32 (the fixture's README)."""


def relative_error(ours: Tensor, ref: Tensor) -> float:
    """max|ours - ref| / max|ref|, in float64 on the CPU."""
    ours, ref = ours.detach().double().cpu(), ref.double().cpu()
    return ((ours - ref).abs().max() / ref.abs().max()).item()


@torch.no_grad()
def golden_outputs(model: VGGT, images: Tensor) -> Dict[str, Tensor]:
    """Every float tensor the fixture stores for one case, computed by ``model`` on ``images`` [B, S, 3, H, W]."""
    grid = (images.shape[-2] // model.config.patch_size, images.shape[-1] // model.config.patch_size)
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
    return ours


def golden_errors(model: VGGT, reference: Dict[str, Tensor], case: str) -> Dict[str, float]:
    """Relative error of every stored output of ``case`` (inputs are moved to the model's device)."""
    images = reference[f"{case}/images"].to(model.device)
    ours = golden_outputs(model, images)
    stored = {k.split("/", 1)[1] for k in reference if k.startswith(f"{case}/")} - {"images", "rope_positions"}
    if set(ours) != stored:
        raise KeyError(f"golden case {case}: outputs {sorted(set(ours) ^ stored)} differ from the fixture's")
    return {name: relative_error(t, reference[f"{case}/{name}"]) for name, t in ours.items()}
