"""VGGT backbone: a checkpoint-compatible re-implementation, its configs, and loading."""

from tnerf_ns.backbone.config import VGGT_CONFIGS, VGGTConfig, get_vggt_config
from tnerf_ns.backbone.loading import DEFAULT_REPO, VGGTLoadError, build_vggt, load_vggt
from tnerf_ns.backbone.vggt import VGGT

__all__ = [
    "DEFAULT_REPO",
    "VGGT",
    "VGGTConfig",
    "VGGTLoadError",
    "VGGT_CONFIGS",
    "build_vggt",
    "get_vggt_config",
    "load_vggt",
]
