"""Tri-plane radiance field decoded by one globally shared tiny MLP.

A query (x, d) bilinearly samples planes xy, xz and yz at the matching coordinate pairs, concatenates the three
feature vectors, adds a positional encoding of x and an encoding of the view direction, and the shared MLP returns
density and colour. The planes are an input (one scene's prediction), the MLP weights are shared by every scene.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.cameras.rays import RaySamples
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.encodings import NeRFEncoding, SHEncoding
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.fields.base_field import Field
from torch import Tensor, nn

from tnerf_ns.geometry import CanonicalBox
from tnerf_ns.triplane import sample_planes, sample_triplane

__all__ = ["TriplaneField", "sample_triplane"]


class TriplaneField(Field):
    """Field over the canonical box whose features come from a tri-plane given at call time.

    Args:
        plane_channels: channels per plane.
        hidden_dim: width of the shared MLP.
        num_layers: layers of the shared MLP trunk.
        position_frequencies: frequencies of the positional encoding of x.
        direction_levels: spherical-harmonics levels of the view-direction encoding (0 disables view dependence).
        density_bias: added to the density pre-activation (negative: start mostly empty).
    """

    def __init__(
        self,
        plane_channels: int = 32,
        hidden_dim: int = 64,
        num_layers: int = 2,
        position_frequencies: int = 4,
        direction_levels: int = 3,
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        self.position_encoding = NeRFEncoding(
            in_dim=3, num_frequencies=position_frequencies, min_freq_exp=0.0,
            max_freq_exp=float(max(position_frequencies - 1, 0)), include_input=True, implementation="torch",
        )  # fmt: skip
        self.direction_encoding = (
            SHEncoding(levels=direction_levels, implementation="torch") if direction_levels else None
        )
        self.plane_dim = 3 * plane_channels
        # The first layers are applied piecewise (tri-plane part, encoding part) instead of on concatenated inputs:
        # the same maths without materialising [n, 3c + pe] copies, which dominate the cost at millions of samples.
        self.trunk_in = nn.Linear(self.plane_dim + self.position_encoding.get_out_dim(), hidden_dim)
        self.trunk_hidden = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers - 1))
        self.density_head = nn.Linear(hidden_dim, 1)
        dir_dim = self.direction_encoding.get_out_dim() if self.direction_encoding is not None else 0
        self.color_in = nn.Linear(hidden_dim + dir_dim, hidden_dim // 2)
        self.color_out = nn.Linear(hidden_dim // 2, 3)
        self.density_bias = density_bias

    def decode(
        self, planes: Float[Tensor, "3 c r r"], points: Float[Tensor, "n 3"], directions: Optional[Tensor] = None
    ) -> Tuple[Float[Tensor, "n 1"], Float[Tensor, "n 3"]]:
        """Density (per canonical unit) and colour at canonical points."""
        feats = sample_planes(planes, points)  # channel-first [3c, n]
        w = self.trunk_in.weight
        h = torch.addmm(self.trunk_in.bias, self.position_encoding(points), w[:, self.plane_dim :].T)
        h = F.relu_(h.add_((w[:, : self.plane_dim] @ feats).T))
        for layer in self.trunk_hidden:
            h = F.relu_(layer(h))
        density = trunc_exp(self.density_head(h) + self.density_bias)
        wc = self.color_in.weight
        c = torch.addmm(self.color_in.bias, h, wc[:, : h.shape[1]].T)
        if self.direction_encoding is not None:
            if directions is None:
                directions = torch.zeros_like(points)
                directions[:, 2] = 1.0
            c = c.addmm_(self.encode_directions(directions), wc[:, h.shape[1] :].T)
        return density, torch.sigmoid(self.color_out(F.relu_(c)))

    def encode_directions(self, directions: Float[Tensor, "n 3"]) -> Float[Tensor, "n k"]:
        """Real spherical harmonics of the unit view directions (nerfstudio's torch SH takes unit vectors; only the
        tcnn encoding wants them mapped to [0, 1])."""
        return self.direction_encoding(F.normalize(directions, dim=-1))

    # The plain nerfstudio Field entry points cannot know which scene's planes to use.
    def get_density(self, ray_samples: RaySamples) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError("TriplaneField needs the scene's planes: use get_outputs_with_planes or decode")

    def get_outputs(self, ray_samples: RaySamples, density_embedding: Optional[Tensor] = None) -> Dict:
        raise NotImplementedError("TriplaneField needs the scene's planes: use get_outputs_with_planes or decode")

    def get_outputs_with_planes(
        self, ray_samples: RaySamples, planes: Tensor, box: CanonicalBox
    ) -> Dict[FieldHeadNames, Tensor]:
        """Density **per dataset unit** (what nerfstudio integrates over the samples' dataset-unit steps) and colour
        for ray samples in dataset coordinates; ``box`` maps them into the canonical box."""
        positions = box.to_canonical(ray_samples.frustums.get_positions())
        shape = positions.shape[:-1]
        directions = ray_samples.frustums.directions.reshape(-1, 3)
        # samples outside the canonical box carry nothing (the planes only cover the box); clamping keeps the MLP's
        # inputs bounded for them
        inside = (positions.abs() <= 1.0 + 1e-4).all(-1, keepdim=True).reshape(-1, 1)
        density, rgb = self.decode(planes, positions.reshape(-1, 3).clamp(-1.1, 1.1), directions)
        density = density * inside / box.half_extent  # per canonical unit -> per dataset unit
        return {FieldHeadNames.DENSITY: density.reshape(*shape, 1), FieldHeadNames.RGB: rgb.reshape(*shape, 3)}
