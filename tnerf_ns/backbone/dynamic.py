"""Dynamic VGGT: interpolate patch tokens between two time steps, then run the trunk and heads as usual.

Two groups of photos (t0 and t1, same cameras in the same order) are embedded once; for any time t in [0, 1] the
patch tokens of each frame are interpolated right after the DINOv2 patch embedder, before the alternating-attention
blocks:

* ``lerp``: ``(1 - t) * tokens0 + t * tokens1``;
* ``flow``: every t0 patch finds its most similar (cosine) t1 patch within a ``radius`` neighbourhood; feature and
  2-D position are interpolated to t; features are splatted bilinearly onto the patch grid with a weight grid and
  normalised; cells that receive nothing take the t0 token before mid-interval and the t1 token after;
* ``nearest`` (baseline): ``tokens0`` when ``t < 0.5``, else ``tokens1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tnerf_ns.backbone.vggt import VGGT
from tnerf_ns.splatting import bilinear_splat

InterpolationMode = Literal["lerp", "flow", "nearest"]
INTERPOLATION_MODES = ("lerp", "flow", "nearest")


def match_patches(
    tokens0: Float[Tensor, "s n c"],
    tokens1: Float[Tensor, "s n c"],
    grid_hw: Tuple[int, int],
    radius: int,
    frames_per_chunk: int = 8,
) -> Int[Tensor, "s n"]:
    """For every t0 patch, the index of the t1 patch of the same frame with the highest cosine similarity among
    ``|dr| <= radius, |dc| <= radius`` (clipped at the border; ties go to the first in row-major window order).

    Memory stays at one ``[n, n]`` similarity matrix per frame of a chunk.
    """
    h, w = grid_hw
    s, n, _ = tokens0.shape
    if n != h * w:
        raise ValueError(f"patch grid {grid_hw} does not match {n} tokens")
    device = tokens0.device
    rows = torch.arange(h, device=device).repeat_interleave(w)
    cols = torch.arange(w, device=device).repeat(h)
    offsets = torch.arange(-radius, radius + 1, device=device)
    dr, dc = torch.meshgrid(offsets, offsets, indexing="ij")
    cand_r = rows[:, None] + dr.reshape(1, -1)  # [n, k]
    cand_c = cols[:, None] + dc.reshape(1, -1)
    valid = (cand_r >= 0) & (cand_r < h) & (cand_c >= 0) & (cand_c < w)
    cand = cand_r.clamp(0, h - 1) * w + cand_c.clamp(0, w - 1)  # [n, k]
    a = torch.nn.functional.normalize(tokens0.float(), dim=-1)
    b = torch.nn.functional.normalize(tokens1.float(), dim=-1)
    best = []
    for start in range(0, s, frames_per_chunk):
        sim = a[start : start + frames_per_chunk] @ b[start : start + frames_per_chunk].transpose(1, 2)  # [f, n, n]
        window = torch.gather(sim, 2, cand.expand(sim.shape[0], -1, -1))  # [f, n, k]
        window = window.masked_fill(~valid, float("-inf"))
        best.append(torch.gather(cand.expand(sim.shape[0], -1, -1), 2, window.argmax(-1, keepdim=True))[..., 0])
    return torch.cat(best)


def flow_interpolate(
    values0: Float[Tensor, "s n c"],
    values1: Float[Tensor, "s n c"],
    match: Int[Tensor, "s n"],
    t: float,
    grid_hw: Tuple[int, int],
) -> Float[Tensor, "s n c"]:
    """Move every t0 patch towards its match by t, splat its interpolated value, fill holes from the nearer end."""
    h, w = grid_hw
    s, n, c = values0.shape
    device = values0.device
    dtype = values0.dtype
    values0, values1 = values0.float(), values1.float()  # splat sums in fp32 even under bf16 autocast
    pos0 = torch.stack([torch.arange(n, device=device) % w, torch.arange(n, device=device) // w], -1).float()
    pos1 = torch.stack([match % w, match // w], -1).float()  # [s, n, 2] (column, row)
    coords = (1 - t) * pos0 + t * pos1
    feats = (1 - t) * values0 + t * torch.gather(values1, 1, match[..., None].expand(-1, -1, c))
    acc, wsum = bilinear_splat(coords, feats, torch.ones(s, n, device=device, dtype=feats.dtype), (h, w))
    acc = acc.reshape(s, c, n).transpose(1, 2)
    wsum = wsum.reshape(s, n, 1)
    fill = values0 if t < 0.5 else values1
    return torch.where(wsum > 0, acc / wsum.clamp_min(1e-12), fill).to(dtype)


def interpolate_tokens(
    tokens0: Float[Tensor, "s n c"],
    tokens1: Float[Tensor, "s n c"],
    t: float,
    grid_hw: Tuple[int, int],
    mode: InterpolationMode = "flow",
    radius: int = 2,
) -> Float[Tensor, "s n c"]:
    """Patch tokens of the same frames at t0 and t1 (row-major over the ``grid_hw`` patch grid) -> tokens at t."""
    if tokens0.shape != tokens1.shape:
        raise ValueError(
            f"t0 and t1 tokens differ in shape {tuple(tokens0.shape)} vs {tuple(tokens1.shape)}: the two groups of "
            "photos must have the same cameras, in the same order, at the same size"
        )
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"time {t} is outside [0, 1]")
    if mode == "lerp":
        return (1 - t) * tokens0 + t * tokens1
    if mode == "nearest":
        return tokens0 if t < 0.5 else tokens1
    if mode == "flow":
        match = match_patches(tokens0, tokens1, grid_hw, radius)
        return flow_interpolate(tokens0, tokens1, match, t, grid_hw)
    raise ValueError(f"unknown interpolation mode {mode!r}; choose one of {INTERPOLATION_MODES}")


@dataclass
class TokenPair:
    """Patch tokens of both time steps (embedded once per sequence) and, for flow, their patch matches."""

    tokens0: Tensor
    tokens1: Tensor
    grid_hw: Tuple[int, int]
    image_hw: Tuple[int, int]
    match: Optional[Tensor] = None


class DynamicVGGT:
    """VGGT with patch-token interpolation between two time steps.

    Args:
        vggt: the (frozen or trainable) VGGT.
        mode: interpolation scheme, ``lerp``, ``flow`` or ``nearest``.
        radius: neighbourhood radius (patches) of the flow matching.
    """

    def __init__(self, vggt: VGGT, mode: InterpolationMode = "flow", radius: int = 2) -> None:
        if mode not in INTERPOLATION_MODES:
            raise ValueError(f"unknown interpolation mode {mode!r}; choose one of {INTERPOLATION_MODES}")
        self.vggt, self.mode, self.radius = vggt, mode, radius

    def embed_pair(self, images_t0: Tensor, images_t1: Tensor) -> TokenPair:
        """Embed both groups of photos ([S, 3, H, W] or [B, S, 3, H, W]) once."""
        if images_t0.shape != images_t1.shape:
            raise ValueError(
                f"t0 and t1 photo groups differ: {tuple(images_t0.shape)} vs {tuple(images_t1.shape)} (same cameras, "
                "same order, same size expected)"
            )
        both = torch.cat([self.vggt.as_batch(images_t0), self.vggt.as_batch(images_t1)], dim=0)
        tokens = self.vggt.embed_patches(both)
        b = tokens.shape[0] // 2
        hw = tuple(images_t0.shape[-2:])
        pair = TokenPair(tokens[:b], tokens[b:], self.vggt.patch_grid(hw), hw)
        if self.mode == "flow":
            pair.match = torch.stack(
                [match_patches(pair.tokens0[i], pair.tokens1[i], pair.grid_hw, self.radius) for i in range(b)]
            )
        return pair

    def tokens_at(self, pair: TokenPair, t: float) -> Tensor:
        """Interpolated patch tokens ``[B, S, n, C]`` at time t."""
        if self.mode == "flow":
            return torch.stack(
                [
                    flow_interpolate(pair.tokens0[i], pair.tokens1[i], pair.match[i], t, pair.grid_hw)
                    for i in range(pair.tokens0.shape[0])
                ]
            )
        return torch.stack(
            [
                interpolate_tokens(pair.tokens0[i], pair.tokens1[i], t, pair.grid_hw, self.mode, self.radius)
                for i in range(pair.tokens0.shape[0])
            ]
        )

    def forward_at(self, pair: TokenPair, t: float, **kwargs) -> Dict[str, object]:
        """VGGT outputs at time t (kwargs go to :meth:`VGGT.forward_from_patch_tokens`)."""
        return self.vggt.forward_from_patch_tokens(self.tokens_at(pair, t), pair.image_hw, **kwargs)

    def sample_sequence(
        self, images_t0: Tensor, images_t1: Tensor, times: Sequence[float], **kwargs
    ) -> List[Dict[str, object]]:
        """Outputs for a list of times; the t0/t1 patch tokens are computed once for the whole sequence."""
        pair = self.embed_pair(images_t0, images_t1)
        return [self.forward_at(pair, float(t), **kwargs) for t in times]
