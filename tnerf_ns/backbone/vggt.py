"""The VGGT model: aggregator plus camera, depth and point heads, checkpoint-compatible with ``facebook/VGGT-1B``."""

from __future__ import annotations

import contextlib
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tnerf_ns.backbone.aggregator import Aggregator
from tnerf_ns.backbone.camera_head import CameraHead
from tnerf_ns.backbone.config import VGGTConfig
from tnerf_ns.backbone.dpt_head import DPTHead

TRACK_HEAD_PREFIX = "track_head."
"""The official checkpoint also holds a point-tracking head that T-NeRF does not use."""


def make_dpt_head(config: VGGTConfig, output_dim: int, activation: str, **overrides) -> DPTHead:
    """A DPT head with the backbone's sizes (also used for heads initialised from VGGT's point head)."""
    kwargs = dict(
        dim_in=config.head_dim_in,
        patch_size=config.patch_size,
        output_dim=output_dim,
        activation=activation,
        features=config.dpt_features,
        out_channels=config.dpt_out_channels,
        layer_idx=config.intermediate_layer_idx,
        hidden=config.dpt_head_features_2,
    )
    kwargs.update(overrides)
    return DPTHead(**kwargs)


class VGGT(nn.Module):
    """Visual Geometry Grounded Transformer (camera, depth and point heads; no track head)."""

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        self.config = config
        self.aggregator = Aggregator(config)
        self.camera_head = CameraHead(config) if config.enable_camera else None
        self.point_head = make_dpt_head(config, 4, "inv_log") if config.enable_point else None
        self.depth_head = make_dpt_head(config, 2, "exp") if config.enable_depth else None
        self.mixed_precision: Optional[bool] = None
        """bf16 autocast of the aggregator: None = on CUDA only (the default), True = on any device, False = never
        (full fp32, e.g. to compare with reference outputs)."""

    @property
    def device(self) -> torch.device:
        return self.aggregator.camera_token.device

    def autocast(self, device: torch.device):
        """bf16 autocast for the aggregator on CUDA; full precision elsewhere (see ``mixed_precision``)."""
        enabled = device.type == "cuda" if self.mixed_precision is None else self.mixed_precision
        if enabled:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    @property
    def patch_start_idx(self) -> int:
        """Tokens per frame before the patch tokens (camera token and registers)."""
        return self.aggregator.patch_start_idx

    def patch_grid(self, image_hw: Tuple[int, int]) -> Tuple[int, int]:
        """Patch grid (h, w) of an input size."""
        return image_hw[0] // self.patch_size, image_hw[1] // self.patch_size

    @staticmethod
    def as_batch(images: Tensor) -> Tensor:
        if images.ndim == 4:
            images = images[None]
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(
                f"VGGT expects images [S, 3, H, W] or [B, S, 3, H, W] in [0, 1], got {tuple(images.shape)}"
            )
        return images

    def embed_patches(self, images: Float[Tensor, "*b s 3 H W"]) -> Float[Tensor, "b s n c"]:
        """Patch tokens right after the DINOv2 patch embedder (where the dynamic variant interpolates)."""
        images = self.as_batch(images)
        with self.autocast(images.device):
            return self.aggregator.embed_patches(images)

    def aggregate(
        self, images: Float[Tensor, "*b s 3 H W"], layers: Optional[Iterable[int]] = None
    ) -> List[Optional[Tensor]]:
        """Aggregator outputs only (bf16 autocast on CUDA); ``layers`` selects which are kept."""
        images = self.as_batch(images)
        with self.autocast(images.device):
            return self.aggregator(images, layers)[0]

    def aggregate_from_patch_tokens(
        self, patch_tokens: Float[Tensor, "b s n c"], grid_hw: Tuple[int, int], layers: Optional[Iterable[int]] = None
    ) -> List[Optional[Tensor]]:
        """Aggregator outputs from given (e.g. interpolated) patch tokens, under the same autocast as
        :meth:`aggregate`."""
        with self.autocast(patch_tokens.device):
            return self.aggregator.forward_from_patch_tokens(patch_tokens, grid_hw, layers)

    def forward_from_patch_tokens(
        self,
        patch_tokens: Float[Tensor, "b s n c"],
        image_hw: Tuple[int, int],
        heads: Iterable[str] = ("camera", "depth", "point"),
        images: Optional[Tensor] = None,
        extra_layers: Iterable[int] = (),
    ) -> Dict[str, object]:
        """Run the trunk and the requested heads from given patch tokens.

        Args:
            patch_tokens: output of :meth:`embed_patches` (possibly modified).
            image_hw: input image size (H, W).
            heads: which of "camera", "depth", "point" to run.
            images: echoed back as ``outputs["images"]`` when given.
            extra_layers: further aggregator layers to keep in ``outputs["aggregated"]`` (e.g. for a new head).

        Returns:
            Dict with ``pose_enc``, ``pose_enc_list``, ``depth``, ``depth_conf``, ``world_points``,
            ``world_points_conf`` as available, plus ``aggregated`` (list with None for dropped layers) and
            ``patch_start_idx``.
        """
        heads = set(heads)
        unknown = heads - {"camera", "depth", "point"}
        if unknown:
            raise ValueError(f"unknown VGGT heads {sorted(unknown)}")
        for name in heads:
            if getattr(self, f"{name}_head") is None:
                raise ValueError(f"this VGGT was built without its {name} head")
        keep = set(extra_layers)
        if heads & {"depth", "point"}:
            keep.update(self.config.intermediate_layer_idx)
        if "camera" in heads:
            keep.add(self.config.depth - 1)
        aggregated = self.aggregate_from_patch_tokens(patch_tokens, self.patch_grid(image_hw), keep)
        start = self.patch_start_idx
        outputs: Dict[str, object] = {"aggregated": aggregated, "patch_start_idx": start}
        # Heads run in full precision (as upstream does), on fp32 copies of the layers they read.
        aggregated32: List[Optional[Tensor]] = [None if t is None else t.float() for t in aggregated]
        with torch.autocast(patch_tokens.device.type, enabled=False):
            if "camera" in heads:
                pose_list = self.camera_head(aggregated32)
                outputs["pose_enc"] = pose_list[-1]
                outputs["pose_enc_list"] = pose_list
            if "depth" in heads:
                outputs["depth"], outputs["depth_conf"] = self.depth_head(aggregated32, image_hw, start)
            if "point" in heads:
                outputs["world_points"], outputs["world_points_conf"] = self.point_head(aggregated32, image_hw, start)
        if images is not None:
            outputs["images"] = images
        return outputs

    def forward(self, images: Float[Tensor, "*b s 3 H W"], heads: Optional[Iterable[str]] = None) -> Dict[str, object]:
        """Images in [0, 1] ([S, 3, H, W] or [B, S, 3, H, W]) to cameras, depth and point maps."""
        images = self.as_batch(images)
        if heads is None:
            heads = [n for n in ("camera", "depth", "point") if getattr(self, f"{n}_head") is not None]
        tokens = self.embed_patches(images)
        return self.forward_from_patch_tokens(
            tokens, tuple(images.shape[-2:]), heads, images=None if self.training else images
        )

    def freeze(self) -> "VGGT":
        """Eval mode and no gradients (the pre-trained backbone stays fixed)."""
        self.eval()
        self.requires_grad_(False)
        return self
