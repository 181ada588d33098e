"""The ``tnerf`` model: photos -> VGGT -> LatentHead -> tri-plane -> shared MLP -> volume rendering.

A prediction is made from a :class:`~tnerf_ns.datamanagers.context.SceneContext` (the source views of one scene). The
model renders rays of that scene with hierarchical sampling (uniform coarse samples, then importance samples from the
field's own density), and is trained with a photometric loss, a 3-D loss against ground-truth grids, a depth loss,
source-view depth/mask losses for the lifting, and a tri-plane regulariser.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.model_components.ray_samplers import PDFSampler, UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, DepthRenderer, RGBRenderer
from nerfstudio.model_components.scene_colliders import SceneCollider
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn
from torch.nn import Parameter
from torchmetrics.functional import structural_similarity_index_measure
from torchmetrics.image import PeakSignalNoiseRatio

from tnerf_ns.backbone import build_vggt, load_vggt
from tnerf_ns.backbone.output_cache import BackboneOutputCache, weights_fingerprint
from tnerf_ns.datamanagers.context import SceneContext
from tnerf_ns.fields.triplane_field import TriplaneField
from tnerf_ns.heads.latent_head import LatentHead
from tnerf_ns.heads.triplane_lifting import TriplaneLifter


class BoxCollider(SceneCollider):
    """Near/far from the scene box, robust to axis-parallel rays (nerfstudio's AABB collider can produce NaN when a
    direction component is exactly -1e-6); rays that miss get an empty segment."""

    def __init__(self, aabb: Tensor) -> None:
        super().__init__()
        self.aabb = aabb

    def set_nears_and_fars(self, ray_bundle: RayBundle) -> RayBundle:
        aabb = self.aabb.to(ray_bundle.origins.device)
        d = ray_bundle.directions
        inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
        t0 = (aabb[0] - ray_bundle.origins) * inv
        t1 = (aabb[1] - ray_bundle.origins) * inv
        nears = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
        fars = torch.maximum(t0, t1).amin(-1)
        miss = fars <= nears
        # a miss would otherwise be sampled wherever its slabs happen to meet, possibly 1e5 units away
        nears = torch.where(miss, torch.zeros_like(nears), nears)
        fars = torch.where(miss, torch.full_like(fars, 1e-6), fars)
        ray_bundle.nears, ray_bundle.fars = nears[..., None], fars[..., None]
        return ray_bundle


@dataclass
class TNeRFModelConfig(ModelConfig):
    """Feed-forward tri-plane radiance field on a VGGT backbone."""

    _target: Type = field(default_factory=lambda: TNeRFModel)
    backbone: Literal["vggt-small", "vggt-1b"] = "vggt-small"
    """VGGT configuration: the real VGGT-1B, or the small config (random init; tests, CPU demos, offline)."""
    backbone_weights: Optional[str] = None
    """Pre-trained weights: Hugging Face repo id (e.g. facebook/VGGT-1B), file or folder. None: random init,
    saved with the checkpoints. Pre-trained weights are not saved; they are reloaded from here."""
    train_backbone: bool = True
    """Train the backbone too (only without pre-trained weights; VGGT-1B always stays frozen)."""
    backbone_image_width: int = 140
    """Width the source photos are resized to for the backbone (multiple of 14; 518 for VGGT-1B)."""
    max_source_tokens: int = 200_000
    """Refuse source sets with more patch tokens than this (views x patches per view): global attention is quadratic
    in it, so more views than memory allows fail with a clear message instead of exhausting the machine."""
    backbone_cache_size: int = 64
    """Source sets whose frozen-backbone outputs stay cached in memory (a step then costs head, field and rendering
    only)."""
    backbone_cache_dir: Optional[Path] = None
    """Folder caching frozen-backbone outputs on disk, shared by runs and by all ranks (keyed by backbone weights,
    layers and source pixels, so stale entries are never served). None: memory cache only."""
    backbone_cache_max_gb: float = 20.0
    """Size limit of the on-disk backbone cache; least recently used entries are deleted beyond it."""
    init_head_from_point_head: bool = True
    """With pre-trained backbone weights, start the LatentHead's DPT trunk from VGGT's point head."""
    pretrained: Optional[Path] = None
    """A trained T-NeRF checkpoint (``step-*.ckpt`` or its folder) to start from, e.g. for scene mode."""
    feature_dim: int = 32
    """Per-pixel latent width of the LatentHead."""
    triplane_resolution: int = 64
    """Side of each plane."""
    triplane_channels: int = 32
    """Channels per plane."""
    source_rgb_skip: bool = True
    """Append the source pixels' colour to their latent features before lifting (colour reaches the planes
    directly instead of through the backbone)."""
    lift_stride: int = 2
    """Source maps are pooled by this factor before lifting."""
    refine_layers: int = 2
    """Residual convolutions refining the splatted planes."""
    mlp_width: int = 64
    """Width of the shared decoder MLP."""
    mlp_layers: int = 2
    """Layers of the shared decoder MLP."""
    position_frequencies: int = 4
    """Frequencies of the positional encoding added to the tri-plane features."""
    direction_levels: int = 3
    """Spherical-harmonics levels of the view-direction encoding (0: no view dependence)."""
    num_coarse_samples: int = 48
    """Uniform samples per ray."""
    num_fine_samples: int = 48
    """Importance samples per ray, drawn from the coarse pass's weights."""
    background_color: Literal["white", "black", "random"] = "white"
    """Background behind the scene box."""
    rgb_loss_mult: float = 1.0
    """Photometric loss (fine pass)."""
    coarse_rgb_loss_mult: float = 0.5
    """Photometric loss of the coarse pass."""
    depth_loss_mult: float = 0.05
    """L1 loss on rendered z-depth where ground truth exists."""
    point_opacity_loss_mult: float = 1.0
    """3-D loss: opacity of a reference step at query points (empty points must be transparent)."""
    point_rgb_loss_mult: float = 0.5
    """3-D loss: colour at occupied query points."""
    point_reference_step: float = 0.02
    """Canonical step length whose opacity the 3-D loss compares."""
    source_depth_loss_mult: float = 0.5
    """LatentHead depth against the source views' ground-truth depth (fraction of the ray inside the box)."""
    source_weight_loss_mult: float = 0.1
    """LatentHead splat weight against the source views' ground-truth opacity."""
    triplane_l2_mult: float = 1e-4
    """Tri-plane regulariser: mean squared feature magnitude."""
    triplane_tv_mult: float = 1e-3
    """Tri-plane regulariser: total variation."""
    compute_lpips: bool = True
    """Report LPIPS when its AlexNet weights can be loaded (offline machines: skipped with a warning)."""


