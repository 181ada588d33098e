"""Camera conventions in one place.

* VGGT: pose encoding ``[t(3), q_xyzw(4), fov_h, fov_w]``; the extrinsic ``[R | t]`` is **camera-from-world** in the
  **OpenCV** convention (x right, y down, z forward), expressed in the first camera's frame.
* nerfstudio: ``camera_to_worlds`` is **camera-to-world** in the **OpenGL** convention (x right, y up, z backward).

Everything works on arbitrary leading batch axes and is differentiable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor

if TYPE_CHECKING:
    from tnerf_ns.placement import Placement

OPENCV_TO_OPENGL = (1.0, -1.0, -1.0)
"""Camera-axis flips between the two conventions (y and z change sign; the map is its own inverse)."""
MIN_FOV = 1e-4
"""Smallest field of view (radians) turned into a focal length."""


def quaternion_to_matrix(q: Float[Tensor, "*b 4"]) -> Float[Tensor, "*b 3 3"]:
    """Rotation matrix of a scalar-last (x, y, z, w) quaternion; it need not be normalised."""
    x, y, z, w = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    rows = [
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(rot: Float[Tensor, "*b 3 3"]) -> Float[Tensor, "*b 4"]:
    """Scalar-last unit quaternion of a rotation matrix, with w >= 0 (numerically stable branch choice)."""
    m = rot
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4*q_i^2 for (w, x, y, z); pick the largest to divide by
    sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    ).clamp_min(0)
    r = torch.sqrt(sq)  # 2*|q_i|
    cand = torch.stack(
        [
            torch.stack([r[..., 0] ** 2, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], r[..., 1] ** 2, m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], r[..., 2] ** 2, m[..., 2, 1] + m[..., 1, 2]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2], r[..., 3] ** 2], -1),
        ],
        dim=-2,
    )  # fmt: skip
    cand = cand / (2.0 * r.clamp_min(0.1))[..., None]
    best = sq.argmax(-1)
    wxyz = torch.gather(cand, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    wxyz = torch.nn.functional.normalize(wxyz, dim=-1)
    wxyz = torch.where(wxyz[..., :1] < 0, -wxyz, wxyz)
    return torch.cat([wxyz[..., 1:], wxyz[..., :1]], dim=-1)


def pose_encoding_to_extri_intri(
    pose_enc: Float[Tensor, "*b 9"], image_hw: Tuple[int, int]
) -> Tuple[Float[Tensor, "*b 3 4"], Float[Tensor, "*b 3 3"]]:
    """VGGT pose encoding to OpenCV camera-from-world extrinsics and pixel intrinsics (principal point centred)."""
    height, width = image_hw
    rot = quaternion_to_matrix(pose_enc[..., 3:7])
    extrinsics = torch.cat([rot, pose_enc[..., :3, None]], dim=-1)
    # A zero field of view (possible after the ReLU of an untrained head) would give infinite focal lengths.
    fov = pose_enc[..., 7:9].clamp_min(MIN_FOV)
    fy = (height / 2.0) / torch.tan(fov[..., 0] / 2.0)
    fx = (width / 2.0) / torch.tan(fov[..., 1] / 2.0)
    intrinsics = torch.zeros(*pose_enc.shape[:-1], 3, 3, dtype=pose_enc.dtype, device=pose_enc.device)
    intrinsics[..., 0, 0], intrinsics[..., 1, 1] = fx, fy
    intrinsics[..., 0, 2], intrinsics[..., 1, 2] = width / 2.0, height / 2.0
    intrinsics[..., 2, 2] = 1.0
    return extrinsics, intrinsics


def extri_intri_to_pose_encoding(
    extrinsics: Float[Tensor, "*b 3 4"], intrinsics: Float[Tensor, "*b 3 3"], image_hw: Tuple[int, int]
) -> Float[Tensor, "*b 9"]:
    """Inverse of :func:`pose_encoding_to_extri_intri` (the principal point is not encoded)."""
    height, width = image_hw
    quat = matrix_to_quaternion(extrinsics[..., :3, :3])
    fov_h = 2.0 * torch.atan((height / 2.0) / intrinsics[..., 1, 1])
    fov_w = 2.0 * torch.atan((width / 2.0) / intrinsics[..., 0, 0])
    return torch.cat([extrinsics[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], dim=-1)


def invert_rigid(transform: Float[Tensor, "*b 3 4"]) -> Float[Tensor, "*b 3 4"]:
    """Inverse of a rigid [R | t] transform."""
    rot_t = transform[..., :3, :3].transpose(-1, -2)
    return torch.cat([rot_t, -(rot_t @ transform[..., :3, 3:])], dim=-1)


def _flip_camera_axes(transform: Tensor) -> Tensor:
    flip = transform.new_tensor(OPENCV_TO_OPENGL)
    return torch.cat([transform[..., :3, :3] * flip, transform[..., :3, 3:]], dim=-1)


def opencv_w2c_to_opengl_c2w(extrinsics: Float[Tensor, "*b 3 4"]) -> Float[Tensor, "*b 3 4"]:
    """OpenCV camera-from-world (VGGT) to OpenGL camera-to-world (nerfstudio)."""
    return _flip_camera_axes(invert_rigid(extrinsics))


def opengl_c2w_to_opencv_w2c(c2w: Float[Tensor, "*b 3 4"]) -> Float[Tensor, "*b 3 4"]:
    """OpenGL camera-to-world (nerfstudio) to OpenCV camera-from-world (VGGT)."""
    return invert_rigid(_flip_camera_axes(c2w))


def pose_encoding_to_nerfstudio(
    pose_enc: Float[Tensor, "*b 9"], image_hw: Tuple[int, int]
) -> Tuple[Float[Tensor, "*b 3 4"], Float[Tensor, "*b 3 3"]]:
    """VGGT pose encoding to nerfstudio camera-to-world (OpenGL) and pixel intrinsics."""
    extrinsics, intrinsics = pose_encoding_to_extri_intri(pose_enc, image_hw)
    return opencv_w2c_to_opengl_c2w(extrinsics), intrinsics


def pixel_grid(height: int, width: int, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixel centres (u, v) = (x + 0.5, y + 0.5), shape [H, W, 2]."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def unproject_depth(
    depth: Float[Tensor, "*b H W"], extrinsics: Float[Tensor, "*b 3 4"], intrinsics: Float[Tensor, "*b 3 3"]
) -> Float[Tensor, "*b H W 3"]:
    """World points of a z-depth map seen by an OpenCV camera (camera-from-world extrinsics).

    Pixel centres are at half-integer coordinates, matching nerfstudio's ray generation.
    """
    height, width = depth.shape[-2:]
    uv = pixel_grid(height, width, depth.device, depth.dtype)
    fx, fy = intrinsics[..., 0, 0, None, None], intrinsics[..., 1, 1, None, None]
    cx, cy = intrinsics[..., 0, 2, None, None], intrinsics[..., 1, 2, None, None]
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    cam = torch.stack([x, y, depth], dim=-1)
    c2w = invert_rigid(extrinsics)
    return torch.einsum("...ij,...hwj->...hwi", c2w[..., :3, :3], cam) + c2w[..., None, None, :3, 3]


def umeyama_similarity(
    src: Float[Tensor, "n 3"], dst: Float[Tensor, "n 3"]
) -> Tuple[Float[Tensor, ""], Float[Tensor, "3 3"], Float[Tensor, "3"]]:
    """Least-squares similarity ``dst ~ s * R @ src + t`` (Umeyama 1991); needs 3 non-collinear points."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / src.shape[0]
    u, sing, vt = torch.linalg.svd(cov)
    fix = torch.ones(3, dtype=src.dtype, device=src.device)
    fix[2] = torch.sign(torch.det(u) * torch.det(vt))
    rot = u @ torch.diag(fix) @ vt
    var_s = (xs * xs).sum() / src.shape[0]
    scale = (sing * fix).sum() / var_s.clamp_min(1e-12)
    return scale, rot, mu_d - scale * rot @ mu_s


