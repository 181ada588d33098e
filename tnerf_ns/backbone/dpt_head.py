"""DPT dense-prediction head on four aggregator layers (VGGT's depth and point heads; T-NeRF's LatentHead trunk)."""

from __future__ import annotations

import math
from typing import List, Literal, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn


def uv_embedding(
    height: int, width: int, channels: int, aspect_ratio: float, device: torch.device
) -> Float[Tensor, "c h w"]:
    """Sinusoidal embedding of a centred uv grid whose extent follows the image's aspect ratio.

    The first half of the channels encodes u (horizontal), the second half v; each half is [sin, cos] of the
    coordinate times frequencies 100^(-j/(c/4)). Frequencies and sin/cos are computed in float64 as upstream does.
    """
    span_x = aspect_ratio / math.sqrt(aspect_ratio**2 + 1)
    span_y = 1.0 / math.sqrt(aspect_ratio**2 + 1)
    u = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, device=device)
    v = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, device=device)
    quarter = channels // 4
    omega = 1.0 / 100.0 ** (torch.arange(quarter, device=device, dtype=torch.float64) / quarter)

    def encode(p: Tensor) -> Tensor:
        angles = p.double()[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1).float()  # [n, c/2]

    eu = encode(u).T[:, None, :].expand(-1, height, -1)  # [c/2, h, w]
    ev = encode(v).T[:, :, None].expand(-1, -1, width)
    return torch.cat([eu, ev], dim=0)


class ResidualConvUnit(nn.Module):
    """conv2(relu(conv1(relu(x)))) + relu(x): upstream's in-place ReLU makes the skip add relu(x)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FusionBlock(nn.Module):
    """Adds a refined skip input, refines, resizes (bilinear, align_corners) and projects."""

    def __init__(self, features: int, has_skip: bool = True) -> None:
        super().__init__()
        if has_skip:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: Tensor, skip: Optional[Tensor], size: Tuple[int, int]) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """Container that reproduces upstream's ``scratch.*`` key names."""

    def __init__(
        self, out_channels: Sequence[int], features: int, output_dim: Optional[int], hidden: int, feature_only: bool
    ) -> None:
        super().__init__()
        for i, ch in enumerate(out_channels, start=1):
            setattr(self, f"layer{i}_rn", nn.Conv2d(ch, features, 3, padding=1, bias=False))
        self.refinenet1 = FusionBlock(features)
        self.refinenet2 = FusionBlock(features)
        self.refinenet3 = FusionBlock(features)
        self.refinenet4 = FusionBlock(features, has_skip=False)
        if feature_only:
            self.output_conv1 = nn.Conv2d(features, features, 3, padding=1)
        else:
            self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
            self.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, output_dim, 1)
            )


Activation = Literal["exp", "inv_log", "linear"]


def activate(x: Tensor, kind: Activation) -> Tensor:
    """Output activation of a DPT head's value channels."""
    if kind == "exp":
        return torch.exp(x)
    if kind == "inv_log":
        return torch.sign(x) * torch.expm1(torch.abs(x))
    return x


class DPTHead(nn.Module):
    """Dense prediction from four aggregator layers.

    Args:
        dim_in: width of the aggregated tokens (2C).
        patch_size: patch size of the backbone.
        output_dim: output channels including the confidence channel (ignored when ``feature_only``).
        activation: activation of the value channels; the last channel is confidence, ``1 + exp``.
        features: fusion width.
        out_channels: widths of the four projections.
        layer_idx: which aggregator layers are read.
        hidden: hidden width of the output convolution.
        feature_only: stop after ``output_conv1`` and return a feature map at full resolution.
        pos_embed: add the uv embedding after the projections and at full resolution.
        frames_chunk_size: frames processed at once (memory bound only; results do not depend on it).
    """

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        output_dim: int = 4,
        activation: Activation = "inv_log",
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        layer_idx: Sequence[int] = (4, 11, 17, 23),
        hidden: int = 32,
        feature_only: bool = False,
        pos_embed: bool = True,
        frames_chunk_size: int = 8,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.activation = activation
        self.layer_idx = tuple(layer_idx)
        self.feature_only = feature_only
        self.pos_embed = pos_embed
        self.frames_chunk_size = frames_chunk_size
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, ch, 1) for ch in out_channels)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(out_channels[0], out_channels[0], 4, stride=4),
                nn.ConvTranspose2d(out_channels[1], out_channels[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(out_channels[3], out_channels[3], 3, stride=2, padding=1),
            ]
        )
        self.scratch = Scratch(out_channels, features, output_dim, hidden, feature_only)

    def _add_uv(self, x: Tensor, aspect_ratio: float) -> Tensor:
        if not self.pos_embed:
            return x
        emb = uv_embedding(x.shape[-2], x.shape[-1], x.shape[1], aspect_ratio, x.device)
        return x + 0.1 * emb.to(x.dtype)

    def _forward_frames(self, layers: List[Tensor], image_hw: Tuple[int, int]) -> Float[Tensor, "n c H W"]:
        """Layers are patch tokens ``[n, h*w, 2C]`` of the same n frames."""
        height, width = image_hw
        h, w = height // self.patch_size, width // self.patch_size
        aspect = width / height
        maps = []
        for k, tokens in enumerate(layers):
            x = self.norm(tokens).transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
            x = self._add_uv(self.projects[k](x), aspect)
            maps.append(self.resize_layers[k](x))
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i + 1}_rn")(m) for i, m in enumerate(maps))
        x = s.refinenet4(l4, None, l3.shape[-2:])
        x = s.refinenet3(x, l3, l2.shape[-2:])
        x = s.refinenet2(x, l2, l1.shape[-2:])
        x = s.refinenet1(x, l1, (2 * l1.shape[-2], 2 * l1.shape[-1]))
        x = s.output_conv1(x)
        x = F.interpolate(x, size=(h * self.patch_size, w * self.patch_size), mode="bilinear", align_corners=True)
        if self.feature_only:
            return x
        return s.output_conv2(self._add_uv(x, aspect))

    def forward_features(
        self, aggregated: List[Optional[Tensor]], image_hw: Tuple[int, int], patch_start_idx: int
    ) -> Float[Tensor, "b s c H W"]:
        """Raw output maps (before activation), frames processed in chunks."""
        first = aggregated[self.layer_idx[0]]
        b, s = first.shape[:2]
        chunks = []
        for start in range(0, s, self.frames_chunk_size):
            stop = min(start + self.frames_chunk_size, s)
            layers = [aggregated[i][:, start:stop, patch_start_idx:] for i in self.layer_idx]
            layers = [t.reshape(b * (stop - start), t.shape[2], t.shape[3]) for t in layers]
            out = self._forward_frames(layers, image_hw)
            chunks.append(out.reshape(b, stop - start, *out.shape[1:]))
        return torch.cat(chunks, dim=1)

    def forward(
        self, aggregated: List[Optional[Tensor]], image_hw: Tuple[int, int], patch_start_idx: int
    ) -> Tuple[Float[Tensor, "b s H W k"], Float[Tensor, "b s H W"]]:
        """Activated values (channels last) and confidence ``1 + exp``."""
        out = self.forward_features(aggregated, image_hw, patch_start_idx).permute(0, 1, 3, 4, 2)
        return activate(out[..., :-1], self.activation), 1 + torch.exp(out[..., -1])
