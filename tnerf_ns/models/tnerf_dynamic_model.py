"""``tnerf-dynamic``: the ``tnerf`` model with the dynamic encoder, a tri-plane for any time between two groups of
photos (t0 and t1, same cameras), by VGGT patch-token interpolation (see :mod:`tnerf_ns.encoding.dynamic_encoder`).

Time comes from the training batch, from ``Cameras.times`` (dataset views, the viewer's time slider, camera paths with
``render_time``), and otherwise falls back to ``default_time``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Type

from tnerf_ns.encoding import DynamicSceneEncoder
from tnerf_ns.encoding.hyper_encoder import HyperDynamicSceneEncoder
from tnerf_ns.geometry import CanonicalBox
from tnerf_ns.models.tnerf_model import TNeRFModel, TNeRFModelConfig

TNeRFDynamicModel = TNeRFModel
"""The dynamic method is the same model (configs written before 0.2 name this class)."""


@dataclass
class TNeRFDynamicModelConfig(TNeRFModelConfig):
    """T-NeRF between two time steps, by patch-token interpolation."""

    _target: Type = field(default_factory=lambda: TNeRFModel)
    interpolation_mode: Literal["flow", "lerp", "nearest", "random"] = "flow"
    """How VGGT's patch tokens are interpolated between t0 and t1; ``random`` trains with a mode drawn per step (one
    checkpoint for every mode; evaluation picks one, rendering uses flow)."""
    flow_radius: int = 2
    """Neighbourhood radius (in patches) of the flow mode's patch matching."""
    default_time: float = 0.0
    """Time used when a camera carries none (camera paths without render_time, interpolated paths)."""

    def make_encoder(self, box: CanonicalBox) -> DynamicSceneEncoder:
        if self.representation != "triplane":  # Plan A: the interpolated tokens feed the hyper-network
            return HyperDynamicSceneEncoder(self, box)
        return DynamicSceneEncoder(self, box)
