"""Posed photos as nerfstudio cameras (:class:`Posed`, what VGGT and COLMAP both give), VGGT's conventions,
original-resolution intrinsics, the normalised world.

VGGT predicts, per frame, an OpenCV camera-from-world extrinsic in the first camera's frame (scale normalised by the
network) and a field of view (``fov_h``, ``fov_w``). A field of view does not depend on the image size, so the
focal lengths at the photo's own resolution are ``f = (side / 2) / tan(fov / 2)`` per axis, whatever size the
network saw (the photos are resized without cropping or padding, see :mod:`tnerf_ns.posing.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor

from tnerf_ns.geometry import MIN_FOV, opencv_w2c_to_opengl_c2w, quaternion_to_matrix


@dataclass
class Posed:
    """Cameras of the photos a poser registered, in the folder's order, at each photo's own resolution."""

    files: List[Path]
    c2w: Float[Tensor, "n 3 4"]
    """nerfstudio camera-to-world (OpenGL axes)."""
    intrinsics: Float[Tensor, "n 4"]
    """``fl_x, fl_y, cx, cy`` in pixels."""
    hw: Float[Tensor, "n 2"]
    """Photo height, width."""
    xyz: Float[Tensor, "p 3"]
    """Scene points (VGGT: confident depth; COLMAP: triangulated)."""
    rgb: Float[Tensor, "p 3"]
    distortion: Optional[Float[Tensor, "n 4"]] = None
    """OPENCV ``k1 k2 p1 p2`` per photo; None: pinhole."""
    record: Dict = field(default_factory=dict)
    """What made them (written to ``transforms.json``)."""


def pose_encoding_to_w2c(pose_enc: Float[Tensor, "*b 9"]) -> Float[Tensor, "*b 3 4"]:
    """OpenCV camera-from-world ``[R | t]`` of a VGGT pose encoding."""
    return torch.cat([quaternion_to_matrix(pose_enc[..., 3:7]), pose_enc[..., :3, None]], dim=-1)


def fov_to_intrinsics(fov: Float[Tensor, "n 2"], image_hw: Float[Tensor, "n 2"]) -> Float[Tensor, "n 4"]:
    """``(fov_h, fov_w)`` in radians and each photo's own ``(H, W)`` to ``(fl_x, fl_y, cx, cy)`` in its pixels
    (principal point at the centre, as VGGT assumes)."""
    fov = fov.clamp_min(MIN_FOV)  # an untrained head's ReLU can give 0, i.e. an infinite focal length
    height, width = image_hw[:, 0].to(fov.dtype), image_hw[:, 1].to(fov.dtype)
    fy = (height / 2.0) / torch.tan(fov[:, 0] / 2.0)
    fx = (width / 2.0) / torch.tan(fov[:, 1] / 2.0)
    return torch.stack([fx, fy, width / 2.0, height / 2.0], dim=-1)


def intrinsics_to_fov(intrinsics: Float[Tensor, "n 4"], image_hw: Float[Tensor, "n 2"]) -> Float[Tensor, "n 2"]:
    """Inverse of :func:`fov_to_intrinsics`: ``(fov_h, fov_w)`` in radians."""
    height, width = image_hw[:, 0].to(intrinsics.dtype), image_hw[:, 1].to(intrinsics.dtype)
    return torch.stack(
        [2 * torch.atan(height / 2 / intrinsics[:, 1]), 2 * torch.atan(width / 2 / intrinsics[:, 0])], -1
    )


def to_homogeneous(transform: Float[Tensor, "*b 3 4"]) -> Float[Tensor, "*b 4 4"]:
    bottom = torch.zeros(*transform.shape[:-2], 1, 4, dtype=transform.dtype, device=transform.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([transform, bottom], dim=-2)


def relative_to_anchor(w2c: Float[Tensor, "n 3 4"], anchor: int = 0) -> Float[Tensor, "n 3 4"]:
    """Re-express camera-from-world extrinsics in the frame of camera ``anchor`` (which becomes exactly the
    identity): VGGT's first frame is only approximately the identity."""
    w2c4 = to_homogeneous(w2c)
    return (w2c4 @ torch.linalg.inv(w2c4[anchor]))[:, :3]


