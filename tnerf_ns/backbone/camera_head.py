"""VGGT's camera head: iterative refinement of a 9-d pose encoding from the camera tokens."""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from tnerf_ns.backbone.config import VGGTConfig
from tnerf_ns.backbone.layers import Block, Mlp

POSE_ENCODING_DIM = 9
"""[t_x, t_y, t_z, q_x, q_y, q_z, q_w, fov_h, fov_w] (extrinsic is OpenCV camera-from-world)."""


def activate_pose(raw: Float[Tensor, "*b 9"]) -> Float[Tensor, "*b 9"]:
    """Translation and quaternion pass through; the two fields of view go through a ReLU."""
    return torch.cat([raw[..., :7], F.relu(raw[..., 7:])], dim=-1)


class CameraHead(nn.Module):
    """AdaLN-modulated transformer over the frames' camera tokens, refined for a fixed number of iterations."""

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        dim = config.head_dim_in
        self.num_iterations = config.camera_iterations
        self.token_norm = nn.LayerNorm(dim)
        self.trunk_norm = nn.LayerNorm(dim)
        self.trunk = nn.Sequential(
            *(
                Block(dim, config.camera_num_heads, 4.0, config.layerscale_init, qk_norm=False, norm_eps=1e-5)
                for _ in range(config.camera_trunk_depth)
            )
        )
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_DIM))
        self.embed_pose = nn.Linear(POSE_ENCODING_DIM, dim)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * dim))
        self.adaln_norm = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.pose_branch = Mlp(dim, dim // 2, POSE_ENCODING_DIM)

    def forward(
        self, aggregated: List[Optional[Float[Tensor, "b s p d"]]], num_iterations: Optional[int] = None
    ) -> List[Float[Tensor, "b s 9"]]:
        """Returns the activated pose encoding after every iteration; the last one is the prediction."""
        tokens = self.token_norm(aggregated[-1][:, :, 0])
        b, s, _ = tokens.shape
        normed = self.adaln_norm(tokens)
        raw: Optional[Tensor] = None
        outputs = []
        for _ in range(num_iterations or self.num_iterations):
            if raw is None:
                pose_in = self.empty_pose_tokens.expand(b, s, -1)
            else:
                pose_in = raw.detach()  # the raw (pre-activation) encoding is fed back
            shift, scale, gate = self.poseLN_modulation(self.embed_pose(pose_in)).chunk(3, dim=-1)
            z = gate * (normed * (1 + scale) + shift) + tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(z)))
            raw = delta if raw is None else raw + delta
            outputs.append(activate_pose(raw))
        return outputs
