"""Plan A: a radiance field whose MLP is predicted per scene (by :class:`~tnerf_ns.heads.hyper_network.HyperNetwork`).

The MLP has the tri-plane decoder's shape without plane features: positional encoding of x -> ``num_layers`` hidden
layers of ``width`` -> density; last hidden state + view-direction encoding -> ``width / 2`` -> colour. Two ways to
predict it, chosen by ``mode``:

* ``full``: the prediction is a flat vector holding **every** weight and bias of that MLP (the seed's Plan A);
* ``film``: a shared base MLP (ordinary parameters of this field) whose hidden units are modulated per scene,
  ``h = relu((1 + gamma) * (W x + b) + beta)``; the prediction holds gamma and beta of every hidden layer.

Predictions may be batched over scenes (``[B, D]`` with points ``[B, n, 3]``): every layer is one batched matrix
product (``torch.baddbmm``), so any number of rays of any number of scenes go through their own MLPs without loops.
"""

from __future__ import annotations

import math
from typing import List, Literal, Optional, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.field_components.encodings import NeRFEncoding, SHEncoding
from torch import Tensor, nn

from tnerf_ns.fields.density_activation import density_from_logits
from tnerf_ns.fields.scene_field import SceneConditionedField

HyperMode = Literal["full", "film"]

FULL_SCENE_FRACTION = 0.5
"""Full mode: share of the initial weight variance that depends on the scene (the rest is a common starting MLP)."""
FILM_INIT_STD = 0.1
"""FiLM mode: initial spread of the predicted scales and shifts (the base MLP starts as a standard MLP)."""