def pixel_rays(
    c2w: Float[Tensor, "*b 3 4"], intrinsics: Float[Tensor, "*b 3 3"], height: int, width: int
) -> Tuple[Float[Tensor, "*b h w 3"], Float[Tensor, "*b h w 3"], Float[Tensor, "*b h w"]]:
    """Rays through the pixel centres of OpenGL cameras (nerfstudio's convention): origins, unit directions, and
    the length of the camera-space direction with z = -1 (z-depth x length = distance along the ray)."""
    uv = pixel_grid(height, width, c2w.device, c2w.dtype)
    u, v = uv[..., 0], uv[..., 1]
    fx, fy = intrinsics[..., 0, 0, None, None], intrinsics[..., 1, 1, None, None]
    cx, cy = intrinsics[..., 0, 2, None, None], intrinsics[..., 1, 2, None, None]
    d_cam = torch.stack([(u - cx) / fx, -(v - cy) / fy, -torch.ones_like(u - cx)], dim=-1)  # y up, looking down -z
    norm = d_cam.norm(dim=-1)
    dirs = torch.einsum("...ij,...hwj->...hwi", c2w[..., :3, :3], d_cam) / norm[..., None]
    origins = c2w[..., None, None, :, 3].expand_as(dirs)
    return origins, dirs, norm


