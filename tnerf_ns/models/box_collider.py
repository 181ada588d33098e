"""Near/far of rays from the tri-plane's box."""

from __future__ import annotations

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.model_components.scene_colliders import SceneCollider

from tnerf_ns.geometry import CanonicalBox


class BoxCollider(SceneCollider):
    """Near/far from the (possibly rotated) box the prediction covers, robust to axis-parallel rays (nerfstudio's AABB
    collider can produce NaN when a direction component is exactly -1e-6); rays that miss get an empty segment."""

    def __init__(self, box: CanonicalBox) -> None:
        super().__init__()
        self.box = box

    def set_nears_and_fars(self, ray_bundle: RayBundle) -> RayBundle:
        nears, fars = self.box.ray_span(ray_bundle.origins, ray_bundle.directions)
        miss = fars <= nears
        # a miss would otherwise be sampled wherever its slabs happen to meet, possibly 1e5 units away
        nears = torch.where(miss, torch.zeros_like(nears), nears)
        fars = torch.where(miss, torch.full_like(fars, 1e-6), fars)
        ray_bundle.nears, ray_bundle.fars = nears[..., None], fars[..., None]
        return ray_bundle
