"""The dynamic scene encoder: a tri-plane for any time between two groups of photos (t0 and t1, same cameras).

The backbone embeds both groups once (cached for a frozen backbone); for a time t the patch tokens are interpolated
(``lerp``, ``flow`` or ``nearest``, see :mod:`tnerf_ns.backbone.dynamic`) before the alternating-attention blocks,
then the LatentHead and lifting run as in the static encoder. The source colours appended to the latents move with
the tokens, here in the same place (for ``flow``, the pixel patches follow their matched tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.backbone.dynamic import DynamicVGGT, TokenPair, flow_interpolate
from tnerf_ns.encoding.encoder import SceneEncoder
from tnerf_ns.geometry import CanonicalBox
from tnerf_ns.heads.triplane_lifting import LiftedViews
from tnerf_ns.scene_context import SceneContext

RANDOM_MODES = ("lerp", "flow", "nearest")
"""What ``--pipeline.model.interpolation-mode random`` draws from while training."""

if TYPE_CHECKING:
    from tnerf_ns.models.tnerf_dynamic_model import TNeRFDynamicModelConfig


def patchify(images: Float[Tensor, "s 3 H W"], patch: int) -> Float[Tensor, "s n p"]:
    """[S, 3, H, W] -> [S, n, 3 * patch * patch] (row-major patches, like the patch tokens)."""
    return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)


def unpatchify(patches: Float[Tensor, "s n p"], hw: Tuple[int, int], patch: int) -> Float[Tensor, "s 3 H W"]:
    return F.fold(patches.transpose(1, 2), output_size=hw, kernel_size=patch, stride=patch)


class DynamicSceneEncoder(SceneEncoder):
    """:class:`SceneEncoder` whose source tokens and colours are interpolated to the context's time."""

    uses_time = True
    config: "TNeRFDynamicModelConfig"

    def __init__(self, config: "TNeRFDynamicModelConfig", box: CanonicalBox) -> None:
        super().__init__(config, box)
        if not 0.0 <= config.default_time <= 1.0:
            raise ValueError(f"--pipeline.model.default-time {config.default_time} is outside [0, 1]")

    @property
    def mode(self) -> str:
        """The interpolation of this forward pass: the configured one; ``random`` draws lerp, flow or nearest per
        training step (one checkpoint then serves every mode) and renders with flow."""
        mode = self.config.interpolation_mode
        if mode != "random":
            return mode
        return getattr(self, "_drawn_mode", "flow") if self.training else "flow"

    def draw_mode(self) -> None:
        if self.config.interpolation_mode == "random" and self.training:
            self._drawn_mode = RANDOM_MODES[int(torch.randint(len(RANDOM_MODES), ()))]

    @property
    def dynamic_vggt(self) -> DynamicVGGT:
        return DynamicVGGT(self.vggt, self.mode, self.config.flow_radius)

    def cache_key(self, ctx: SceneContext) -> tuple:
        return (ctx.key, ctx.time, self.mode, self.config.flow_radius)

    def token_pair(self, images0: Tensor, images1: Tensor, key: tuple) -> TokenPair:
        dyn = self.dynamic_vggt
        if self.trainable_backbone and self.training:
            return dyn.embed_pair(images0, images1)
        return self.cached(("pair", key, tuple(images0.shape), dyn.mode, dyn.radius),
                           lambda: dyn.embed_pair(images0, images1))  # fmt: skip

    def interpolate_images(self, pair: TokenPair, images0: Tensor, images1: Tensor, t: float) -> Tensor:
        """Source colours at time t, moved like the tokens."""
        mode = self.mode
        if mode == "lerp":
            return (1 - t) * images0 + t * images1
        if mode == "nearest":
            return images0 if t < 0.5 else images1
        p = self.vggt.patch_size
        moved = flow_interpolate(patchify(images0, p), patchify(images1, p), pair.match[0], t, pair.grid_hw)
        return unpatchify(moved, tuple(images0.shape[-2:]), p)

    def forward(self, ctx: SceneContext) -> Tuple[Float[Tensor, "3 c r r"], LiftedViews]:
        if ctx.images_t1 is None:  # a static scene: the static encoder
            return super().forward(ctx)
        if self.vggt.device != self.device:
            self.vggt.to(self.device)
        t = float(ctx.time if ctx.time is not None else self.config.default_time)
        self.draw_mode()
        images0, intr = self.resize(ctx.images, ctx.intrinsics)
        images1, _ = self.resize(ctx.images_t1)
        self.check_source_budget(ctx, images0)
        pair = self.token_pair(images0, images1, ctx.key)
        tokens = self.dynamic_vggt.tokens_at(pair, t)
        aggregated = self.vggt.aggregate_from_patch_tokens(tokens, pair.grid_hw, self.latent_head.layers)
        return self.head_and_lift(aggregated, self.interpolate_images(pair, images0, images1, t), intr, ctx)
