"""Per-scene baselines configured as their authors recommend for the data at hand, and recorded as used.

* Real, unbounded captures: nerfstudio's defaults (nerfacto: ``last_sample`` background, near 0.05 / far 1000,
  scene contraction, camera optimiser ``SO3xR3``).
* The Blender rig (NeRF-synthetic lego, mic; cameras about 4 units from the centre): what nerfstudio's maintainers
  recommend for synthetic data — white background, no scene contraction, camera optimiser off, near 2 / far 6.
* Generated Blender-layout scenes (``scripts/render_scenes.py``): the same, with near/far from the scene's box and
  cameras (a fixed near of 2 would clip an object seen from closer).

Every method keeps its own default batch size unless ``rays_per_step`` asks for the old equal-rays setting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor

DataKind = Literal["blender-rig", "generated", "capture"]


@dataclass
class BaselineSettings:
    """What a per-scene method was run with (the ``baseline_settings`` of a comparison row)."""

    background: str
    near: float
    far: float
    scene_contraction: bool
    camera_optimizer: str
    rays_per_step: int
    preset: str
    """``authors`` (recommended for the data) or ``equal-rays``."""

    def as_dict(self) -> dict:
        return asdict(self)


def data_kind(data: Path) -> DataKind:
    """Blender layout with a recorded world box (our generated scenes), the Blender rig, or a real capture."""
    if not (data / "transforms_train.json").exists():
        return "capture"
    meta = data / "transforms.json"
    if meta.is_file() and json.loads(meta.read_text()).get("tnerf", {}).get("world_box") is not None:
        return "generated"
    return "blender-rig"


def near_far_from_cameras(c2w: Float[Tensor, "n 3 4"], aabb: Float[Tensor, "2 3"]) -> Tuple[float, float]:
    """Near/far that keep the whole box in view from every camera: camera distance to the box centre minus/plus the
    box's half diagonal (near kept positive)."""
    centre, radius = aabb.mean(0), (aabb[1] - aabb[0]).norm() / 2
    dist = (c2w[:, :3, 3] - centre).norm(dim=-1)
    return float((dist.min() - radius).clamp_min(0.05 * radius)), float(dist.max() + radius)


def settings_for(
    method: str,
    cfg,
    kind: DataKind,
    near_far: Optional[Tuple[float, float]] = None,
    rays_per_step: Optional[int] = None,
) -> BaselineSettings:
    """Apply the recommended settings of ``method`` for ``kind`` of data to a nerfstudio TrainerConfig; return them.

    ``near_far`` is required for generated scenes; ``rays_per_step`` overrides every method's own batch size."""
    model, dm = cfg.pipeline.model, cfg.pipeline.datamanager
    preset = "authors"
    if rays_per_step is not None:
        dm.train_num_rays_per_batch = rays_per_step
        preset = "equal-rays"
    if kind == "generated" and near_far is None:
        raise ValueError("generated scenes need near/far from their box and cameras")
    near, far = (2.0, 6.0) if kind == "blender-rig" else (near_far or (None, None))
    synthetic = kind != "capture"
    if method.startswith("nerfacto"):
        if synthetic:
            model.background_color = "white"
            model.disable_scene_contraction = True
            model.camera_optimizer.mode = "off"
            model.near_plane, model.far_plane = near, far
            model.proposal_initial_sampler = "uniform"  # the maintainers' advice for bounded synthetic scenes
        return BaselineSettings(
            model.background_color, model.near_plane, model.far_plane, not model.disable_scene_contraction,
            model.camera_optimizer.mode, dm.train_num_rays_per_batch, preset,
        )  # fmt: skip
    if method == "vanilla-nerf":
        if kind == "generated":
            model.collider_params = {"near_plane": near, "far_plane": far}
        params = model.collider_params
        return BaselineSettings(model.background_color, params["near_plane"], params["far_plane"], False, "off",
                                dm.train_num_rays_per_batch, preset)  # fmt: skip
    raise ValueError(f"no recommended settings for baseline {method!r} (known: nerfacto, vanilla-nerf)")


def tnerf_settings(
    cfg, aabb: Float[Tensor, "2 3"], c2w: Float[Tensor, "n 3 4"], kind: DataKind = "blender-rig"
) -> BaselineSettings:
    """T-NeRF's own (recorded the same way): background of the data (on a capture, the surroundings swept from the
    source photos behind the placed box), rays clipped to the scene box, no contraction, no camera optimiser."""
    near, far = near_far_from_cameras(c2w, aabb)
    dm = cfg.pipeline.datamanager
    background = "swept from the sources" if kind == "capture" else "white"
    return BaselineSettings(background, near, far, False, "off", dm.train_num_rays_per_batch, "tnerf")


def parser_cameras(parser_config) -> Tuple[Float[Tensor, "n 3 4"], Float[Tensor, "2 3"]]:
    """Training cameras and scene box as a dataparser config produces them (its scaling applied)."""
    outputs = parser_config.setup().get_dataparser_outputs(split="train")
    return outputs.cameras.camera_to_worlds.to(torch.float32), outputs.scene_box.aabb.to(torch.float32)
