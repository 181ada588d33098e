"""What nerfstudio's tools see of a T-NeRF data manager outside training: the default scene, as one dataset.

``ns-export`` draws rays with ``datamanager.next_train(0)`` until it has enough points (after setting
``train_pixel_sampler.num_rays_per_batch``) and renders the cameras of ``train_dataset`` (tsdf); the viewer draws
``train_dataset``'s cameras; ``ns-render interpolate --pose-source train`` follows them. Multi-scene training data
mixes scenes that share one canonical box, so those tools would overlay every scene. When a pipeline is built by
``eval_setup`` (``test_mode`` "test" or "inference"), :class:`ToolView` therefore replaces the data manager's
training split by the default scene's images, the one scene that viewer and camera-path cameras are routed to:

* cameras keep their ``scene_idx``, so renders and rays are routed to that scene's context;
* a dynamic scene contributes the images of its first time state (every state has the same cameras) with their
  times removed, so renders use the model's ``default_time`` like the viewer does;
* ``next_train`` returns fresh rays on every call (a per-call counter seeds them): the exporters call
  ``next_train(0)`` repeatedly and need new points each time;
* :func:`viewer_pose` is where the viewer's camera starts (``tnerf_ns.compat.frame_the_scene_in_the_viewer``).

In scene mode (a single-scene dataset) the view is the training split itself. ``ns-render dataset --split train``
is unaffected: it builds its own data manager with setup disabled, so no view is attached to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple, Union

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.model_components.ray_generators import RayGenerator

from tnerf_ns.data.dataset import TNeRFDataset
from tnerf_ns.datamanagers.context import ContextProvider, SceneEntry


def viewer_pose(cameras: Cameras, aabb: Float[torch.Tensor, "2 3"]) -> Dict[str, np.ndarray]:
    """A pose that frames the scene: the first camera's position and field of view, looking along its axis at the
    point nearest the box centre, with the cameras' mean up vector as the orbit's up (object rigs orbit it)."""
    c2w = cameras.camera_to_worlds.reshape(-1, 3, 4).double().numpy()
    position, forward = c2w[0, :, 3], -c2w[0, :, 2]  # OpenGL: the camera looks along -z
    centre = aabb.double().mean(0).numpy()
    distance = max(float((centre - position) @ forward), 1e-3 * float(np.linalg.norm(centre - position)) + 1e-6)
    up = c2w[:, :, 1].mean(0)
    if np.linalg.norm(up) < 1e-3:  # cameras all around: the first one's up
        up = c2w[0, :, 1]
    fov = 2 * math.atan(float(cameras.height.reshape(-1)[0]) / (2 * float(cameras.fy.reshape(-1)[0])))
    return {"position": position, "look_at": position + forward * distance, "up": up / np.linalg.norm(up), "fov": fov}


@dataclass
class ToolRaySampler:
    """Stand-in for nerfstudio's pixel sampler: the exporters size ``next_train`` batches through it."""

    num_rays_per_batch: int
    """Rays per ``next_train`` call."""

    def set_num_rays_per_batch(self, num_rays_per_batch: int) -> None:
        self.num_rays_per_batch = num_rays_per_batch


class ToolView:
    """The default scene of ``provider`` as a dataset, with a ray source for the exporters.

    Args:
        provider: the data manager's context provider (its default scene is the one shown).
        subset: ``subset(outputs, indices)`` restricts dataparser outputs to some images.
        num_rays: rays per call until an exporter asks for another batch size.
        scale_factor: camera resolution scale of the data manager.
        device: where rays are generated.
    """

    def __init__(
        self,
        provider: ContextProvider,
        subset: Callable[[DataparserOutputs, List[int]], DataparserOutputs],
        num_rays: int,
        scale_factor: float,
        device: Union[torch.device, str],
    ) -> None:
        self.entry: SceneEntry = provider.entry(provider.default_scene)
        dataset = self.entry.dataset
        indices = list(self.entry.image_indices)
        if self.entry.dynamic:  # one time state; the model's default time applies to cameras without one
            indices = self.entry.images_at(self.entry.time_values[0])
        if len(indices) == len(dataset):
            self.outputs: DataparserOutputs = dataset._dataparser_outputs
            self.dataset = dataset
        else:
            self.outputs = subset(dataset._dataparser_outputs, indices)
            self.outputs.cameras.times = None
            self.dataset = TNeRFDataset(self.outputs, scale_factor=scale_factor)
        self.sampler = ToolRaySampler(num_rays)
        self.ray_generator = RayGenerator(self.dataset.cameras.to(device))
        self.device = device
        self.calls = 0
        self.generator = torch.Generator()

    def next_rays(self) -> Tuple[RayBundle, Dict]:
        """``num_rays_per_batch`` random pixels of the scene's images, different on every call."""
        self.calls += 1
        self.generator.manual_seed(7_777_777 + self.calls)
        cams = self.dataset.cameras
        n = self.sampler.num_rays_per_batch
        cam = torch.randint(len(cams), (n,), generator=self.generator)
        # per-camera sizes may differ: draw a fraction of each picked camera's height and width
        height, width = cams.height[cam, 0], cams.width[cam, 0]
        ys = (torch.rand(n, generator=self.generator) * height).long().clamp_max(height - 1)
        xs = (torch.rand(n, generator=self.generator) * width).long().clamp_max(width - 1)
        indices = torch.stack([cam, ys, xs], dim=-1)
        return self.ray_generator(indices.to(self.device)), {"indices": indices}
