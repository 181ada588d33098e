"""What every predicted field shares: a per-scene prediction (tri-plane, or the weights of an MLP) is an input of each
call, queries are in the canonical box, and nerfstudio's ray samples are mapped into it."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.cameras.rays import RaySamples
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.fields.base_field import Field
from torch import Tensor

from tnerf_ns.geometry import CanonicalBox


class SceneConditionedField(Field):
    """A field whose scene comes from a prediction given at call time; subclasses implement :meth:`decode`."""

    def decode(
        self, prediction: Tensor, points: Float[Tensor, "n 3"], directions: Optional[Tensor] = None
    ) -> Tuple[Float[Tensor, "n 1"], Float[Tensor, "n 3"]]:
        """Density (per canonical unit) and colour at canonical points of the predicted scene."""
        raise NotImplementedError

    def encode_directions(self, directions: Float[Tensor, "*n 3"]) -> Float[Tensor, "*n k"]:
        """Real spherical harmonics of the unit view directions (nerfstudio's torch SH takes unit vectors; only the
        tcnn encoding wants them mapped to [0, 1])."""
        return self.direction_encoding(F.normalize(directions, dim=-1))

    # The plain nerfstudio Field entry points cannot know which scene's prediction to use.
    def get_density(self, ray_samples: RaySamples) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} needs the scene's prediction: use get_outputs_with_planes")

    def get_outputs(self, ray_samples: RaySamples, density_embedding: Optional[Tensor] = None) -> Dict:
        raise NotImplementedError(f"{type(self).__name__} needs the scene's prediction: use get_outputs_with_planes")

    def get_outputs_with_planes(
        self, ray_samples: RaySamples, planes: Tensor, box: CanonicalBox
    ) -> Dict[FieldHeadNames, Tensor]:
        """Density **per dataset unit** (what nerfstudio integrates over the samples' dataset-unit steps) and colour
        for ray samples in dataset coordinates; ``box`` maps them into the canonical box. ``planes`` is the scene's
        prediction (the name is kept from the tri-plane, the first representation)."""
        positions = box.to_canonical(ray_samples.frustums.get_positions())
        shape = positions.shape[:-1]
        directions = box.directions_to_canonical(ray_samples.frustums.directions.reshape(-1, 3))
        # samples outside the canonical box carry nothing (the prediction only covers the box); clamping keeps the
        # MLP's inputs bounded for them
        inside = (positions.abs() <= 1.0 + 1e-4).all(-1, keepdim=True).reshape(-1, 1)
        density, rgb = self.decode(planes, positions.reshape(-1, 3).clamp(-1.1, 1.1), directions)
        density = density * inside / box.half_extent  # per canonical unit -> per dataset unit
        return {FieldHeadNames.DENSITY: density.reshape(*shape, 1), FieldHeadNames.RGB: rgb.reshape(*shape, 3)}