def linear_init(out_dim: int, in_dim: int, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Weights and bias as ``nn.Linear`` initialises them: uniform in +-1/sqrt(fan_in) (std 1/sqrt(3 fan_in))."""
    bound = 1.0 / math.sqrt(in_dim)
    weight = (torch.rand(out_dim, in_dim, generator=generator) * 2 - 1) * bound
    bias = (torch.rand(out_dim, generator=generator) * 2 - 1) * bound
    return weight, bias


class HyperMLPField(SceneConditionedField):
    """Field over the canonical box whose MLP (``full``) or MLP modulation (``film``) is given at call time.

    Args:
        mode: ``full`` (every weight predicted) or ``film`` (a shared base MLP, modulated per scene).
        hidden_dim: width of the hidden layers.
        num_layers: hidden layers of the trunk.
        position_frequencies: frequencies of the positional encoding of x.
        direction_levels: spherical-harmonics levels of the view-direction encoding (0 disables view dependence).
        density_bias: added to the density pre-activation (negative: start mostly empty).
    """

    def __init__(
        self,
        mode: HyperMode = "full",
        hidden_dim: int = 64,
        num_layers: int = 2,
        position_frequencies: int = 6,
        direction_levels: int = 3,
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        if mode not in ("full", "film"):
            raise ValueError(f"unknown hyper-network mode {mode!r} (full or film)")
        self.mode = mode
        self.position_encoding = NeRFEncoding(
            in_dim=3, num_frequencies=position_frequencies, min_freq_exp=0.0,
            max_freq_exp=float(max(position_frequencies - 1, 0)), include_input=True, implementation="torch",
        )  # fmt: skip
        self.direction_encoding = (
            SHEncoding(levels=direction_levels, implementation="torch") if direction_levels else None
        )
        dir_dim = self.direction_encoding.get_out_dim() if self.direction_encoding is not None else 0
        half = hidden_dim // 2
        trunk = [(hidden_dim, self.position_encoding.get_out_dim())] + [(hidden_dim, hidden_dim)] * (num_layers - 1)
        self.layers: List[Tuple[int, int]] = [*trunk, (1, hidden_dim), (half, hidden_dim + dir_dim), (3, half)]
        """(out, in) of every linear layer: the trunk, the density layer, the colour layers."""
        self.num_trunk = num_layers
        self.density_bias = density_bias
        self.num_mlp_params = sum(o * i + o for o, i in self.layers)
        self.modulated = [k for k in range(len(self.layers)) if k != self.num_trunk and k != len(self.layers) - 1]
        """Hidden layers (trunk and the first colour layer): the ones FiLM modulates."""
        if mode == "film":
            weights = [torch.cat([w.flatten(), b]) for w, b in (linear_init(o, i) for o, i in self.layers)]
            self.base = nn.Parameter(torch.cat(weights))
            """The shared base MLP (flat, in the layout of a full prediction)."""

    @property
    def prediction_dim(self) -> int:
        """Length of one scene's prediction."""
        if self.mode == "full":
            return self.num_mlp_params
        return 2 * sum(self.layers[k][0] for k in self.modulated)

    def prediction_init(self, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """Mean and per-scene standard deviation every entry of a prediction should start with, so that the predicted
        MLP starts as ``nn.Linear`` would initialise it (full) or as the unmodulated base MLP (FiLM)."""
        if self.mode == "film":
            return torch.zeros(self.prediction_dim), torch.full((self.prediction_dim,), FILM_INIT_STD)
        means, stds = [], []
        f = FULL_SCENE_FRACTION
        for out_dim, in_dim in self.layers:
            weight, bias = linear_init(out_dim, in_dim, generator)
            means.append(torch.cat([weight.flatten(), bias]) * math.sqrt(1 - f * f))
            stds.append(torch.full((out_dim * in_dim + out_dim,), f / math.sqrt(3 * in_dim)))
        return torch.cat(means), torch.cat(stds)

    def unflatten(self, params: Float[Tensor, "b p"]) -> List[Tuple[Tensor, Tensor]]:
        """A flat MLP ``[B, P]`` -> per layer (weight ``[B, out, in]``, bias ``[B, out]``), as views."""
        out, offset = [], 0
        for o, i in self.layers:
            weight = params[:, offset : offset + o * i].view(-1, o, i)
            bias = params[:, offset + o * i : offset + o * i + o]
            out.append((weight, bias))
            offset += o * i + o
        return out

    def decode(
        self,
        prediction: Float[Tensor, "*b d"],
        points: Float[Tensor, "*b n 3"],
        directions: Optional[Float[Tensor, "*b n 3"]] = None,
    ) -> Tuple[Float[Tensor, "*b n 1"], Float[Tensor, "*b n 3"]]:
        """Density (per canonical unit) and colour at canonical points: one scene (``[D]``, points ``[n, 3]``) or a
        batch of scenes (``[B, D]``, points ``[B, n, 3]``)."""
        single = prediction.dim() == 1
        if single:
            prediction, points = prediction[None], points[None]
            directions = None if directions is None else directions[None]
        batch = prediction.shape[0]
        if self.mode == "full":
            layers, film = self.unflatten(prediction), None
        else:
            layers = [(w.expand(batch, -1, -1), b.expand(batch, -1)) for w, b in self.unflatten(self.base[None])]
            film = prediction
        offset = 0

        def linear(k: int, x: Tensor) -> Tensor:
            nonlocal offset
            weight, bias = layers[k]
            y = torch.baddbmm(bias[:, None], x, weight.transpose(1, 2))
            if film is not None and k in self.modulated:  # (1 + gamma) * y + beta, per scene and hidden unit
                o = weight.shape[1]
                gamma, beta = film[:, None, offset : offset + o], film[:, None, offset + o : offset + 2 * o]
                y = torch.addcmul(y + beta, y, gamma)
                offset += 2 * o
            return y

        h = self.position_encoding(points)
        for k in range(self.num_trunk):
            h = F.relu(linear(k, h))
        density = density_from_logits(linear(self.num_trunk, h) + self.density_bias)
        if self.direction_encoding is not None:
            if directions is None:
                directions = torch.zeros_like(points)
                directions[..., 2] = 1.0
            h = torch.cat([h, self.encode_directions(directions)], dim=-1)
        c = F.relu(linear(self.num_trunk + 1, h))
        rgb = torch.sigmoid(linear(self.num_trunk + 2, c))
        if single:
            return density[0], rgb[0]
        return density, rgb
