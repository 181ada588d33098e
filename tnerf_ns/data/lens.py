"""Lens conventions of source views: which camera models T-NeRF reads, and OpenCV undistortion of source photos.

The backbone and the lifting read every source view as a pinhole image with intrinsics (fx, fy, cx, cy). Photos
with OpenCV radial/tangential distortion (nerfstudio's ``PERSPECTIVE`` cameras with ``distortion_params``
``[k1, k2, k3, k4, p1, p2]``) are resampled into the pinhole image of the same intrinsics; target rays are left to
nerfstudio, whose cameras already follow the distortion. Other camera models (fisheye, equirectangular, ...) are
refused with a message naming the data and the model.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from jaxtyping import Bool, Float
from nerfstudio.cameras.cameras import Cameras, CameraType
from torch import Tensor

from tnerf_ns.geometry import pixel_grid

__all__ = [
    "SUPPORTED_CAMERA_TYPES",
    "UnsupportedCameraError",
    "check_camera_model",
    "distort_normalised",
    "has_distortion",
    "undistort_image",
]

SUPPORTED_CAMERA_TYPES: Tuple[CameraType, ...] = (CameraType.PERSPECTIVE,)
"""Camera models of source views: pinhole, with or without OpenCV radial/tangential distortion."""

Scalars = Union[float, Tensor]
"""One value for all views, or a tensor [k] (one per view)."""


class UnsupportedCameraError(ValueError):
    """The data's cameras use a model the source views cannot be read with."""


def check_camera_model(cameras: Cameras, source: str) -> None:
    """Raise :class:`UnsupportedCameraError` naming ``source`` (data path or file) and the model when any camera of
    ``cameras`` is not one of :data:`SUPPORTED_CAMERA_TYPES`."""
    supported = {t.value for t in SUPPORTED_CAMERA_TYPES}
    found = sorted({int(v) for v in cameras.camera_type.reshape(-1).tolist()} - supported)
    if not found:
        return
    names = ", ".join(CameraType(v).name for v in found)
    raise UnsupportedCameraError(
        f"{source}: camera model {names} is not supported for source views (supported: "
        f"{', '.join(t.name for t in SUPPORTED_CAMERA_TYPES)}: pinhole, with or without OpenCV radial/tangential "
        "distortion k1-k4, p1, p2); convert the photos to pinhole images first"
    )


def has_distortion(distortion_params: Optional[Tensor]) -> bool:
    """Whether any coefficient of ``distortion_params`` ([..., 6]) is non-zero (above 1e-6)."""
    return distortion_params is not None and bool((distortion_params.abs() > 1e-6).any())


def distort_normalised(xy: Float[Tensor, "*batch 2"], params: Float[Tensor, "*batch 6"]) -> Float[Tensor, "*batch 2"]:
    """Distorted normalised image coordinates of pinhole ones: nerfstudio's OPENCV forward model (the one
    ``camera_utils.radial_and_tangential_undistort`` inverts). ``params`` is [k1, k2, k3, k4, p1, p2], broadcast
    against ``xy``."""
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, k3, k4, p1, p2 = params.unbind(-1)
    r = x * x + y * y
    d = 1.0 + r * (k1 + r * (k2 + r * (k3 + r * k4)))
    xd = x * d + 2 * p1 * x * y + p2 * (r + 2 * x * x)
    yd = y * d + 2 * p2 * x * y + p1 * (r + 2 * y * y)
    return torch.stack([xd, yd], dim=-1)


