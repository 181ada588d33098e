"""Density from a field's logit: the one activation both field types use."""

from __future__ import annotations

from jaxtyping import Float
from nerfstudio.field_components.activations import trunc_exp
from torch import Tensor

MAX_LOG_DENSITY = 15.0
"""Logits are capped here (density 3.3e6 per canonical unit: opaque over 1e-5 of the box). nerfstudio's trunc_exp
bounds only the gradient; an uncapped logit above 88 overflows to inf, and inf times a rounding-negative sample
spacing (rays that miss the box get a 1e-6 long segment) makes the transmittance, hence the loss, infinite: seen at
step 2714 of the shipped head's training on a tabletop scene."""


def density_from_logits(logits: Float[Tensor, "*n 1"]) -> Float[Tensor, "*n 1"]:
    """exp of the logit, capped at :data:`MAX_LOG_DENSITY` (no gradient above the cap: such a sample is opaque)."""
    return trunc_exp(logits.clamp(max=MAX_LOG_DENSITY))
