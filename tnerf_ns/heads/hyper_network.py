"""Plan A's head: the backbone's tokens of one scene -> the parameters of that scene's NeRF MLP.

Per source view and per DPT layer it reads the camera token, the mean of the register tokens and the mean of the patch
tokens; with the view's camera pose in the canonical box (the tokens live in the first camera's frame, the MLP in the
scene's box) a small MLP turns them into a view code; the codes are averaged over views (any number, any order) and
normalised into the scene code ``z``. One linear map of ``z`` gives the prediction, parametrised as
``mean + std * (A z)`` with ``A ~ N(0, 1/dim)``: at initialisation every entry has the mean and spread the field asks
for (:meth:`~tnerf_ns.fields.hyper_mlp_field.HyperMLPField.prediction_init`, i.e. ``nn.Linear``'s init), and the
optimiser updates ``A`` on a scale that does not depend on the target layer's fan-in.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn


class HyperNetwork(nn.Module):
    """Aggregated tokens of one scene's source views -> one prediction vector ``[out_dim]``.

    Args:
        token_dim: width of the aggregated tokens (frame and global outputs concatenated).
        layers: aggregator layers read (those of the DPT heads).
        mean: initial mean of every output entry ``[out_dim]``.
        std: initial per-scene spread of every output entry ``[out_dim]``.
        code_dim: width of the view and scene codes.
    """

    def __init__(self, token_dim: int, layers: Sequence[int], mean: Tensor, std: Tensor, code_dim: int = 256) -> None:
        super().__init__()
        self.layers = tuple(layers)
        in_dim = 3 * len(self.layers) * token_dim
        self.token_norm = nn.LayerNorm(in_dim)
        self.pose_embed = nn.Linear(12, code_dim)
        self.view_in = nn.Linear(in_dim, code_dim)
        self.view_out = nn.Linear(code_dim, code_dim)
        self.code_norm = nn.LayerNorm(code_dim)
        self.mean = nn.Parameter(mean.clone().float())
        """The prediction's scene-independent part (trained: the common starting point of every scene)."""
        self.proj = nn.Parameter(torch.randn(len(mean), code_dim) / math.sqrt(code_dim))
        self.register_buffer("std", std.clone().float(), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.mean.shape[0]

    def view_features(self, aggregated: List[Optional[Tensor]], patch_start_idx: int) -> Float[Tensor, "s f"]:
        """Camera token, mean register token and mean patch token of every read layer, per view (batch of one)."""
        feats = []
        for i in self.layers:
            tokens = aggregated[i][0].float()  # [S, tokens, token_dim]
            registers = tokens[:, 1:patch_start_idx].mean(1) if patch_start_idx > 1 else torch.zeros_like(tokens[:, 0])
            feats += [tokens[:, 0], registers, tokens[:, patch_start_idx:].mean(1)]
        return torch.cat(feats, dim=-1)

    def scene_code(self, features: Float[Tensor, "s f"], c2w: Float[Tensor, "s 3 4"]) -> Float[Tensor, "c"]:
        views = self.view_in(self.token_norm(features)) + self.pose_embed(c2w.reshape(-1, 12).float())
        views = self.view_out(torch.nn.functional.gelu(views))
        return self.code_norm(views.mean(0))

    def forward(
        self, aggregated: List[Optional[Tensor]], patch_start_idx: int, c2w: Float[Tensor, "s 3 4"]
    ) -> Float[Tensor, "d"]:
        """The prediction for one scene; ``c2w``: the source cameras in the canonical box."""
        z = self.scene_code(self.view_features(aggregated, patch_start_idx), c2w)
        return torch.addcmul(self.mean, self.std, self.proj @ z)
