"""Tri-plane radiance field decoded by one globally shared tiny MLP.

A query (x, d) bilinearly samples planes xy, xz and yz at the matching coordinate pairs, concatenates the three
feature vectors, adds a positional encoding of x and an encoding of the view direction, and the shared MLP returns
density and colour. The planes are an input (one scene's prediction), the MLP weights are shared by every scene.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.encodings import NeRFEncoding, SHEncoding
from torch import Tensor, nn

from tnerf_ns.fields.scene_field import SceneConditionedField
from tnerf_ns.triplane import sample_planes, sample_triplane

__all__ = ["TriplaneField", "sample_triplane"]


class TriplaneField(SceneConditionedField):
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
