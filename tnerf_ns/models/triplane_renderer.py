"""Rendering rays through one scene's prediction (a tri-plane, or Plan A's predicted MLP): two paths.

* ``hierarchical`` (training, and the reference): nerfstudio's uniform coarse samples, then importance samples from
  the field's own coarse weights, every sample evaluated.
* ``occupancy`` (the default of ``ns-eval``, ``ns-render`` and the viewer): a per-scene occupancy grid built once
  from the predicted density, fine steps only in occupied cells, early ray termination
  (:mod:`tnerf_ns.models.occupancy_renderer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

import torch
import torch.nn.functional as F
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.model_components.ray_samplers import PDFSampler, UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, DepthRenderer, RGBRenderer
from torch import Tensor, nn

from tnerf_ns.fields.scene_field import SceneConditionedField
from tnerf_ns.fields.source_projection import views_of
from tnerf_ns.fields.source_surroundings import swept_surroundings
from tnerf_ns.geometry import CanonicalBox, ray_box_intersection
from tnerf_ns.models.box_collider import BoxCollider
from tnerf_ns.models.occupancy_renderer import OccupancyGrid, render_occupied

if TYPE_CHECKING:
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig


class TriplaneRenderer(nn.Module):
    """Samplers, renderers and both rendering paths of the T-NeRF model (see the module docstring)."""

    def __init__(self, config: "TNeRFModelConfig", box: CanonicalBox, surroundings: bool = False) -> None:
        super().__init__()
        self.config = config
        self.box = box
        self.surroundings = surroundings  # rays leaving the box see the source photos (captures), not a flat colour
        self.collider = BoxCollider(box)
        self.sampler_uniform = UniformSampler(num_samples=config.num_coarse_samples)
        self.sampler_pdf = PDFSampler(num_samples=config.num_fine_samples, include_original=True)
        self.renderer_rgb = RGBRenderer(background_color=config.background_color)
        self.renderer_accumulation = AccumulationRenderer()
        self.renderer_depth = DepthRenderer(method="expected")

    def hierarchical(self, ray_bundle: RayBundle, planes: Tensor, field: SceneConditionedField) -> Dict[str, Tensor]:
        """Uniform then importance samples; differentiable (training)."""
        ray_bundle = self.collider(ray_bundle)
        coarse_samples = self.sampler_uniform(ray_bundle)
        coarse = field.get_outputs_with_planes(coarse_samples, planes, self.box)
        coarse_weights = coarse_samples.get_weights(coarse[FieldHeadNames.DENSITY])
        # importance samples follow the coarse weights but are not a function to learn through (and the PDF
        # inversion's 0/0 guards would turn into NaN gradients)
        fine_samples = self.sampler_pdf(ray_bundle, coarse_samples, coarse_weights.detach())
        fine = field.get_outputs_with_planes(fine_samples, planes, self.box)
        weights = fine_samples.get_weights(fine[FieldHeadNames.DENSITY])
        background = self.background(planes, ray_bundle.origins, ray_bundle.directions)
        kwargs = {} if background is None else {"background_color": background}
        rgb_coarse = self.renderer_rgb(rgb=coarse[FieldHeadNames.RGB], weights=coarse_weights, **kwargs)
        rgb = self.renderer_rgb(rgb=fine[FieldHeadNames.RGB], weights=weights, **kwargs)
        accumulation = self.renderer_accumulation(weights)
        depth = self.renderer_depth(weights, fine_samples)
        outputs = {"rgb": rgb, "rgb_coarse": rgb_coarse, "accumulation": accumulation, "depth": depth}
        return self._with_z_depth(outputs, ray_bundle)

    def occupancy_grid(self, planes: Tensor, field: SceneConditionedField) -> OccupancyGrid:
        """The scene's occupied cells, from the predicted density (once per prediction)."""
        cfg = self.config
        return OccupancyGrid.from_density(
            lambda points: field.decode(planes, points)[0],
            resolution=cfg.occupancy_resolution,
            threshold=cfg.occupancy_threshold,
            device=planes.device,
        )

    @torch.no_grad()
    def fast(
        self, ray_bundle: RayBundle, planes: Tensor, field: SceneConditionedField, grid: OccupancyGrid
    ) -> Dict[str, Tensor]:
        """Empty-space skipping and early termination (evaluation, rendering, viewer); no gradients."""
        shape = ray_bundle.origins.shape[:-1]
        origins = self.box.to_canonical(ray_bundle.origins.reshape(-1, 3))
        directions = self.box.directions_to_canonical(ray_bundle.directions.reshape(-1, 3))
        out = render_occupied(
            grid, lambda p, d: field.decode(planes, p, d), origins, directions, step=self.config.occupancy_step
        )
        acc = out["accumulation"][:, None]
        rgb = out["rgb"]
        surroundings = self.background(planes, ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3))
        if surroundings is not None:
            rgb = rgb + surroundings * (1 - acc)
        elif self.renderer_rgb.background_color not in ("random", "last_sample"):  # as nerfstudio's renderer does
            background = self.renderer_rgb.get_background_color(
                self.renderer_rgb.background_color, rgb.shape, rgb.device
            )
            rgb = rgb + background * (1 - acc)
        outputs = {
            "rgb": rgb.clamp(0, 1).reshape(*shape, 3),
            "accumulation": acc.reshape(*shape, 1),
            # expected depth as nerfstudio's renderer defines it, canonical -> dataset units
            "depth": (out["depth"] / (out["accumulation"] + 1e-10) * self.box.half_extent).reshape(*shape, 1),
        }
        return self._with_z_depth(outputs, ray_bundle)

    def background(self, prediction: Tensor, origins: Tensor, directions: Tensor) -> Optional[Tensor]:
        """Per-ray colour of the surroundings from the source photos (dataset-frame rays), or None: the configured
        flat background."""
        views = views_of(prediction)
        if not self.surroundings or views is None:
            return None
        o, d = self.box.to_canonical(origins), self.box.directions_to_canonical(F.normalize(directions, dim=-1))
        near, far = ray_box_intersection(o, d, -self.box.extent, self.box.extent)
        return swept_surroundings(views, o, d, torch.where(far > near, far, torch.zeros_like(far)))

    @staticmethod
    def _with_z_depth(outputs: Dict[str, Tensor], ray_bundle: RayBundle) -> Dict[str, Tensor]:
        if ray_bundle.metadata and "directions_norm" in ray_bundle.metadata:
            outputs["z_depth"] = outputs["depth"] / ray_bundle.metadata["directions_norm"]
        return outputs
