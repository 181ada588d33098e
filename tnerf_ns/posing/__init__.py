"""Pose-free input: VGGT's predicted cameras turn a folder of photos into a nerfstudio dataset."""

from tnerf_ns.posing.convert import PosingConfig, ensure_transforms, photos_to_transforms

__all__ = ["PosingConfig", "ensure_transforms", "photos_to_transforms"]
