"""LatentHead: a DPT head on VGGT's aggregated layers that predicts, per source pixel, a latent feature, a depth and
a splatting weight."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tnerf_ns.backbone.config import VGGTConfig
from tnerf_ns.backbone.dpt_head import DPTHead
from tnerf_ns.backbone.vggt import make_dpt_head


class LatentHead(nn.Module):
    """Per-pixel ``feature_dim`` features, a depth logit (fraction of the ray inside the scene box) and a weight logit.

    The DPT trunk has the exact shape of VGGT's point head, so it can start from its pre-trained weights
    (:meth:`init_from_point_head`); only the last 1x1 convolution differs (its output width).
    """

    def __init__(self, backbone_config: VGGTConfig, feature_dim: int = 32) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.dpt: DPTHead = make_dpt_head(backbone_config, output_dim=feature_dim + 2, activation="linear")
        # start with a neutral depth (middle of the box) and a moderate weight
        last = self.dpt.scratch.output_conv2[2]
        with torch.no_grad():
            last.bias[feature_dim:].zero_()

    @property
    def layers(self) -> Tuple[int, ...]:
        """The backbone layers this head reads."""
        return tuple(self.dpt.layer_idx)

    def init_from_point_head(self, point_head: DPTHead) -> int:
        """Copy every trunk weight of VGGT's point head that has the same shape; returns how many were copied."""
        own = self.dpt.state_dict()
        copied = {k: v for k, v in point_head.state_dict().items() if k in own and own[k].shape == v.shape}
        self.dpt.load_state_dict(copied, strict=False)
        return len(copied)

    def forward(
        self, aggregated: List[Optional[Tensor]], image_hw: Tuple[int, int], patch_start_idx: int
    ) -> Dict[str, Float[Tensor, "b s c H W"]]:
        out = self.dpt.forward_features(aggregated, image_hw, patch_start_idx)
        f = self.feature_dim
        return {"features": out[:, :, :f], "depth_logit": out[:, :, f], "weight_logit": out[:, :, f + 1]}
