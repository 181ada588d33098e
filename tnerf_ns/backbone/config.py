"""Configuration of the VGGT backbone: every size of the architecture is a field.

The defaults are VGGT-1B (``facebook/VGGT-1B``). ``vggt-small`` keeps every mechanism and changes only the sizes; it
is the configuration of the numerical-equivalence fixture and the one used by tests, CPU demos and offline machines.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union


@dataclass(frozen=True)
class VGGTConfig:
    """Sizes and switches of a VGGT model (VGGT-1B by default)."""

    name: str = "vggt-1b"
    """Name of the preset this config was made from (informational)."""
    img_size: int = 518
    """Image size the patch embedder's positional table was trained for (table grid = img_size // patch_size)."""
    patch_size: int = 14
    """Patch size of the DINOv2 patch embedder; input height and width must be multiples of it."""
    embed_dim: int = 1024
    """Token width C of the patch embedder and the alternating-attention trunk (heads receive 2C)."""

    patch_embed_depth: int = 24
    """Number of DINOv2 blocks in the patch embedder."""
    patch_embed_num_heads: int = 16
    """Attention heads of the DINOv2 blocks."""
    patch_embed_mlp_ratio: float = 4.0
    """MLP hidden width of the DINOv2 blocks, relative to C."""
    patch_embed_num_registers: int = 4
    """DINOv2 register tokens (discarded after patch embedding)."""
    patch_embed_layerscale_init: float = 1.0
    """LayerScale initial value of the DINOv2 blocks."""

    depth: int = 24
    """Number of frame blocks (= number of global blocks) of the alternating-attention trunk."""
    num_heads: int = 16
    """Attention heads of the trunk blocks; head_dim must be divisible by 4 for the 2-D RoPE."""
    mlp_ratio: float = 4.0
    """MLP hidden width of the trunk blocks, relative to C."""
    num_register_tokens: int = 4
    """Register tokens per frame in the aggregator (after the camera token)."""
    layerscale_init: float = 0.01
    """LayerScale initial value of the trunk and camera-head blocks."""
    rope_base: float = 100.0
    """Frequency base of the 2-D rotary position embedding."""

    camera_trunk_depth: int = 4
    """Transformer blocks in the camera head's trunk."""
    camera_num_heads: int = 16
    """Attention heads of the camera head's trunk (width 2C)."""
    camera_iterations: int = 4
    """Iterative refinement steps of the camera head."""

    dpt_features: int = 256
    """Fusion width of the DPT heads."""
    dpt_out_channels: Tuple[int, int, int, int] = (256, 512, 1024, 1024)
    """Channels of the four DPT projections."""
    dpt_layer_idx: Optional[Tuple[int, int, int, int]] = None
    """Aggregator layers read by the DPT heads; None derives (d/6, d/2-1, 3d/4-1, d-1) from ``depth``."""
    dpt_head_features_2: int = 32
    """Hidden width of the DPT output convolution."""

    enable_camera: bool = True
    """Build the camera head."""
    enable_depth: bool = True
    """Build the depth head."""
    enable_point: bool = True
    """Build the point head."""

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads or (self.embed_dim // self.num_heads) % 4:
            raise ValueError(
                f"VGGTConfig {self.name!r}: embed_dim {self.embed_dim} / num_heads {self.num_heads} must give a head "
                "dim divisible by 4 (2-D RoPE splits each head into y and x halves of rotate-half pairs)"
            )
        if self.embed_dim % self.patch_embed_num_heads:
            raise ValueError(f"VGGTConfig {self.name!r}: embed_dim must be divisible by patch_embed_num_heads")
        if (2 * self.embed_dim) % self.camera_num_heads:
            raise ValueError(f"VGGTConfig {self.name!r}: 2*embed_dim must be divisible by camera_num_heads")
        if self.img_size % self.patch_size:
            raise ValueError(f"VGGTConfig {self.name!r}: img_size must be a multiple of patch_size")
        idx = self.intermediate_layer_idx
        if len(idx) != 4 or any(not 0 <= i < self.depth for i in idx):
            raise ValueError(
                f"VGGTConfig {self.name!r}: dpt_layer_idx {idx} must be 4 indices below depth {self.depth}"
            )

    @property
    def head_dim_in(self) -> int:
        """Width of the aggregated tokens the heads read (frame and global outputs concatenated)."""
        return 2 * self.embed_dim

    @property
    def intermediate_layer_idx(self) -> Tuple[int, int, int, int]:
        """Aggregator layers the DPT heads read."""
        if self.dpt_layer_idx is not None:
            return tuple(self.dpt_layer_idx)  # type: ignore[return-value]
        d = self.depth
        return (d // 6, d // 2 - 1, 3 * d // 4 - 1, d - 1)

    @property
    def layers_needed(self) -> Tuple[int, ...]:
        """Aggregator layers that the enabled heads read; the others need not be kept in memory."""
        needed = set()
        if self.enable_depth or self.enable_point:
            needed.update(self.intermediate_layer_idx)
        if self.enable_camera:
            needed.add(self.depth - 1)
        return tuple(sorted(needed))

    def replace(self, **changes) -> "VGGTConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict:
        """Plain-JSON form (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


VGGT_CONFIGS: Dict[str, VGGTConfig] = {
    "vggt-1b": VGGTConfig(),
    # Same module structure, a few million parameters: the configuration of reference/vggt_golden.
    "vggt-small": VGGTConfig(
        name="vggt-small",
        img_size=70,
        embed_dim=128,
        patch_embed_depth=2,
        patch_embed_num_heads=4,
        depth=4,
        num_heads=4,
        camera_trunk_depth=1,
        camera_num_heads=4,
        dpt_features=32,
        dpt_out_channels=(32, 64, 128, 128),
    ),
}


def get_vggt_config(config: Union[str, VGGTConfig]) -> VGGTConfig:
    """Resolve a preset name (``"vggt-1b"``, ``"vggt-small"``) or pass a config object through."""
    if isinstance(config, VGGTConfig):
        return config
    if config not in VGGT_CONFIGS:
        raise ValueError(f"Unknown VGGT config {config!r}; choose one of {sorted(VGGT_CONFIGS)} or pass a VGGTConfig")
    return VGGT_CONFIGS[config]
