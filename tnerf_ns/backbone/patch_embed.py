"""DINOv2-style ViT with register tokens, used by VGGT as its patch embedder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from tnerf_ns.backbone.layers import Block


class PatchProjection(nn.Module):
    """Non-overlapping patches to tokens (a strided convolution, row-major flattening, no norm)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n p c"]:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoPatchEmbedder(nn.Module):
    """DINOv2 ViT/14 with registers; returns the final-norm patch tokens (CLS and registers dropped)."""

    def __init__(
        self,
        img_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        num_registers: int,
        layerscale_init: float,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.num_registers = num_registers
        self.grid = img_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid**2, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_registers, dim))
        # Unused at inference; kept so that official checkpoints load strictly.
        self.mask_token = nn.Parameter(torch.zeros(1, dim), requires_grad=False)
        self.patch_embed = PatchProjection(patch_size, dim)
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, layerscale_init, qk_norm=False, norm_eps=1e-6) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def resized_pos_embed(self, h: int, w: int) -> Float[Tensor, "1 n c"]:
        """Positional table for an h x w patch grid (antialiased bicubic resize to the exact size, in fp32)."""
        if h * w == self.grid**2 and h == w:
            return self.pos_embed
        table = self.pos_embed.float()
        cls_entry, grid = table[:, :1], table[:, 1:]
        dim = grid.shape[-1]
        grid = grid.reshape(1, self.grid, self.grid, dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, dim)
        return torch.cat([cls_entry, grid], dim=1).to(self.pos_embed.dtype)

    def forward(self, images: Float[Tensor, "n 3 H W"]) -> Float[Tensor, "n p c"]:
        n, _, height, width = images.shape
        h, w = height // self.patch_size, width // self.patch_size
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(n, -1, -1), x], dim=1)
        x = x + self.resized_pos_embed(h, w).to(x.dtype)
        # Registers go right after CLS and carry no positional embedding.
        x = torch.cat([x[:, :1], self.register_tokens.expand(n, -1, -1), x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + self.num_registers :]