def ray_box_intersection(
    origins: Float[Tensor, "*b 3"],
    dirs: Float[Tensor, "*b 3"],
    box_min: Float[Tensor, "3"] | float,
    box_max: Float[Tensor, "3"] | float,
    eps: float = 1e-9,
) -> Tuple[Float[Tensor, "*b"], Float[Tensor, "*b"]]:
    """Slab-method entry and exit distances of rays with an axis-aligned box (entry clamped at 0); rays that miss get
    ``t_far <= t_near``. Direction components below ``eps`` are replaced by ``eps``, so axis-parallel rays give no
    NaN (nerfstudio's AABB collider can)."""
    inv = 1.0 / torch.where(dirs.abs() < eps, torch.full_like(dirs, eps), dirs)
    t0 = (box_min - origins) * inv
    t1 = (box_max - origins) * inv
    return torch.minimum(t0, t1).amax(-1).clamp_min(0.0), torch.maximum(t0, t1).amin(-1)


def fraction_from_z_depth(
    z: Float[Tensor, "*b"], t_near: Float[Tensor, "*b"], t_far: Float[Tensor, "*b"], dir_norm: Float[Tensor, "*b"]
) -> Float[Tensor, "*b"]:
    """Canonical z-depth -> where the point sits between the ray's box entry and exit (the LatentHead's depth)."""
    return ((z * dir_norm - t_near) / (t_far - t_near).clamp_min(1e-4)).clamp(0, 1)


class CanonicalBox(torch.nn.Module):
    """Dataset coordinates <-> the canonical cube ``[-1, 1]^3`` the tri-plane covers: centred on the scene box and
    scaled by half its longest side (one canonical unit = ``half_extent`` dataset units). A box placed on a capture
    (:mod:`tnerf_ns.placement`) is also rotated: its axes are the columns of ``rotation``; canonical coordinates are
    then ``rotation^T (x - centre) / half_extent``. A ray keeps its parameter t in both frames."""

    def __init__(self, aabb: Float[Tensor, "2 3"], rotation: Optional[Float[Tensor, "3 3"]] = None) -> None:
        super().__init__()
        aabb = aabb.float()
        half_extent = (aabb[1] - aabb[0]).max() / 2
        self.register_buffer("centre", aabb.mean(0), persistent=False)
        self.register_buffer("half_extent", half_extent, persistent=False)
        # the box's own half sides in canonical units (a non-cubic scene box is sampled only where it reaches)
        self.register_buffer("extent", (aabb[1] - aabb[0]) / 2 / half_extent, persistent=False)
        self.register_buffer("rotation", None if rotation is None else rotation.float(), persistent=False)

    @classmethod
    def from_placement(cls, placement: "Placement") -> "CanonicalBox":
        half = placement.half_extent
        aabb = torch.stack([placement.centre - half, placement.centre + half])
        return cls(aabb, placement.rotation)

    def to_canonical(self, positions: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 3"]:
        local = positions - self.centre
        return (local if self.rotation is None else local @ self.rotation) / self.half_extent

    def from_canonical(self, positions: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 3"]:
        world = positions * self.half_extent
        return (world if self.rotation is None else world @ self.rotation.T) + self.centre

    def directions_to_canonical(self, directions: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 3"]:
        """Directions in the box's axes (unit length kept)."""
        return directions if self.rotation is None else directions @ self.rotation

    def cameras_to_canonical(self, c2w: Float[Tensor, "*b 3 4"]) -> Float[Tensor, "*b 3 4"]:
        out = c2w.clone()
        if self.rotation is not None:
            out[..., :3, :3] = self.rotation.T @ c2w[..., :3, :3]
        out[..., :3, 3] = self.to_canonical(c2w[..., :3, 3])
        return out

    def ray_span(
        self, origins: Float[Tensor, "*b 3"], directions: Float[Tensor, "*b 3"]
    ) -> Tuple[Float[Tensor, "*b"], Float[Tensor, "*b"]]:
        """Entry and exit t of dataset-frame rays with the box (``t_far <= t_near``: a miss); t is the rays' own
        parameter (a similarity transform keeps it)."""
        o = self.to_canonical(origins)
        d = self.directions_to_canonical(directions) / self.half_extent
        return ray_box_intersection(o, d, -self.extent, self.extent)
