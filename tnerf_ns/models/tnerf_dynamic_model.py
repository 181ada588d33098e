"""The ``tnerf-dynamic`` model: a tri-plane for any time between two groups of photos (t0 and t1, same cameras).

The backbone embeds both groups once (cached for a frozen backbone); for a time t the patch tokens are interpolated
(``lerp``, ``flow`` or ``nearest``, see :mod:`tnerf_ns.backbone.dynamic`) before the alternating-attention blocks,
then the LatentHead, lifting and field run as in ``tnerf``. The source colours appended to the latents follow the
same interpolation (for ``flow``, the 14x14 pixel patches move with their matched tokens).

Time comes from the training batch, from ``Cameras.times`` (dataset views, the viewer's time slider, camera paths with
``render_time``), and otherwise falls back to ``default_time``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Optional, Tuple, Type

import torch.nn.functional as F
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor

from tnerf_ns.backbone.dynamic import DynamicVGGT, TokenPair, flow_interpolate
from tnerf_ns.datamanagers.context import SceneContext
from tnerf_ns.models.tnerf_model import TNeRFModel, TNeRFModelConfig


@dataclass
class TNeRFDynamicModelConfig(TNeRFModelConfig):
    """T-NeRF between two time steps, by patch-token interpolation."""

    _target: Type = field(default_factory=lambda: TNeRFDynamicModel)
    interpolation_mode: Literal["flow", "lerp", "nearest"] = "flow"
    """How VGGT's patch tokens are interpolated between t0 and t1."""
    flow_radius: int = 2
    """Neighbourhood radius (in patches) of the flow mode's patch matching."""
    default_time: float = 0.0
    """Time used when a camera carries none (camera paths without render_time, interpolated paths)."""


def patchify(images: Tensor, patch: int) -> Tensor:
    """[S, 3, H, W] -> [S, n, 3 * patch * patch] (row-major patches, like the patch tokens)."""
    return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)


def unpatchify(patches: Tensor, hw: Tuple[int, int], patch: int) -> Tensor:
    return F.fold(patches.transpose(1, 2), output_size=hw, kernel_size=patch, stride=patch)


class TNeRFDynamicModel(TNeRFModel):
    """See :class:`TNeRFDynamicModelConfig`."""

    config: TNeRFDynamicModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        if not 0.0 <= self.config.default_time <= 1.0:
            raise ValueError(f"--pipeline.model.default-time {self.config.default_time} is outside [0, 1]")

    @property
    def dynamic_vggt(self) -> DynamicVGGT:
        return DynamicVGGT(self.vggt, self.config.interpolation_mode, self.config.flow_radius)

    def cache_key(self, ctx: SceneContext) -> tuple:
        return (ctx.key, ctx.time, self.config.interpolation_mode, self.config.flow_radius)

    def _token_pair(self, images0: Tensor, images1: Tensor, key: tuple) -> TokenPair:
        dyn = self.dynamic_vggt
        if self.trainable_backbone and self.training:
            return dyn.embed_pair(images0, images1)
        return self._cached(("pair", key, tuple(images0.shape), dyn.mode, dyn.radius),
                            lambda: dyn.embed_pair(images0, images1))  # fmt: skip

    def interpolate_images(self, pair: TokenPair, images0: Tensor, images1: Tensor, t: float) -> Tensor:
        """Source colours at time t, moved like the tokens."""
        mode = self.config.interpolation_mode
        if mode == "lerp":
            return (1 - t) * images0 + t * images1
        if mode == "nearest":
            return images0 if t < 0.5 else images1
        p = self.vggt.config.patch_size
        moved = flow_interpolate(patchify(images0, p), patchify(images1, p), pair.match[0], t, pair.grid_hw)
        return unpatchify(moved, tuple(images0.shape[-2:]), p)

    def encode(self, ctx: SceneContext) -> Tuple[Tensor, Dict[str, Tensor]]:
        if ctx.images_t1 is None:  # a static scene: plain T-NeRF
            return super().encode(ctx)
        if self.vggt.device != self.device:
            self.vggt.to(self.device)
        t = float(ctx.time if ctx.time is not None else self.config.default_time)
        images0, intr = self._resize(ctx.images, ctx.intrinsics)
        images1, _ = self._resize(ctx.images_t1)
        self.check_source_budget(ctx, images0)
        pair = self._token_pair(images0, images1, ctx.key)
        dyn = self.dynamic_vggt
        layers = self.latent_head.dpt.layer_idx
        with self.vggt.autocast(images0.device):
            aggregated = self.vggt.aggregator.forward_from_patch_tokens(dyn.tokens_at(pair, t), pair.grid_hw, layers)
        return self.head_and_lift(aggregated, self.interpolate_images(pair, images0, images1, t), intr, ctx)

    def _time_of(self, times: Optional[Tensor]) -> float:
        if times is None or times.numel() == 0:
            return self.config.default_time
        return float(times.reshape(-1)[0].clamp(0, 1))

    def context_for_camera(self, camera: Cameras) -> SceneContext:
        scene = self.context_provider.scene_for_camera(camera)
        return self.context_provider.context(scene, time=self._time_of(camera.times))

    def context_for_rays(self, ray_bundle: RayBundle) -> SceneContext:
        scene = self.context_provider.default_scene
        if ray_bundle.metadata and "scene_idx" in ray_bundle.metadata:
            scene = int(ray_bundle.metadata["scene_idx"].reshape(-1)[0])
        return self.context_provider.context(scene, time=self._time_of(ray_bundle.times))
