"""VGGT's aggregator: DINOv2 patch tokens, camera/register tokens, alternating frame and global attention."""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from tnerf_ns.backbone.config import VGGTConfig
from tnerf_ns.backbone.layers import Block, Rope2D
from tnerf_ns.backbone.patch_embed import DinoPatchEmbedder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def expand_special_tokens(token: Float[Tensor, "1 2 k c"], batch: int, frames: int) -> Float[Tensor, "bs k c"]:
    """Slot 0 goes to frame 0 of every sequence, slot 1 to frames 1..S-1."""
    first = token[:, :1].expand(batch, 1, *token.shape[2:])
    rest = token[:, 1:].expand(batch, frames - 1, *token.shape[2:])
    return torch.cat([first, rest], dim=1).reshape(batch * frames, *token.shape[2:])


class Aggregator(nn.Module):
    """Alternating-attention transformer over the frames of a scene.

    The forward pass is split in two so that callers can change the patch tokens in between (the dynamic variant
    interpolates them): :meth:`embed_patches` and :meth:`forward_from_patch_tokens`.
    """

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        c = config.embed_dim
        self.config = config
        self.patch_size = config.patch_size
        self.patch_start_idx = 1 + config.num_register_tokens
        self.patch_embed = DinoPatchEmbedder(
            img_size=config.img_size,
            patch_size=config.patch_size,
            dim=c,
            depth=config.patch_embed_depth,
            num_heads=config.patch_embed_num_heads,
            mlp_ratio=config.patch_embed_mlp_ratio,
            num_registers=config.patch_embed_num_registers,
            layerscale_init=config.patch_embed_layerscale_init,
        )
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, c))
        self.register_token = nn.Parameter(torch.zeros(1, 2, config.num_register_tokens, c))

        def trunk_block() -> Block:
            return Block(c, config.num_heads, config.mlp_ratio, config.layerscale_init, qk_norm=True, norm_eps=1e-5)

        self.frame_blocks = nn.ModuleList(trunk_block() for _ in range(config.depth))
        self.global_blocks = nn.ModuleList(trunk_block() for _ in range(config.depth))
        self.rope = Rope2D(config.rope_base)

    def rope_positions(self, h: int, w: int, device: torch.device) -> Int[Tensor, "p 2"]:
        """(y, x) positions of one frame's tokens: special tokens at (0, 0), patch (r, c) at (r + 1, c + 1)."""
        rows, cols = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        patches = torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=-1) + 1
        special = torch.zeros(self.patch_start_idx, 2, dtype=torch.long, device=device)
        return torch.cat([special, patches], dim=0)

    def embed_patches(self, images: Float[Tensor, "b s 3 H W"]) -> Float[Tensor, "b s n c"]:
        """Normalise images in [0, 1] and run the DINOv2 patch embedder."""
        b, s, _, height, width = images.shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"VGGT input size {height}x{width} is not a multiple of the patch size {self.patch_size}; "
                "resize or crop the images first (see tnerf_ns.backbone.preprocess)"
            )
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
        x = ((images - mean) / std).reshape(b * s, 3, height, width)
        tokens = self.patch_embed(x)
        return tokens.reshape(b, s, tokens.shape[1], tokens.shape[2])

    def tokens_in(self, patch_tokens: Float[Tensor, "b s n c"]) -> Float[Tensor, "b s p c"]:
        """Sequence entering the first frame block: [camera, registers, patch tokens] per frame."""
        b, s, n, c = patch_tokens.shape
        special = torch.cat(
            [expand_special_tokens(self.camera_token, b, s), expand_special_tokens(self.register_token, b, s)], dim=1
        ).to(patch_tokens.dtype)
        return torch.cat([special.reshape(b, s, -1, c), patch_tokens], dim=2)

    def forward_from_patch_tokens(
        self,
        patch_tokens: Float[Tensor, "b s n c"],
        grid_hw: Tuple[int, int],
        layers: Optional[Iterable[int]] = None,
    ) -> List[Optional[Float[Tensor, "b s p 2c"]]]:
        """Run the alternating-attention trunk from given patch tokens.

        Args:
            patch_tokens: patch-embedder output, row-major over the ``grid_hw`` patch grid.
            grid_hw: patch grid (h, w).
            layers: aggregator outputs to keep; others are returned as None so memory stays small. None keeps all.

        Returns:
            One entry per depth index: concat(frame block output, global block output) on channels, or None.
        """
        b, s, n, c = patch_tokens.shape
        if grid_hw[0] * grid_hw[1] != n:
            raise ValueError(f"patch grid {grid_hw} does not match {n} patch tokens")
        keep = set(range(len(self.frame_blocks))) if layers is None else set(layers)
        x = self.tokens_in(patch_tokens)
        p = x.shape[2]
        positions = self.rope_positions(*grid_hw, device=x.device)
        head_dim = c // self.config.num_heads
        rope_frame = self.rope.cos_sin(positions, head_dim, x.dtype)
        rope_global = tuple(t.repeat(s, 1) for t in rope_frame)  # every frame shares the same positions

        outputs: List[Optional[Tensor]] = []
        x = x.reshape(b * s, p, c)
        for frame_block, global_block in zip(self.frame_blocks, self.global_blocks):
            x = frame_block(x, rope_frame)
            frame_out = x
            x = global_block(x.reshape(b, s * p, c), rope_global)
            if len(outputs) in keep:
                outputs.append(torch.cat([frame_out.reshape(b, s, p, c), x.reshape(b, s, p, c)], dim=-1))
            else:
                outputs.append(None)
            x = x.reshape(b * s, p, c)
        return outputs

    def forward(
        self, images: Float[Tensor, "b s 3 H W"], layers: Optional[Iterable[int]] = None
    ) -> Tuple[List[Optional[Tensor]], int]:
        """Images in [0, 1] to the list of aggregated layers and ``patch_start_idx``."""
        grid_hw = (images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size)
        return self.forward_from_patch_tokens(self.embed_patches(images), grid_hw, layers), self.patch_start_idx