def rotation_between(a: Float[Tensor, "3"], b: Float[Tensor, "3"]) -> Float[Tensor, "3 3"]:
    """The smallest rotation taking direction ``a`` to direction ``b`` (Rodrigues); a half turn for opposite ones."""
    a, b = a / a.norm(), b / b.norm()
    axis = torch.linalg.cross(a, b)
    sin, cos = axis.norm(), torch.dot(a, b)
    if sin < 1e-8:
        if cos > 0:
            return torch.eye(3, dtype=a.dtype)
        helper = torch.eye(3, dtype=a.dtype)[int(torch.argmin(a.abs()))]  # any axis orthogonal to a
        axis = torch.linalg.cross(a, helper)
        sin = torch.zeros((), dtype=a.dtype)
    k = axis / axis.norm()
    skew = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=a.dtype)
    return torch.eye(3, dtype=a.dtype) + sin * skew + (1 - cos) * skew @ skew


@dataclass
class Similarity:
    """``x -> scale * rotation @ x + translation``."""

    scale: float
    rotation: Float[Tensor, "3 3"]
    translation: Float[Tensor, "3"]

    def points(self, x: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 3"]:
        return self.scale * x @ self.rotation.T + self.translation

    def c2w(self, c2w: Float[Tensor, "*b 3 4"]) -> Float[Tensor, "*b 3 4"]:
        """Cameras (camera-to-world) moved with the world; their rotations stay orthonormal."""
        return torch.cat([self.rotation @ c2w[..., :3, :3], self.points(c2w[..., :3, 3])[..., None]], dim=-1)

    def to_dict(self) -> Dict:
        return {"scale": self.scale, "rotation": self.rotation.tolist(), "translation": self.translation.tolist()}


def normalise_world(
    c2w: Float[Tensor, "n 3 4"],
    points: Float[Tensor, "p 3"],
    percentiles: Tuple[float, float] = (2.0, 98.0),
    margin: float = 0.05,
) -> Tuple[Similarity, Float[Tensor, "2 3"]]:
    """The similarity into the written world frame, and the scene box in that frame.

    The mean camera up (OpenGL +y) becomes +z (nerfstudio's viewer convention); the box spans robust percentiles of
    the points along each axis, widened by ``margin`` of its extent on each side; the box is centred at the origin and
    its longest half side is 1, so the tri-plane (and nerfacto's contraction) cover the object tightly.
    """
    up = c2w[:, :3, 1].mean(0)
    if up.norm() < 1e-6:  # cameras all round the object's up axis cancel out: fall back to the first camera
        up = c2w[0, :3, 1]
    rot = rotation_between(up.double(), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).to(c2w.dtype)
    if points.shape[0] == 0:  # no confident points: the camera centres' box (better than nothing)
        points = c2w[:, :3, 3]
    rotated = points @ rot.T
    q = torch.tensor([percentiles[0] / 100, percentiles[1] / 100], dtype=rotated.dtype)
    lo, hi = torch.quantile(rotated[:: max(1, rotated.shape[0] // 200_000)], q, dim=0)  # quantile caps its input
    pad = margin * (hi - lo).clamp_min(1e-6)
    lo, hi = lo - pad, hi + pad
    half = float((hi - lo).max()) / 2
    sim = Similarity(1.0 / half, rot, -(lo + hi) / 2 / half)
    box = torch.stack([(lo - hi) / 2, (hi - lo) / 2]) / half
    return sim, box


def predicted_to_nerfstudio(
    w2c: Float[Tensor, "n 3 4"], fov: Float[Tensor, "n 2"], image_hw: Float[Tensor, "n 2"]
) -> Tuple[Float[Tensor, "n 3 4"], Float[Tensor, "n 4"]]:
    """OpenCV camera-from-world + field of view to nerfstudio camera-to-world (OpenGL) + ``(fl_x, fl_y, cx, cy)``
    at each photo's original resolution."""
    return opencv_w2c_to_opengl_c2w(w2c), fov_to_intrinsics(fov, image_hw)
