"""The ``tnerf`` model: a scene encoder (source views -> tri-plane, or Plan A's MLP), the field decoding the prediction,
hierarchical volume rendering and the losses of :mod:`tnerf_ns.losses`; ``tnerf-dynamic`` swaps the encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.models.base_model import Model, ModelConfig
from torch import Tensor
from torch.nn import Parameter

from tnerf_ns.backbone.loading import DEFAULT_REPO, PRESET_INPUT_WIDTH, PRESET_WEIGHTS
from tnerf_ns.encoding import PLANE_CACHE_SIZE, LRUCache, SceneEncoder
from tnerf_ns.encoding.hyper_encoder import HyperSceneEncoder, make_hyper_field
from tnerf_ns.fields.scene_field import SceneConditionedField
from tnerf_ns.fields.source_projection import Prediction, planes_of
from tnerf_ns.fields.triplane_field import TriplaneField
from tnerf_ns.geometry import CanonicalBox
from tnerf_ns.models.checkpoints import load_model_weights, migrate_state_dict, shipped_head
from tnerf_ns.models.image_metrics import ImageMetrics
from tnerf_ns.models.loss_terms import model_losses
from tnerf_ns.models.triplane_renderer import TriplaneRenderer
from tnerf_ns.scene_context import ContextSource, SceneContext

FAR_DEPTH = 1e6  # depth reported for rays that see nothing (free space for the TSDF exporter)


@dataclass
class TNeRFModelConfig(ModelConfig):
    """Feed-forward tri-plane radiance field on a VGGT backbone."""

    _target: Type = field(default_factory=lambda: TNeRFModel)
    backbone: Literal["vggt-small", "vggt-1b"] = "vggt-1b"
    """VGGT configuration: VGGT-1B (the method), or the small config (tests, CPU demos, offline machines)."""
    backbone_weights: Optional[str] = DEFAULT_REPO
    """Pre-trained weights (frozen, not saved: reloaded from here): Hugging Face repo id, file or folder. The default
    follows --pipeline.model.backbone: facebook/VGGT-1B for vggt-1b; for vggt-small the shipped weights pre-trained on
    generated scenes (tnerf_ns/weights/vggt-small-synthetic.safetensors). None: random init, saved in checkpoints."""
    train_backbone: bool = True
    """Train a random-init backbone with the model (only with --pipeline.model.backbone-weights None)."""
    backbone_image_width: Optional[int] = None
    """Width the source photos are resized to for the backbone (multiple of 14). None: the preset's, 518 for
    vggt-1b, 140 for vggt-small."""
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
    """Trained T-NeRF weights to start from (e.g. scene mode): a ``step-*.ckpt`` or its folder, an exported head
    folder (scripts/export_head.py), or a Hugging Face repo id holding one."""
    shipped_head: bool = True
    """Scene mode without --pipeline.model.pretrained starts from the head shipped for the backbone (tnerf_ns/weights)."""
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
    lift_depth: Literal["predicted", "photo-consistent", "ground-truth"] = "photo-consistent"
    """Depth of lifted source pixels: the LatentHead's; that refined at inference by photo-consistency across the
    source views (tnerf_ns/heads/depth_sweep.py; training lifts the head's own); or the data's (diagnosis: oracle)."""
    backbone_features: bool = True
    """False: the LatentHead reads zeros instead of the backbone's tokens (diagnosis: what the backbone carries)."""
    triplane_features: bool = True
    """False: the field reads zero planes (diagnosis: what the tri-plane carries)."""
    refine_layers: int = 2
    """Residual convolutions refining the splatted planes."""
    source_projection: bool = True
    """The projection branch: the field reads each query's projections into the source views and blends their colours."""
    projection_channels: int = 8
    """Per-pixel head features the projection branch samples (the predicted depth is one channel more)."""
    projected_views: bool = True
    """False: predictions carry no source views, the field reads planes only (diagnosis: what the branch carries)."""
    projection_hidden: int = 16
    """Width of the projection branch's per-view code."""
    projection_surface_votes: bool = False
    """The projection branch also fuses the views' depth maps (a view whose surface passes through a point votes it solid)."""
    source_colour_width: int = 400
    """The photos the projection branch samples are downscaled to at most this width (memory per scene)."""
    representation: Literal["triplane", "mlp", "mlp-film"] = "triplane"
    """What the head predicts per scene: a tri-plane decoded by a shared MLP; or Plan A, the scene's MLP itself from a
    hyper-network on the backbone's tokens, every weight and bias (mlp) or a FiLM modulation of a shared MLP."""
    mlp_width: int = 64
    """Width of the decoder MLP (shared, or predicted per scene)."""
    mlp_layers: int = 2
    """Hidden layers of the decoder MLP."""
    hyper_code_dim: int = 256
    """mlp representations: width of the hyper-network's view and scene codes."""
    hyper_position_frequencies: int = 6
    """mlp representations: frequencies of the positional encoding the predicted MLP reads."""
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
    surroundings: Literal["auto", "sources", "none"] = "auto"
    """What rays leaving the box see: sources = the surroundings in the source photos (a plane sweep beyond the box,
    fields/source_surroundings.py); none = the background colour; auto = sources when the box is placed on a capture."""
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
    weight_average_decay: float = 0.995
    """Decay of a moving average of the trained weights written into the model at the last step (the final checkpoint
    holds it; tnerf_ns/models/weight_average.py, run by the pipeline). 0: the last iterate; scene mode always is."""
    eval_sampler: Literal["occupancy", "hierarchical"] = "occupancy"
    """Rendering of whole images (ns-eval, ns-render, viewer): skip empty space with a per-scene occupancy grid of the
    predicted density, or the training path (48 uniform + 48 importance samples per ray, the reference)."""
    occupancy_resolution: int = 64
    """Cells per side of the occupancy grid (built once per prediction, 8 density samples per cell)."""
    occupancy_threshold: float = 0.01
    """A cell is occupied when a one-cell step through it is at least this opaque (then dilated by one cell)."""
    occupancy_step: float = 1 / 128
    """Step along the rays of the occupancy path, in canonical units (the box is 2 long)."""
    compute_lpips: bool = True
    """Report LPIPS when its AlexNet weights can be loaded (offline machines: skipped with a warning)."""

    @property
    def resolved_backbone_weights(self) -> Optional[str]:
        """The weights to load (None: random init), after the preset default is applied."""
        if self.backbone_weights == DEFAULT_REPO:
            return PRESET_WEIGHTS[self.backbone]
        return self.backbone_weights

    @property
    def resolved_image_width(self) -> int:
        return self.backbone_image_width or PRESET_INPUT_WIDTH[self.backbone]

    def make_encoder(self, box: CanonicalBox) -> SceneEncoder:
        """The encoder this configuration describes (the dynamic configuration returns the dynamic one)."""
        return SceneEncoder(self, box) if self.representation == "triplane" else HyperSceneEncoder(self, box)

    def make_field(self) -> SceneConditionedField:
        return TriplaneField.from_config(self) if self.representation == "triplane" else make_hyper_field(self)


class TNeRFModel(Model):
    """See :class:`TNeRFModelConfig`. Construct with ``context_provider=`` (a :class:`ContextSource`): cameras of
    evaluation, the viewer and ``ns-render`` carry no photos, the provider routes them to their scene."""

    config: TNeRFModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        cfg = self.config
        self.context_provider: Optional[ContextSource] = self.kwargs.get("context_provider")
        placement = self.kwargs.get("placement")  # a capture's box, from its cameras (tnerf_ns.placement)
        self.box = CanonicalBox(self.scene_box.aabb) if placement is None else CanonicalBox.from_placement(placement)
        self.encoder = cfg.make_encoder(self.box)
        self.field = cfg.make_field()
        surroundings = cfg.surroundings == "sources" or (cfg.surroundings == "auto" and placement is not None)
        self.renderer = TriplaneRenderer(cfg, self.box, surroundings)
        self.renderer_rgb = self.renderer.renderer_rgb
        self.occupancy_cache = LRUCache(PLANE_CACHE_SIZE)
        self.metrics = ImageMetrics(cfg.compute_lpips)
        # checkpoints written before the encoder module name its parts at the top level
        self.register_load_state_dict_pre_hook(lambda module, state, prefix, *args: migrate_state_dict(state, prefix))
        pretrained = cfg.pretrained or (shipped_head(cfg) if self.kwargs.get("scene_mode") else None)
        if pretrained is not None:  # ns-eval, ns-render, viewer: the run's checkpoint follows, so it may be gone
            load_model_weights(self, pretrained, missing_ok=bool(self.kwargs.get("run_checkpoint_follows")))

    def train(self, mode: bool = True) -> "TNeRFModel":
        super().train(mode)
        self.occupancy_cache.clear()  # the field is about to change (or just did)
        return self

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = {"fields": self.encoder.trainable_parameters() + list(self.field.parameters())}
        if self.encoder.trainable_backbone:
            groups["backbone"] = [p for p in self.encoder.backbone.parameters() if p.requires_grad]
        return groups

    # ------------------------------------------------------------------ scene routing
    @property
    def prediction_time(self) -> Optional[float]:
        """Time for rays/cameras that carry none (None: predictions do not depend on time)."""
        return self.config.default_time if self.encoder.uses_time else None

    def _provider(self) -> ContextSource:
        if self.context_provider is None:
            raise RuntimeError("T-NeRF needs a context provider (the model is built with one by TNeRFPipeline)")
        return self.context_provider

    def context_for_rays(self, ray_bundle: RayBundle) -> SceneContext:
        return self._provider().context_for_rays(ray_bundle, self.prediction_time)

    def context_for_camera(self, camera: Cameras) -> SceneContext:
        return self._provider().context_for_camera(camera, self.prediction_time)

    # ------------------------------------------------------------------ rendering
    def render(self, ray_bundle: RayBundle, planes: Prediction) -> Dict[str, Tensor]:
        """Hierarchical volume rendering of rays through one scene's prediction (training; the reference path)."""
        return self.renderer.hierarchical(ray_bundle, planes, self.field)

    def render_fast(self, ray_bundle: RayBundle, planes: Prediction, key: tuple) -> Dict[str, Tensor]:
        """Rendering with empty-space skipping; the occupancy grid of the prediction ``key`` is built once."""
        grid = self.occupancy_cache.get_or_compute(key, lambda: self.renderer.occupancy_grid(planes, self.field))
        return self.renderer.fast(ray_bundle, planes, self.field, grid)

    def forward(self, ray_bundle: RayBundle, context: Optional[SceneContext] = None) -> Dict:  # type: ignore[override]
        return self.get_outputs(ray_bundle, context)

    def get_outputs(self, ray_bundle: RayBundle, context: Optional[SceneContext] = None) -> Dict:  # type: ignore[override]
        context = context if context is not None else self.context_for_rays(ray_bundle)
        if not self.training:
            return self.render(ray_bundle, self.encoder.encode_cached(context))
        prediction, lifted = self.encoder(context)
        outputs = self.render(ray_bundle, prediction)
        outputs["planes"] = planes_of(prediction)
        outputs["lifted"] = lifted
        if context.points is not None:
            pts = context.points.positions.to(self.device)
            dirs = F.normalize(torch.randn_like(pts), dim=-1)
            density, rgb = self.field.decode(prediction, self.box.to_canonical(pts), dirs)
            outputs["point_density"] = density[:, 0]  # per canonical unit
            outputs["point_rgb"] = rgb
        return outputs

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box=None) -> Dict[str, Tensor]:
        """Encode the camera's scene once (cached), then render the image in chunks (``eval_sampler``)."""
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True, obb_box=obb_box)
        return self.render_image(bundle, self.context_for_camera(camera))

    @torch.no_grad()
    def render_image(self, bundle: RayBundle, ctx: SceneContext) -> Dict[str, Tensor]:
        """An image's rays [h, w] of the scene ``ctx`` in chunks, with ``eval_sampler`` (outside training)."""
        planes = self.encoder.encode_cached(ctx)
        height, width = bundle.origins.shape[:2]
        chunks: Dict[str, List[Tensor]] = {}
        n, step = height * width, self.config.eval_num_rays_per_chunk
        fast = self.config.eval_sampler == "occupancy" and not self.training
        for start in range(0, n, step):
            chunk = bundle.get_row_major_sliced_ray_bundle(start, start + step).to(self.device)
            out = self.render_fast(chunk, planes, self.encoder.cache_key(ctx)) if fast else self.render(chunk, planes)
            for key, value in out.items():
                chunks.setdefault(key, []).append(value)
        return {k: torch.cat(v).view(height, width, -1) for k, v in chunks.items()}

    def get_outputs_for_camera_ray_bundle(self, camera_ray_bundle: RayBundle) -> Dict[str, Tensor]:
        """nerfstudio's exporters call this (ns-eval, ns-render and the viewer use ``get_outputs_for_camera``), on the
        same rendering path: a ray less than half opaque reports ``FAR_DEPTH``, i.e. free space, so ``ns-export tsdf``
        fuses no false surface."""
        outputs = self.render_image(camera_ray_bundle, self.context_for_rays(camera_ray_bundle))
        outputs["depth"] = torch.where(outputs["accumulation"] > 0.5, outputs["depth"], FAR_DEPTH)
        return outputs

    def get_rgba_image(self, outputs: Dict[str, Tensor], output_name: str = "rgb") -> Tensor:
        """Alpha is the rendered opacity (nerfstudio's is 1): the point-cloud and Poisson exporters keep hits only."""
        rgba = super().get_rgba_image(outputs, output_name)  # raises when there is no accumulation output
        if self.renderer_rgb.background_color == "random":
            return rgba
        accumulation = outputs[output_name.replace("rgb", "accumulation")]
        return torch.cat([rgba[..., :3], accumulation.reshape(*rgba.shape[:-1], 1).to(rgba)], dim=-1)

    # ------------------------------------------------------------------ losses and metrics
    def get_metrics_dict(self, outputs: Dict, batch: Dict) -> Dict[str, Tensor]:
        image = batch["image"].to(self.device)
        return {"psnr": self.metrics.psnr(outputs["rgb"].detach(), self.renderer_rgb.blend_background(image))}

    def get_loss_dict(self, outputs: Dict, batch: Dict, metrics_dict: Optional[Dict] = None) -> Dict[str, Tensor]:
        return model_losses(self, outputs, batch)

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        gt = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        gt_depth = batch["depth_image"].to(self.device)[..., 0] if "depth_image" in batch else None
        return self.metrics.metrics_and_images(outputs, gt, gt_depth)
