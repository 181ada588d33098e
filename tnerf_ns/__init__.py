"""T-NeRF: feed-forward radiance fields from a frozen VGGT backbone, as a nerfstudio plugin."""

from __future__ import annotations

from tnerf_ns.compat import apply_base_patches

__version__ = "0.1.0"

apply_base_patches()