def undistort_image(
    image: Float[Tensor, "*k c h w"],
    fx: Scalars,
    fy: Scalars,
    cx: Scalars,
    cy: Scalars,
    params: Float[Tensor, "*k 6"],
    mode: str = "bilinear",
) -> Tuple[Float[Tensor, "*k c h w"], Bool[Tensor, "*k h w"]]:
    """The pinhole image, with the SAME intrinsics, of a photo taken through OpenCV lens distortion, and which of its
    pixels the photo covers.

    The intrinsics are kept (no new optimal camera matrix) because the backbone and the lifting read the result as a
    pinhole image with the camera's (fx, fy, cx, cy), exactly what the dataset already records, and target rays
    (nerfstudio's distorted cameras) are unaffected. Each output pixel centre (u + 0.5, v + 0.5) is mapped through the
    forward model into the photo and sampled there. Pixels whose distorted position falls outside the photo (empty
    borders of barrel distortion) are flagged False in the mask and filled by replicating the photo's edge
    (``padding_mode="border"``): zeros or the background would show the backbone a frame that is not in the scene,
    while the edge continues the image plausibly.

    Args:
        image: one view [c, h, w] or a batch [k, c, h, w].
        fx, fy, cx, cy: pixel intrinsics of ``image`` (floats, or tensors [k] for a batch of views).
        params: [k1, k2, k3, k4, p1, p2] ([6], or [k, 6] for a batch).
        mode: ``"bilinear"`` for photos, ``"nearest"`` for depth maps.

    Returns:
        The undistorted image (shape and dtype of ``image``; the input itself when no view is distorted; views
        without distortion are copied bitwise) and the validity mask [h, w] or [k, h, w].
    """
    single = image.dim() == 3
    batch = image[None] if single else image
    k, _, h, w = batch.shape
    dev = batch.device
    params = torch.as_tensor(params, dtype=torch.float32, device=dev).reshape(-1, 6).expand(k, 6)
    distorted = (params.abs() > 1e-6).any(dim=-1)  # [k]
    if not bool(distorted.any()):
        return image, torch.ones(image.shape[:-3] + image.shape[-2:], dtype=torch.bool, device=dev)

    def per_view(value: Scalars) -> Tensor:
        return torch.as_tensor(value, dtype=torch.float32, device=dev).reshape(-1).expand(k)[:, None, None]

    fx_, fy_, cx_, cy_ = (per_view(v) for v in (fx, fy, cx, cy))
    u, v = pixel_grid(h, w, dev).unbind(-1)
    xy = torch.stack([(u - cx_) / fx_, (v - cy_) / fy_], dim=-1)  # [k, h, w, 2]
    xyd = distort_normalised(xy, params[:, None, None, :])
    px, py = xyd[..., 0] * fx_ + cx_, xyd[..., 1] * fy_ + cy_  # pixel position in the photo
    valid = (px >= 0) & (px <= w) & (py >= 0) & (py <= h)
    grid = torch.stack([px / w * 2 - 1, py / h * 2 - 1], dim=-1)  # align_corners=False: -1/1 are the photo's edges
    work = batch if batch.is_floating_point() else batch.float()
    out = torch.nn.functional.grid_sample(
        work, grid.to(work.dtype), mode=mode, padding_mode="border", align_corners=False
    ).to(batch.dtype)
    out = torch.where(distorted[:, None, None, None], out, batch)  # undistorted views stay bitwise the same
    valid = valid | ~distorted[:, None, None]
    return (out[0], valid[0]) if single else (out, valid)


def undistorted_view(view: Float[Tensor, "h w c"], cameras: Cameras, index: int, mode: str) -> Float[Tensor, "h w c"]:
    """Photo ``index`` of ``cameras`` (``view``, at its own resolution, before any resize to the context's size) as
    the pinhole image of the same intrinsics; ``view`` itself when the camera has no distortion. ``mode``:
    ``"bilinear"`` for images, ``"nearest"`` for depth."""
    params = cameras.distortion_params
    if params is None or not has_distortion(params[index]):
        return view
    # the photo may differ from the camera's recorded size by rounding (camera_res_scale_factor): scale with it
    sx, sy = view.shape[1] / float(cameras.width[index, 0]), view.shape[0] / float(cameras.height[index, 0])
    fx, fy = float(cameras.fx[index, 0]) * sx, float(cameras.fy[index, 0]) * sy
    cx, cy = float(cameras.cx[index, 0]) * sx, float(cameras.cy[index, 0]) * sy
    out, _ = undistort_image(view.permute(2, 0, 1), fx, fy, cx, cy, params[index], mode=mode)
    return out.permute(1, 2, 0)
