"""Transformer building blocks shared by the patch embedder, the alternating-attention trunk and the camera head.

Parameter names (``attn.qkv``, ``ls1.gamma``, ``mlp.fc1`` ...) follow the official checkpoint so that it loads key for
key.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Two linear layers with an exact (erf) GELU in between."""

    def __init__(self, dim: int, hidden: int, out_dim: Optional[int] = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, out_dim or dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Rope2D(nn.Module):
    """2-D rotary embedding: the first half of each head is rotated by the row, the second half by the column.

    Within each half the rotate-half convention is used with inverse frequencies ``base^(-2j/d)``.
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = base

    def cos_sin(
        self, positions: Int[Tensor, "n 2"], head_dim: int, dtype: torch.dtype
    ) -> Tuple[Float[Tensor, "n d"], Float[Tensor, "n d"]]:
        """Cos and sin tables for (y, x) integer positions, laid out to multiply a whole head at once."""
        half = head_dim // 2
        inv_freq = self.base ** -(torch.arange(0, half, 2, device=positions.device, dtype=torch.float32) / half)
        # angles [n, 2, half/2] -> duplicated per rotate-half pair -> [n, head_dim], y block then x block
        angles = positions.to(torch.float32)[:, :, None] * inv_freq
        angles = torch.cat([angles, angles], dim=-1).reshape(positions.shape[0], head_dim)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    @staticmethod
    def rotate(x: Float[Tensor, "*b n d"], cos: Tensor, sin: Tensor) -> Float[Tensor, "*b n d"]:
        """Apply the rotation to a tensor whose last two axes are (token, head channel)."""
        q = x.shape[-1] // 4
        x1, x2, x3, x4 = x.split(q, dim=-1)
        rotated = torch.cat([-x2, x1, -x4, x3], dim=-1)
        return x * cos + rotated * sin


def norm_in_input_dtype(norm: nn.LayerNorm, x: Tensor) -> Tensor:
    """LayerNorm computed in ``x``'s dtype (statistics are accumulated in fp32 by the kernel either way).

    Under bf16 autocast PyTorch would run LayerNorm in fp32: for the per-head QK norms that means casting q and k to
    fp32, normalising, and casting back for attention, which measured as much GPU time as attention itself (VGGT-1B,
    8 views, H200). Full-precision runs are unchanged.
    """
    if x.dtype == torch.float32 or not torch.is_autocast_enabled(x.device.type):
        return norm(x)
    with torch.autocast(x.device.type, enabled=False):
        return F.layer_norm(x, norm.normalized_shape, norm.weight.to(x.dtype), norm.bias.to(x.dtype), norm.eps)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection, optional per-head QK LayerNorm and 2-D RoPE."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        if qk_norm:
            self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps)
            self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps)
        else:
            self.q_norm = self.k_norm = None
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: Float[Tensor, "b n c"], rope: Optional[Tuple[Tensor, Tensor]] = None
    ) -> Float[Tensor, "b n c"]:
        b, n, c = x.shape
        # qkv output layout is [q | k | v], each head-major
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.q_norm is not None:
            q, k = norm_in_input_dtype(self.q_norm, q), norm_in_input_dtype(self.k_norm, k)
        if rope is not None:
            rope = tuple(t.to(q.dtype) for t in rope)
            q, k = Rope2D.rotate(q, *rope), Rope2D.rotate(k, *rope)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        layerscale_init: float = 0.01,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        # QK-norm always uses the PyTorch default eps, whatever the block norms use.
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm, norm_eps=1e-5)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layerscale_init)

    def forward(self, x: Float[Tensor, "b n c"], rope: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))
