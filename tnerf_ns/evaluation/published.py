"""Published figures the captures' results are shown beside (``../shared/reference/published_anchors.md``)."""

from __future__ import annotations

from typing import Dict, Tuple

PUBLISHED_DTU: Dict[str, Tuple[float, float, float]] = {
    # object-masked PSNR at 3 / 6 / 9 input views on the 15 DTU test scans (not scan24), sparse-view protocol
    "pixelNeRF (feed-forward, trained on DTU)": (16.82, 19.11, 20.40),
    "MVSNeRF (feed-forward, trained on DTU)": (18.63, 20.70, 22.40),
    "MuRF (feed-forward, trained on DTU)": (21.31, 23.74, 25.28),
    "RegNeRF (per scene, regularised)": (18.89, 22.20, 24.93),
    "FreeNeRF (per scene, regularised)": (19.92, 23.25, 25.38),
}
"""Method -> object-masked PSNR (dB) at 3 / 6 / 9 input views."""
