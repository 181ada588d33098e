"""Where the tri-plane lives on a capture.

Blender scenes, T-NeRF's generated scenes and ``tnerf-photos`` folders come with a box about the object. A capture
parsed by ``nerfstudio-data`` or ``colmap`` has a box about the *cameras* (nerfstudio scales the poses into
``[-1, 1]^3``), so the object fills a small part of it. There the box is placed from the cameras alone:

* centre: the point nearest to every camera's optical axis in the least-squares sense (the common look-at point),
  pulled slightly towards the cameras' mean look-at point so a forward-facing capture (parallel axes) stays defined;
* half extent: the median over cameras of the half width each camera sees at that point's distance (along the
  photo's longer side), so the box holds what is framed in a typical photo, as in the generated scenes the head
  learned from (a box seen edge to edge); capped so no camera sits inside it;
* orientation: z along the cameras' mean up vector, x along the first source camera's right vector (made
  orthogonal), so the tri-plane's axes follow the capture and not the frame the poses happen to be written in.

Every step is equivariant to a similarity transform of the cameras (rotation, translation, scale): a capture written
in another frame gets the same box relative to its cameras, hence the same prediction and the same renders. The box
is kept in the dataset frame, so exporters, the viewer and ``ns-render`` line up as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Tuple

import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor


@dataclass
class PlacementConfig:
    """How the tri-plane's box is placed in scene mode."""

    mode: Literal["auto", "scene-box", "cameras"] = "auto"
    """auto: from the cameras for captures (nerfstudio-data, colmap, ...), the dataparser's scene box for blender-data,
    tnerf-scenes and tnerf-photos (their boxes are about the object); scene-box / cameras force one."""
    scale: float = 1.0
    """Multiplies the half extent found from the cameras (larger: more of the surroundings inside the tri-plane, at a
    coarser resolution)."""
    centre: Optional[Tuple[float, float, float]] = None
    """Box centre in dataset coordinates (overrides the look-at point)."""
    half_extent: Optional[float] = None
    """Half side of the box in dataset units (overrides the half extent found from the cameras)."""


@dataclass
class Placement:
    """A box in dataset coordinates: canonical ``q`` is dataset ``centre + half_extent * rotation @ q``."""

    centre: Float[Tensor, "3"]
    half_extent: float
    rotation: Float[Tensor, "3 3"]
    """Columns: the box's x, y, z axes in dataset coordinates."""

    def corners(self) -> Float[Tensor, "8 3"]:
        signs = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0])] * 3)
        return self.centre + self.half_extent * signs @ self.rotation.T


def look_at_point(origins: Float[Tensor, "n 3"], forwards: Float[Tensor, "n 3"]) -> Float[Tensor, "3"]:
    """The least-squares point nearest to every optical axis. A small pull towards the point one mean camera spacing
    in front of the cameras keeps the system solvable when the axes are (nearly) parallel."""
    eye = torch.eye(3, dtype=origins.dtype)
    projectors = eye - forwards[:, :, None] * forwards[:, None, :]  # [n, 3, 3]: removes the component along an axis
    a = projectors.sum(0)
    b = (projectors @ origins[:, :, None]).sum(0)[:, 0]
    spread = (origins - origins.mean(0)).norm(dim=-1).mean().clamp_min(1e-6)
    prior = origins.mean(0) + torch.nn.functional.normalize(forwards.mean(0), dim=0) * spread
    weight = 1e-3 * a.trace() / 3
    return torch.linalg.solve(a + weight * eye, b + weight * prior)


def placement_from_cameras(cameras: Cameras, first: int = 0, scale: float = 1.0) -> Placement:
    """The box of a capture from its cameras (see the module docstring); ``first`` names the camera whose right
    vector fixes the box's x axis."""
    c2w = cameras.camera_to_worlds.double()
    origins, right, up = c2w[:, :, 3], c2w[:, :, 0], c2w[:, :, 1]
    forwards = -c2w[:, :, 2]  # OpenGL: the camera looks along -z
    centre = look_at_point(origins, forwards)
    distance = (origins - centre).norm(dim=-1)
    # half width seen at the centre's distance along the longer side of each photo
    half_w = cameras.width[:, 0].double() / 2 / cameras.fx[:, 0].double()
    half_h = cameras.height[:, 0].double() / 2 / cameras.fy[:, 0].double()
    seen = (distance * torch.maximum(half_w, half_h)).median()
    half_extent = min(float(seen) * scale, 0.9 * float(distance.min()) / 3**0.5)  # cameras stay outside the cube
    z = up.mean(0)
    if float(z.norm()) < 1e-3 * float(up.norm(dim=-1).mean()):  # cameras rolled every way: the first one's up
        z = up[first]
    z = z / z.norm()
    x = right[first] - (right[first] @ z) * z
    if float(x.norm()) < 1e-6:  # the first camera's right vector along the mean up: use its forward instead
        x = forwards[first] - (forwards[first] @ z) * z
    x = x / x.norm()
    rotation = torch.stack([x, torch.linalg.cross(z, x), z], dim=1)
    return Placement(centre.float(), half_extent, rotation.float())


def box_is_about_object(dataparser_config) -> bool:
    """Whether a dataparser's scene box bounds the object (Blender, D-NeRF and T-NeRF's own parsers) rather than the
    cameras (nerfstudio-data, colmap and the other capture parsers)."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.dnerf_dataparser import DNeRFDataParserConfig

    from tnerf_ns.data.multiscene_dataparser import TNeRFScenesDataParserConfig
    from tnerf_ns.data.photos_dataparser import TNeRFPhotosDataParserConfig

    object_boxes = (
        BlenderDataParserConfig,
        DNeRFDataParserConfig,
        TNeRFScenesDataParserConfig,
        TNeRFPhotosDataParserConfig,
    )
    return isinstance(dataparser_config, object_boxes)


def placed_box(config: PlacementConfig, cameras: Cameras, first: int, box_is_about_object: bool) -> Optional[Placement]:
    """The placement a scene-mode run uses, or None for the dataparser's scene box."""
    if config.mode == "scene-box" or (config.mode == "auto" and box_is_about_object):
        if config.centre is not None or config.half_extent is not None:
            raise ValueError(
                "placement centre/half-extent overrides need --pipeline.datamanager.placement.mode cameras"
            )
        return None
    placement = placement_from_cameras(cameras, first, config.scale)
    if config.centre is not None:
        placement.centre = torch.tensor(config.centre, dtype=torch.float32)
    if config.half_extent is not None:
        if config.half_extent <= 0:
            raise ValueError(f"placement half-extent must be positive, got {config.half_extent}")
        placement.half_extent = float(config.half_extent)
    return placement