class TNeRFModel(Model):
    """See :class:`TNeRFModelConfig`."""

    config: TNeRFModelConfig

    # ------------------------------------------------------------------ construction
    def populate_modules(self) -> None:
        super().populate_modules()
        cfg = self.config
        if cfg.backbone_image_width % 14:
            raise ValueError(
                f"--pipeline.model.backbone-image-width {cfg.backbone_image_width} is not a multiple of 14"
            )
        self._hidden: Dict[str, nn.Module] = {}
        if cfg.backbone_weights:
            vggt = load_vggt(cfg.backbone_weights, cfg.backbone)
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
        if cfg.backbone_weights and cfg.init_head_from_point_head and vggt.point_head is not None:
            n = self.latent_head.init_from_point_head(vggt.point_head)
            CONSOLE.print(f"LatentHead trunk: {n} tensors initialised from VGGT's point head")
        self.lifter = TriplaneLifter(
            cfg.feature_dim + (3 if cfg.source_rgb_skip else 0),
            cfg.triplane_resolution,
            cfg.triplane_channels,
            cfg.lift_stride,
            cfg.refine_layers,
        )
        self.field = TriplaneField(
            cfg.triplane_channels, cfg.mlp_width, cfg.mlp_layers, cfg.position_frequencies, cfg.direction_levels
        )
        self.collider = BoxCollider(self.scene_box.aabb.float())
        self.sampler_uniform = UniformSampler(num_samples=cfg.num_coarse_samples)
        self.sampler_pdf = PDFSampler(num_samples=cfg.num_fine_samples, include_original=True)
        self.renderer_rgb = RGBRenderer(background_color=cfg.background_color)
        self.renderer_accumulation = AccumulationRenderer()
        self.renderer_depth = DepthRenderer(method="expected")
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self._lpips = None
        self._lpips_failed = not cfg.compute_lpips
        aabb = self.scene_box.aabb.float()
        self.register_buffer("box_centre", aabb.mean(0), persistent=False)
        self.register_buffer("box_half", (aabb[1] - aabb[0]).max() / 2, persistent=False)
        self._backbone_cache: "OrderedDict[tuple, List]" = OrderedDict()
        self._plane_cache: "OrderedDict[tuple, Tuple[Tensor, Dict]]" = OrderedDict()
        self.context_provider = None  # set by the pipeline
        self._disk_cache: Optional[BackboneOutputCache] = None
        self._warned_cache = False
        # loaded weights change the backbone's fingerprint: rebuild the disk cache handle on next use
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_disk_cache", None))
        if cfg.pretrained is not None:
            self.load_pretrained(cfg.pretrained)

    @property
    def vggt(self):
        return self._hidden.get("backbone") or self.backbone

    def load_pretrained(self, path: Path) -> None:
        """Load head, field (and a saved backbone) from a T-NeRF checkpoint; safe loading only."""
        path = Path(path)
        if path.is_dir():
            ckpts = sorted(path.glob("step-*.ckpt"))
            if not ckpts:
                raise FileNotFoundError(f"{path}: no step-*.ckpt checkpoint found")
            path = ckpts[-1]
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["pipeline"]
        except Exception as err:
            raise RuntimeError(f"{path}: cannot read T-NeRF checkpoint ({err})") from err
        prefix = "_model."
        own = self.state_dict()
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        weights = {k.removeprefix("module."): v for k, v in weights.items()}
        mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
        if mismatched:
            raise RuntimeError(f"{path}: checkpoint does not match this model's configuration ({mismatched[:3]} ...)")
        missing, _ = self.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)
        missing = [k for k in missing if not k.startswith(("box_", "device_indicator"))]
        if missing:
            raise RuntimeError(f"{path}: checkpoint lacks {len(missing)} weights of this model ({missing[:3]} ...)")
        CONSOLE.print(f"T-NeRF weights loaded from {path}")

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = {
            "fields": list(self.latent_head.parameters()) + list(self.lifter.parameters())
            + list(self.field.parameters())
        }  # fmt: skip
        if self.trainable_backbone:
            groups["backbone"] = [p for p in self.backbone.parameters() if p.requires_grad]
        return groups

    def train(self, mode: bool = True) -> "TNeRFModel":
        super().train(mode)
        if not self.trainable_backbone:
            self.vggt.eval()
        self._plane_cache.clear()  # weights are about to change (or just did)
        return self

    # ------------------------------------------------------------------ geometry helpers
    def to_canonical(self, positions: Tensor) -> Tensor:
        """Dataset coordinates -> canonical box [-1, 1]^3 (the tri-plane's domain)."""
        return (positions - self.box_centre) / self.box_half

    def canonical_cameras(self, c2w: Tensor) -> Tensor:
        out = c2w.clone()
        out[..., :3, 3] = self.to_canonical(c2w[..., :3, 3])
        return out

    # ------------------------------------------------------------------ encoding
    def _resize(self, images: Tensor, intrinsics: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """Photos to the backbone's input width (height rounded to patches); intrinsics follow."""
        images = images.to(self.device)
        h, w = images.shape[-2:]
        new_w = self.config.backbone_image_width
        new_h = max(14, round(h * new_w / w / 14) * 14)
        if (new_h, new_w) != (h, w):
            images = F.interpolate(images, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
            if intrinsics is not None:
                intrinsics = intrinsics.to(self.device).clone()
                intrinsics[:, 0] *= new_w / w
                intrinsics[:, 1] *= new_h / h
        elif intrinsics is not None:
            intrinsics = intrinsics.to(self.device)
        return images.clamp(0, 1), intrinsics

    @property
    def backbone_disk_cache(self) -> Optional[BackboneOutputCache]:
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

    def _aggregate(self, images: Tensor, key: tuple) -> List[Optional[Tensor]]:
        layers = self.latent_head.dpt.layer_idx
        if self.trainable_backbone and self.training:
            return self.vggt.aggregate(images[None], layers)

        def compute() -> List[Optional[Tensor]]:
            return self.vggt.aggregate(images[None], layers)

        disk = self.backbone_disk_cache
        if disk is None:
            return self._cached(("aggregate", key, tuple(images.shape)), compute)
        return self._cached(
            ("aggregate", key, tuple(images.shape)), lambda: disk.get_or_compute(images, layers, compute)
        )

    def _cached(self, key: tuple, compute):
        """Frozen-backbone results per source set (a training backbone changes every step: nothing is cached)."""
        if key in self._backbone_cache:
            self._backbone_cache.move_to_end(key)
            return self._backbone_cache[key]
        with torch.no_grad():
            value = compute()
        if not self.trainable_backbone:
            self._backbone_cache[key] = value
            while len(self._backbone_cache) > self.config.backbone_cache_size:
                self._backbone_cache.popitem(last=False)
        return value

    def head_and_lift(
        self, aggregated: List[Optional[Tensor]], images: Tensor, intrinsics: Tensor, ctx: SceneContext
    ) -> Tuple[Float[Tensor, "3 c r r"], Dict[str, Tensor]]:
        """LatentHead on the aggregated layers, then lifting of the per-pixel latents onto the tri-plane."""
        aggregated = [None if t is None else t.float() for t in aggregated]
        head = self.latent_head(aggregated, tuple(images.shape[-2:]), self.vggt.aggregator.patch_start_idx)
        c2w = self.canonical_cameras(ctx.c2w.to(self.device))
        features = head["features"][0]
        if self.config.source_rgb_skip:
            features = torch.cat([features, images], dim=1)
        return self.lifter(features, head["depth_logit"][0], head["weight_logit"][0], c2w, intrinsics)

    def check_source_budget(self, ctx: SceneContext, images: Tensor) -> None:
        groups = 2 if ctx.images_t1 is not None else 1
        tokens = groups * images.shape[0] * (images.shape[-2] // 14) * (images.shape[-1] // 14)
        if tokens > self.config.max_source_tokens:
            raise ValueError(
                f"scene {ctx.name}: {images.shape[0]} source views at {tuple(images.shape[-2:])} give {tokens} patch "
                f"tokens, above --pipeline.model.max-source-tokens {self.config.max_source_tokens}; use fewer views "
                "(--pipeline.datamanager.num-source-views) or a smaller --pipeline.model.backbone-image-width"
            )

    def encode(self, ctx: SceneContext) -> Tuple[Float[Tensor, "3 c r r"], Dict[str, Tensor]]:
        """Source views of one scene -> tri-plane (and the lifting's intermediate maps)."""
        if self.vggt.device != self.device:
            self.vggt.to(self.device)
        images, intr = self._resize(ctx.images, ctx.intrinsics)
        self.check_source_budget(ctx, images)
        return self.head_and_lift(self._aggregate(images, ctx.key), images, intr, ctx)

    def cache_key(self, ctx: SceneContext) -> tuple:
        """What identifies a prediction while the weights stay fixed."""
        return ctx.key

    def encode_cached(self, ctx: SceneContext) -> Tensor:
        """Encode once per source set while the weights do not change (evaluation, rendering, viewer)."""
        if self.training:
            return self.encode(ctx)[0]
        key = self.cache_key(ctx)
        if key not in self._plane_cache:
            self._plane_cache[key] = self.encode(ctx)[0]
            while len(self._plane_cache) > 8:
                self._plane_cache.popitem(last=False)
        return self._plane_cache[key]

    # ------------------------------------------------------------------ rendering
    def render(self, ray_bundle: RayBundle, planes: Tensor) -> Dict[str, Tensor]:
        """Hierarchical volume rendering of rays through one scene's tri-plane."""
        ray_bundle = self.collider(ray_bundle)
        coarse_samples = self.sampler_uniform(ray_bundle)
        coarse = self.field.get_outputs_with_planes(coarse_samples, planes, self.to_canonical)
        coarse_weights = coarse_samples.get_weights(coarse[FieldHeadNames.DENSITY])
        rgb_coarse = self.renderer_rgb(rgb=coarse[FieldHeadNames.RGB], weights=coarse_weights)
        # importance samples follow the coarse weights but are not a function to learn through (and the PDF
        # inversion's 0/0 guards would turn into NaN gradients)
        fine_samples = self.sampler_pdf(ray_bundle, coarse_samples, coarse_weights.detach())
        fine = self.field.get_outputs_with_planes(fine_samples, planes, self.to_canonical)
        weights = fine_samples.get_weights(fine[FieldHeadNames.DENSITY])
        rgb = self.renderer_rgb(rgb=fine[FieldHeadNames.RGB], weights=weights)
        accumulation = self.renderer_accumulation(weights)
        depth = self.renderer_depth(weights, fine_samples)
        outputs = {"rgb": rgb, "rgb_coarse": rgb_coarse, "accumulation": accumulation, "depth": depth}
        if ray_bundle.metadata and "directions_norm" in ray_bundle.metadata:
            outputs["z_depth"] = depth / ray_bundle.metadata["directions_norm"]
        return outputs

    def context_for_rays(self, ray_bundle: RayBundle) -> SceneContext:
        if self.context_provider is None:
            raise RuntimeError("T-NeRF needs a context provider (set up through TNeRFPipeline)")
        scene = self.context_provider.default_scene
        if ray_bundle.metadata and "scene_idx" in ray_bundle.metadata:
            scene = int(ray_bundle.metadata["scene_idx"].reshape(-1)[0])
        return self.context_provider.context(scene)

    def context_for_camera(self, camera: Cameras) -> SceneContext:
        """The scene context a camera sees (the time is used by the dynamic model)."""
        return self.context_provider.context(self.context_provider.scene_for_camera(camera))

    def forward(self, ray_bundle: RayBundle, context: Optional[SceneContext] = None) -> Dict:  # type: ignore[override]
        if context is None:
            context = self.context_for_rays(ray_bundle)
        return self.get_outputs(ray_bundle, context)

    def get_outputs(self, ray_bundle: RayBundle, context: Optional[SceneContext] = None) -> Dict:  # type: ignore[override]
        if context is None:
            context = self.context_for_rays(ray_bundle)
        if not self.training:
            return self.render(ray_bundle, self.encode_cached(context))
        planes, lifted = self.encode(context)
        outputs = self.render(ray_bundle, planes)
        outputs["planes"] = planes
        outputs["lifted"] = lifted
        if context.points is not None:
            pts = context.points.positions.to(self.device)
            dirs = F.normalize(torch.randn_like(pts), dim=-1)
            density, rgb = self.field.decode(planes, self.to_canonical(pts), dirs)
            outputs["point_density"] = density[:, 0]  # per canonical unit
            outputs["point_rgb"] = rgb
        return outputs

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box=None) -> Dict[str, Tensor]:
        """Encode the camera's scene once (cached), then render the image in chunks."""
        if self.context_provider is None:
            raise RuntimeError("T-NeRF needs a context provider (set up through TNeRFPipeline)")
        ctx = self.context_for_camera(camera)
        planes = self.encode_cached(ctx) if not self.training else self.encode(ctx)[0]
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True, obb_box=obb_box)
        height, width = bundle.origins.shape[:2]
        chunks: Dict[str, List[Tensor]] = {}
        n = height * width
        for start in range(0, n, self.config.eval_num_rays_per_chunk):
            chunk = bundle.get_row_major_sliced_ray_bundle(start, start + self.config.eval_num_rays_per_chunk)
            for key, value in self.render(chunk.to(self.device), planes).items():
                chunks.setdefault(key, []).append(value)
        return {k: torch.cat(v).view(height, width, -1) for k, v in chunks.items()}

    # ------------------------------------------------------------------ losses and metrics
    def _gt_rgb(self, outputs: Dict, image: Tensor, key: str = "rgb") -> Tuple[Tensor, Tensor]:
        pred, gt = self.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs[key], pred_accumulation=outputs["accumulation"], gt_image=image.to(self.device)
        )
        return pred, gt

    def get_metrics_dict(self, outputs: Dict, batch: Dict) -> Dict[str, Tensor]:
        image = batch["image"].to(self.device)
        return {"psnr": self.psnr(outputs["rgb"].detach(), self.renderer_rgb.blend_background(image))}

    def get_loss_dict(self, outputs: Dict, batch: Dict, metrics_dict: Optional[Dict] = None) -> Dict[str, Tensor]:
        cfg = self.config
        image = batch["image"].to(self.device)
        pred, gt = self._gt_rgb(outputs, image)
        pred_c, gt_c = self._gt_rgb(outputs, image, "rgb_coarse")
        loss = {"rgb_loss": cfg.rgb_loss_mult * F.mse_loss(pred, gt)}
        if cfg.coarse_rgb_loss_mult > 0:
            loss["rgb_coarse_loss"] = cfg.coarse_rgb_loss_mult * F.mse_loss(pred_c, gt_c)
        if not self.training:
            return loss
        if cfg.depth_loss_mult > 0 and "depth" in batch and "z_depth" in outputs:
            depth = batch["depth"].to(self.device) / self.box_half  # dataset -> canonical units, like the box
            valid = depth > 0
            if valid.any():
                pred_z = outputs["z_depth"][..., 0] / self.box_half
                loss["depth_loss"] = cfg.depth_loss_mult * (pred_z[valid] - depth[valid]).abs().mean()
        if "point_density" in outputs:
            ctx: SceneContext = batch["context"]
            pts = ctx.points
            step = cfg.point_reference_step
            pred_opacity = 1 - torch.exp(-outputs["point_density"] * step)
            # ground truth is per dataset unit; a canonical unit is box_half dataset units long
            gt_opacity = 1 - torch.exp(-pts.density.to(self.device) * self.box_half * step)
            loss["point_opacity_loss"] = cfg.point_opacity_loss_mult * F.mse_loss(pred_opacity, gt_opacity)
            occupied = (pts.kind == 0).to(self.device)
            if occupied.any() and cfg.point_rgb_loss_mult > 0:
                err = (outputs["point_rgb"][occupied] - pts.rgb.to(self.device)[occupied]).pow(2).sum(-1)
                loss["point_rgb_loss"] = cfg.point_rgb_loss_mult * err.mean()
        loss.update(self._source_losses(outputs.get("lifted"), batch.get("context")))
        planes = outputs["planes"]
        if cfg.triplane_l2_mult > 0:
            loss["triplane_l2"] = cfg.triplane_l2_mult * planes.pow(2).mean()
        if cfg.triplane_tv_mult > 0:
            tv = (planes[..., 1:, :] - planes[..., :-1, :]).abs().mean() + (
                planes[..., 1:] - planes[..., :-1]
            ).abs().mean()
            loss["triplane_tv"] = cfg.triplane_tv_mult * tv
        return loss

    def _source_losses(self, lifted: Optional[Dict], ctx: Optional[SceneContext]) -> Dict[str, Tensor]:
        """Supervise the lifting on the source views: depth (as a fraction of the ray in the box) and weight."""
        cfg = self.config
        if lifted is None or ctx is None:
            return {}
        out: Dict[str, Tensor] = {}
        h, w = lifted["t"].shape[-2:]
        alpha = F.adaptive_avg_pool2d(ctx.alpha.to(self.device)[:, None], (h, w))[:, 0]
        valid = lifted["valid"]
        if cfg.source_weight_loss_mult > 0 and valid.any():
            out["source_weight_loss"] = cfg.source_weight_loss_mult * F.binary_cross_entropy_with_logits(
                lifted["weight_logit"][valid], alpha[valid].clamp(0, 1)
            )
        if cfg.source_depth_loss_mult > 0 and ctx.depth is not None:
            z = F.interpolate(ctx.depth.to(self.device)[:, None], size=(h, w), mode="nearest")[:, 0] / self.box_half
            t_gt = z * lifted["dir_norm"]
            span = (lifted["t_far"] - lifted["t_near"]).clamp_min(1e-4)
            frac_gt = ((t_gt - lifted["t_near"]) / span).clamp(0, 1)
            mask = (z > 0) & valid & (alpha > 0.5)
            if mask.any():
                out["source_depth_loss"] = cfg.source_depth_loss_mult * (
                    (lifted["fraction"][mask] - frac_gt[mask]).abs().mean()
                )
        return out

    def _lpips_metric(self):
        if self._lpips is None and not self._lpips_failed:
            try:
                from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._lpips = LearnedPerceptualImagePatchSimilarity(normalize=True).to(self.device)
            except Exception as err:  # offline: the AlexNet weights cannot be downloaded
                self._lpips_failed = True
                CONSOLE.print(f"[yellow]LPIPS disabled: its AlexNet weights could not be loaded ({type(err).__name__})")
        return self._lpips

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        gt = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        rgb = outputs["rgb"]
        acc = colormaps.apply_colormap(outputs["accumulation"])
        depth = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
        gt_nchw = gt.permute(2, 0, 1)[None]
        rgb_nchw = rgb.permute(2, 0, 1)[None].clamp(0, 1)
        metrics = {
            "psnr": float(self.psnr(rgb_nchw, gt_nchw).item()),
            "ssim": float(structural_similarity_index_measure(rgb_nchw, gt_nchw, data_range=1.0)),
        }
        lpips = self._lpips_metric()
        if lpips is not None:
            metrics["lpips"] = float(lpips(rgb_nchw, gt_nchw))
        if "depth_image" in batch:
            gt_depth = batch["depth_image"].to(self.device)[..., 0]
            valid = gt_depth > 0
            if valid.any() and "z_depth" in outputs:
                metrics["depth_abs_rel"] = float(
                    ((outputs["z_depth"][..., 0][valid] - gt_depth[valid]).abs() / gt_depth[valid]).mean()
                )
        images = {"img": torch.cat([gt, rgb], dim=1), "accumulation": acc, "depth": depth}
        return metrics, images
