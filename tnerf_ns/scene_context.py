"""What a T-NeRF prediction is made from: the source views of one scene (``SceneContext``), optionally with 3-D
query points that carry ground truth (``PointBatch``), and the interface of whatever serves them (``ContextSource``).

Models import these types from here and nothing from the data managers: the data manager builds a
:class:`~tnerf_ns.datamanagers.context.ContextProvider` and the pipeline hands it to the model at construction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional, Protocol

import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor


@dataclass
class PointBatch:
    """Query points with ground truth."""

    positions: Float[Tensor, "n 3"]
    """Canonical (normalised) coordinates."""
    rgb: Float[Tensor, "n 3"]
    density: Float[Tensor, "n"]
    """Density per canonical length unit."""
    opacity: Float[Tensor, "n"]
    """Opacity of a step of ``reference_step`` canonical units."""
    kind: Tensor
    """0 occupied, 1 near surface, 2 empty."""

    def to(self, device: torch.device) -> "PointBatch":
        return PointBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


@dataclass
class SceneContext:
    """What one prediction is made from."""

    key: tuple
    """Identifies the source set (scene, views, size); used for caching backbone outputs and predictions."""
    scene_idx: int
    name: str
    images: Float[Tensor, "k 3 h w"]
    """Source photos, background-composited, in [0, 1]."""
    alpha: Float[Tensor, "k h w"]
    c2w: Float[Tensor, "k 3 4"]
    """Source cameras, OpenGL camera-to-world, dataset coordinates."""
    intrinsics: Float[Tensor, "k 3 3"]
    """Pixel intrinsics of ``images``."""
    depth: Optional[Float[Tensor, "k h w"]] = None
    """Ground-truth z-depth of the sources in dataset units (0 = unknown), when available."""
    points: Optional[PointBatch] = None
    """3-D query points with ground truth (training only)."""
    images_t1: Optional[Float[Tensor, "k 3 h w"]] = None
    """Dynamic scenes: the same source cameras' photos at t1 (``images`` are at t0)."""
    time: Optional[float] = None
    """Dynamic scenes: the normalised time the prediction is for; ``alpha``/``depth`` are the sources' ground truth
    at that time."""

    def to(self, device: torch.device) -> "SceneContext":
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items() if k != "points"}
        return replace(self, **moved, points=None if self.points is None else self.points.to(device))


class ContextSource(Protocol):
    """Routes a ray batch or a camera (evaluation image, viewer, ``ns-render`` path) to the scene context it sees.

    ``time``: ``None`` for a static prediction; otherwise the time to use when the rays/camera carry none.
    """

    def context_for_rays(self, ray_bundle: RayBundle, time: Optional[float] = None) -> SceneContext: ...

    def context_for_camera(self, camera: Cameras, time: Optional[float] = None) -> SceneContext: ...
