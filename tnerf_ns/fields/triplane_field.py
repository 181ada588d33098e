"""Tri-plane radiance field decoded by one globally shared tiny MLP.

A query (x, d) bilinearly samples planes xy, xz and yz at the matching coordinate pairs, concatenates the three
feature vectors, adds a positional encoding of x and an encoding of the view direction, and the shared MLP returns
density and colour. The planes are an input (one scene's prediction), the MLP weights are shared by every scene.
With the projection branch (:mod:`tnerf_ns.fields.source_projection`) the prediction also carries the source views:
the trunk reads the aggregate of the point's projections too, and the colour is a gated mix of the blended source
colours and the MLP's own (the MLP's alone where no source view sees the point).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.field_components.encodings import NeRFEncoding, SHEncoding
from torch import Tensor, nn

from tnerf_ns.fields.density_activation import density_from_logits
from tnerf_ns.fields.scene_field import SceneConditionedField
from tnerf_ns.fields.source_projection import Prediction, ProjectionAggregator, planes_of, views_of
from tnerf_ns.triplane import sample_planes, sample_triplane

if TYPE_CHECKING:
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

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
        projection_channels: channels of the source views' maps (0: no projection branch).
        projection_hidden: width of the projection branch's per-view code.
        surface_votes: the projection branch also fuses the source views' depth maps (``ProjectionAggregator``).
    """

    def __init__(
        self,
        plane_channels: int = 32,
        hidden_dim: int = 64,
        num_layers: int = 2,
        position_frequencies: int = 4,
        direction_levels: int = 3,
        density_bias: float = -1.0,
        projection_channels: int = 0,
        projection_hidden: int = 16,
        surface_votes: bool = False,
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
        self.projection = (
            ProjectionAggregator(projection_channels, projection_hidden, surface_votes=surface_votes)
            if projection_channels
            else None
        )
        self.encoding_dim = self.position_encoding.get_out_dim()
        extra = self.projection.out_dim if self.projection is not None else 0
        # The first layers are applied piecewise (tri-plane part, encoding part) instead of on concatenated inputs:
        # the same maths without materialising [n, 3c + pe] copies, which dominate the cost at millions of samples.
        self.trunk_in = nn.Linear(self.plane_dim + self.encoding_dim + extra, hidden_dim)
        self.trunk_hidden = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers - 1))
        self.density_head = nn.Linear(hidden_dim, 1)
        dir_dim = self.direction_encoding.get_out_dim() if self.direction_encoding is not None else 0
        self.color_in = nn.Linear(hidden_dim + dir_dim, hidden_dim // 2)
        self.color_out = nn.Linear(hidden_dim // 2, 3)
        if self.projection is not None:
            self.blend_gate = nn.Linear(hidden_dim, 1)
            nn.init.constant_(self.blend_gate.bias, 2.0)  # start from the source colours where a view sees the point
        self.density_bias = density_bias

    @classmethod
    def from_config(cls, config: "TNeRFModelConfig") -> "TriplaneField":
        """The field the model configuration describes (with the projection branch when it is on)."""
        return cls(
            config.triplane_channels, config.mlp_width, config.mlp_layers, config.position_frequencies,
            config.direction_levels, projection_channels=config.projection_channels + 1 if config.source_projection
            else 0, projection_hidden=config.projection_hidden, surface_votes=config.projection_surface_votes,
        )  # fmt: skip

    def decode(
        self, prediction: Prediction, points: Float[Tensor, "n 3"], directions: Optional[Tensor] = None
    ) -> Tuple[Float[Tensor, "n 1"], Float[Tensor, "n 3"]]:
        """Density (per canonical unit) and colour at canonical points; ``prediction`` is the planes, or a
        :class:`TriplaneScene` (planes and source views; a field without the branch ignores the views, one with it
        reads zeros for planes alone)."""
        if directions is None:
            directions = self._default_directions(points)
        feats = sample_planes(planes_of(prediction), points)  # channel-first [3c, n]
        w = self.trunk_in.weight
        pe_end = self.plane_dim + self.encoding_dim
        h = torch.addmm(self.trunk_in.bias, self.position_encoding(points), w[:, self.plane_dim : pe_end].T)
        h = h.add_((w[:, : self.plane_dim] @ feats).T)
        views = views_of(prediction) if self.projection is not None else None
        blended = seen = None
        if views is not None:
            aggregate, blended, seen = self.projection(views, points, directions)
            h = h.addmm_(aggregate, w[:, pe_end:].T)
        h = F.relu_(h)
        for layer in self.trunk_hidden:
            h = F.relu_(layer(h))
        density = density_from_logits(self.density_head(h) + self.density_bias)
        wc = self.color_in.weight
        c = torch.addmm(self.color_in.bias, h, wc[:, : h.shape[1]].T)
        if self.direction_encoding is not None:
            c = c.addmm_(self.encode_directions(directions), wc[:, h.shape[1] :].T)
        rgb = torch.sigmoid(self.color_out(F.relu_(c)))
        if blended is not None:
            gate = torch.sigmoid(self.blend_gate(h)) * seen[:, None]
            rgb = gate * blended + (1 - gate) * rgb
        return density, rgb

    @staticmethod
    def _default_directions(points: Tensor) -> Tensor:
        """The direction of queries that carry none (density grids, exporters): +z, as before the projection branch."""
        directions = torch.zeros_like(points)
        directions[:, 2] = 1.0
        return directions
