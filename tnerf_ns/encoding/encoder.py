"""The scene encoder: source views of one scene -> tri-plane, in one ``nn.Module``.

It owns the VGGT backbone (frozen pre-trained weights are kept out of checkpoints and reloaded from their source),
resizing to the backbone's input width, the token budget, aggregation with its caches (memory LRU, optional on-disk
cache shared by runs), the LatentHead and the lifting onto the tri-plane. The model above it sees only planes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn

from tnerf_ns.backbone import VGGT, VGGTLoadError, build_vggt, get_vggt_config, load_vggt
from tnerf_ns.backbone.preprocess import resize_to_width
from tnerf_ns.encoding.cache import BackboneOutputCache, LRUCache, weights_fingerprint
from tnerf_ns.fields.source_projection import FAR_Z, SourceViews, TriplaneScene
from tnerf_ns.geometry import CanonicalBox
from tnerf_ns.heads.latent_head import LatentHead
from tnerf_ns.heads.triplane_lifting import LiftedViews, TriplaneLifter
from tnerf_ns.scene_context import SceneContext

if TYPE_CHECKING:  # the model config carries the encoder's settings (flat, so that flag names stay stable)
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

PLANE_CACHE_SIZE = 8
"""Scenes whose predicted planes stay cached while the weights do not change (evaluation, viewer)."""


def load_backbone(weights: str, backbone: str) -> VGGT:
    """Pre-trained VGGT weights, or one error that names the ways out (before any training starts)."""
    try:
        return load_vggt(weights, backbone)
    except VGGTLoadError as err:
        raise VGGTLoadError(
            f"{err}\n\nT-NeRF cannot start without its backbone weights ({weights!r} for {backbone}). Either pass a "
            "local copy: --pipeline.model.backbone-weights /path/to/model.safetensors (or its folder), or use the "
            "small backbone, which needs no download: --pipeline.model.backbone vggt-small."
        ) from None


class SceneEncoder(nn.Module):
    """Source views of one scene -> tri-plane ``[3, c, r, r]`` over the canonical box.

    Args:
        config: the model configuration (backbone, resizing, caches, head and lifting settings).
        box: the scene's canonical box (shared with the model).
    """

    uses_time = False
    """Whether predictions depend on a time (the dynamic encoder)."""

    def __init__(self, config: "TNeRFModelConfig", box: CanonicalBox) -> None:
        super().__init__()
        self.config = cfg = config
        patch = get_vggt_config(cfg.backbone).patch_size
        self.image_width = cfg.resolved_image_width
        if self.image_width % patch:
            raise ValueError(f"--pipeline.model.backbone-image-width {self.image_width} is not a multiple of {patch}")
        self.box = box
        self._hidden: Dict[str, VGGT] = {}
        weights = cfg.resolved_backbone_weights
        if weights:
            vggt = load_backbone(weights, cfg.backbone)
            self._hidden["backbone"] = vggt  # frozen and reloaded from its source: kept out of checkpoints
            self.trainable_backbone = False
        else:
            trainable = cfg.train_backbone and cfg.backbone != "vggt-1b"
            if cfg.train_backbone and not trainable:
                CONSOLE.print("[yellow]VGGT-1B stays frozen (train_backbone ignored)")
            vggt = build_vggt(cfg.backbone, seed=0, frozen=not trainable)
            if not trainable:
                vggt.freeze()
            self.backbone = vggt
            self.trainable_backbone = trainable
        self.latent_head = LatentHead(vggt.config, cfg.feature_dim)
        if weights and cfg.init_head_from_point_head and vggt.point_head is not None:
            n = self.latent_head.init_from_point_head(vggt.point_head)
            CONSOLE.print(f"LatentHead trunk: {n} tensors initialised from VGGT's point head")
        self.lifter = TriplaneLifter(
            cfg.feature_dim + (3 if cfg.source_rgb_skip else 0),
            cfg.triplane_resolution,
            cfg.triplane_channels,
            cfg.lift_stride,
            cfg.refine_layers,
        )
        # the projection branch's per-pixel view features (the predicted depth is appended as one more channel)
        self.view_features = nn.Conv2d(cfg.feature_dim, cfg.projection_channels, 1) if cfg.source_projection else None
        self.backbone_cache: LRUCache = LRUCache(cfg.backbone_cache_size)
        self.plane_cache: LRUCache = LRUCache(PLANE_CACHE_SIZE)
        self._disk_cache: Optional[BackboneOutputCache] = None
        self._warned_cache = False
        # loaded weights change the backbone's fingerprint: rebuild the disk cache handle on next use
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_disk_cache", None))
        self.register_load_state_dict_pre_hook(
            lambda module, state, prefix, *args: module._adopt_saved_backbone(state, prefix)
        )

    def _adopt_saved_backbone(self, state: Dict[str, Tensor], prefix: str) -> None:
        """A checkpoint that holds its own backbone (vggt-small runs saved before the shipped pre-trained weights
        became that preset's default) keeps it: loading it onto the pre-trained one would silently mix two models."""
        if "backbone" not in self._hidden or not any(k.startswith(f"{prefix}backbone.") for k in state):
            return
        CONSOLE.print("[yellow]checkpoint holds its own trained backbone: using it (frozen), not the pre-trained one")
        self._hidden.clear()
        self.backbone = build_vggt(self.config.backbone, seed=0, frozen=True)
        self.backbone.to(self.device)
        self.backbone_cache.clear()
        self.plane_cache.clear()

    @property
    def vggt(self) -> VGGT:
        return self._hidden.get("backbone") or self.backbone

    @property
    def device(self) -> torch.device:
        return self.box.centre.device

    def trainable_parameters(self) -> List[nn.Parameter]:
        """Head and lifting (the backbone's parameters are a separate group)."""
        extra = list(self.view_features.parameters()) if self.view_features is not None else []
        return list(self.latent_head.parameters()) + list(self.lifter.parameters()) + extra

    def train(self, mode: bool = True) -> "SceneEncoder":
        super().train(mode)
        if not self.trainable_backbone:
            self.vggt.eval()
        self.plane_cache.clear()  # weights are about to change (or just did)
        return self

    # ------------------------------------------------------------------ backbone
    def resize(self, images: Tensor, intrinsics: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """Photos to the backbone's input width on this device; intrinsics follow."""
        intrinsics = None if intrinsics is None else intrinsics.to(self.device)
        return resize_to_width(images.to(self.device), self.image_width, self.vggt.patch_size, intrinsics)

    def check_source_budget(self, ctx: SceneContext, images: Tensor) -> None:
        groups = 2 if ctx.images_t1 is not None else 1
        grid_h, grid_w = self.vggt.patch_grid(tuple(images.shape[-2:]))
        tokens = groups * images.shape[0] * grid_h * grid_w
        if tokens > self.config.max_source_tokens:
            raise ValueError(
                f"scene {ctx.name}: {images.shape[0]} source views at {tuple(images.shape[-2:])} give {tokens} patch "
                f"tokens, above --pipeline.model.max-source-tokens {self.config.max_source_tokens}; use fewer views "
                "(--pipeline.datamanager.num-source-views) or a smaller --pipeline.model.backbone-image-width"
            )

    @property
    def disk_cache(self) -> Optional[BackboneOutputCache]:
        """The on-disk cache of a frozen backbone's outputs (built on first use, after weights are loaded)."""
        if self.config.backbone_cache_dir is None:
            return None
        if self.trainable_backbone:
            if not self._warned_cache:
                CONSOLE.print("[yellow]--pipeline.model.backbone-cache-dir is ignored: the backbone is being trained "
                              "(its outputs change every step); use --pipeline.model.train-backbone False")  # fmt: skip
                self._warned_cache = True
            return None
        if self._disk_cache is None:
            fingerprint = weights_fingerprint(self.vggt, extra=repr(self.vggt.config))
            self._disk_cache = BackboneOutputCache(
                self.config.backbone_cache_dir, fingerprint, int(self.config.backbone_cache_max_gb * 2**30)
            )
        return self._disk_cache

    def cached(self, key: tuple, compute):
        """Frozen-backbone results per source set (a training backbone changes every step: nothing is stored)."""

        def no_grad_compute():
            with torch.no_grad():
                return compute()

        return self.backbone_cache.get_or_compute(key, no_grad_compute, store=not self.trainable_backbone)

    def aggregate(self, images: Tensor, key: tuple) -> List[Optional[Tensor]]:
        layers = self.latent_head.layers
        if self.trainable_backbone and self.training:
            return self.vggt.aggregate(images[None], layers)

        def compute() -> List[Optional[Tensor]]:
            return self.vggt.aggregate(images[None], layers)

        disk = self.disk_cache
        if disk is None:
            return self.cached(("aggregate", key, tuple(images.shape)), compute)
        return self.cached(
            ("aggregate", key, tuple(images.shape)), lambda: disk.get_or_compute(images, layers, compute)
        )

    # ------------------------------------------------------------------ head and lifting
    def head_and_lift(
        self,
        aggregated: List[Optional[Tensor]],
        images: Tensor,
        intrinsics: Tensor,
        ctx: SceneContext,
        colours: Optional[Tensor] = None,
    ) -> Tuple[TriplaneScene, LiftedViews]:
        """LatentHead on the aggregated layers, then lifting of the per-pixel latents onto the tri-plane; with the
        projection branch the prediction keeps the source views (``colours``: the photos it samples, by default the
        backbone's ``images``)."""
        cfg = self.config
        aggregated = [None if t is None else t.float() for t in aggregated]
        if not cfg.backbone_features:
            aggregated = [None if t is None else torch.zeros_like(t) for t in aggregated]
        head = self.latent_head(aggregated, tuple(images.shape[-2:]), self.vggt.patch_start_idx)
        c2w = self.box.cameras_to_canonical(ctx.c2w.to(self.device))
        features = head["features"][0]
        if cfg.source_rgb_skip:
            features = torch.cat([features, images], dim=1)
        oracle_z = None
        if cfg.lift_depth == "ground-truth":
            if ctx.depth is None:
                raise ValueError(f"scene {ctx.name}: --pipeline.model.lift-depth ground-truth needs depth maps of the "
                                 "source views, and this data has none")  # fmt: skip
            oracle_z = ctx.depth.to(self.device) / self.box.half_extent  # dataset -> canonical units
        # the sweep refines what a trained head predicts; training keeps the head's own depth (and its gradient)
        sweep = images if cfg.lift_depth == "photo-consistent" and not self.training else None
        planes, lifted = self.lifter(features, head["depth_logit"][0], head["weight_logit"][0], c2w, intrinsics,
                                     oracle_z=oracle_z, sweep_colours=sweep)  # fmt: skip
        planes = planes if cfg.triplane_features else torch.zeros_like(planes)
        views = None
        if self.view_features is not None and cfg.projected_views:
            views = self.source_views(head["features"][0], lifted, images if colours is None else colours, c2w,
                                      intrinsics)  # fmt: skip
        return TriplaneScene(planes, views), lifted

    def source_views(
        self, features: Tensor, lifted: LiftedViews, colours: Tensor, c2w: Tensor, intrinsics: Tensor
    ) -> SourceViews:
        """The projection branch's view maps: head features reduced to ``projection_channels`` channels and the
        lifted (predicted, or oracle) z-depth; colours capped at ``source_colour_width``."""
        hw = tuple(features.shape[-2:])
        z = torch.where(lifted.valid, lifted.t / lifted.dir_norm, torch.full_like(lifted.t, FAR_Z))
        z = F.interpolate(z[:, None], size=hw, mode="bilinear", align_corners=False)
        maps = torch.cat([self.view_features(features), z], dim=1)
        opacity = F.interpolate(lifted.weights[:, None], size=hw, mode="bilinear", align_corners=False)
        colours = colours.to(self.device)
        if colours.shape[-1] > self.config.source_colour_width:
            colours = resize_to_width(colours, self.config.source_colour_width, 1)[0]
        return SourceViews.from_cameras(colours, maps, c2w, intrinsics, hw, opacity)

    def forward(self, ctx: SceneContext) -> Tuple[TriplaneScene, LiftedViews]:
        """Source views of one scene -> tri-plane (and the lifted source pixels, for the source-view losses)."""
        if self.vggt.device != self.device:
            self.vggt.to(self.device)
        images, intr = self.resize(ctx.images, ctx.intrinsics)
        self.check_source_budget(ctx, images)
        return self.head_and_lift(self.aggregate(images, ctx.key), images, intr, ctx, colours=ctx.images)

    def cache_key(self, ctx: SceneContext) -> tuple:
        """What identifies a prediction while the weights stay fixed."""
        return ctx.key

    def encode_cached(self, ctx: SceneContext) -> TriplaneScene:
        """Planes, encoded once per source set while the weights do not change (evaluation, rendering, viewer)."""
        if self.training:
            return self(ctx)[0]
        return self.plane_cache.get_or_compute(self.cache_key(ctx), lambda: self(ctx)[0])
