"""Image preparation for VGGT: RGB in [0, 1], sizes that are multiples of the patch size."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageInputError(ValueError):
    """An input image could not be used; the message names the file."""


def patch_rounded_side(side: int, other: int, other_target: int, patch_size: int = 14) -> int:
    """``side`` scaled like ``other -> other_target`` (aspect ratio kept), rounded to whole patches (at least one).
    The one rounding rule of every resize for VGGT."""
    return max(patch_size, round(side * other_target / other / patch_size) * patch_size)


def vggt_size(height: int, width: int, target: int, patch_size: int = 14, mode: str = "crop") -> Tuple[int, int]:
    """Output size: width ``target`` (crop) or longer side ``target`` (pad); the other side rounded to patches."""
    if mode == "crop":
        return min(patch_rounded_side(height, width, target, patch_size), target), target
    if width >= height:
        return patch_rounded_side(height, width, target, patch_size), target
    return target, patch_rounded_side(width, height, target, patch_size)


def resize_to_width(
    images: Float[Tensor, "s 3 h w"], width: int, patch_size: int = 14, intrinsics: Optional[Tensor] = None
) -> Tuple[Float[Tensor, "s 3 H W"], Optional[Tensor]]:
    """Source photos to the backbone's input width (bilinear, antialiased; height rounded to patches, no crop);
    pixel ``intrinsics`` [s, 3, 3] follow."""
    h, w = images.shape[-2:]
    new_h = patch_rounded_side(h, w, width, patch_size)
    if (new_h, width) != (h, w):
        images = F.interpolate(images, size=(new_h, width), mode="bilinear", antialias=True, align_corners=False)
        if intrinsics is not None:
            intrinsics = intrinsics.clone()
            intrinsics[:, 0] *= width / w
            intrinsics[:, 1] *= new_h / h
    return images.clamp(0, 1), intrinsics


def read_rgb(path: Union[str, Path], background: float = 1.0) -> np.ndarray:
    """An image file as float32 RGB in [0, 1]; alpha is composited over ``background``; 16-bit and gray handled."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float32)
                arr = arr / (65535.0 if arr.max() > 255 else 255.0)
                arr = np.repeat(arr[..., None], 3, axis=-1)
            else:
                if mode not in ("RGB", "RGBA", "L", "LA"):
                    img = img.convert("RGBA")
                arr = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageInputError(f"{path}: cannot read image ({err})") from err
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] in (2, 4):  # gray+alpha or RGB+alpha
        alpha = arr[..., -1:]
        arr = arr[..., :-1] * alpha + background * (1.0 - alpha)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageInputError(f"{path}: empty image")
    return np.ascontiguousarray(arr[..., :3])


def resize_for_vggt(
    image: Float[Tensor, "3 h w"], target: int, patch_size: int = 14, mode: Literal["crop", "pad"] = "crop"
) -> Float[Tensor, "3 H W"]:
    """Resize (bicubic, antialiased) so that both sides are multiples of the patch size.

    ``crop``: width becomes ``target``, height follows the aspect ratio and is centre-cropped to at most ``target``.
    ``pad``: the longer side becomes ``target`` and the image is padded with white to a square.
    """
    h, w = image.shape[-2:]
    if mode == "crop":
        new_h = patch_rounded_side(h, w, target, patch_size)
        out = F.interpolate(image[None], size=(new_h, target), mode="bicubic", antialias=True, align_corners=False)[0]
        if new_h > target:
            top = (new_h - target) // 2
            out = out[:, top : top + target]
    else:
        new_h, new_w = vggt_size(h, w, target, patch_size, mode="pad")
        out = F.interpolate(image[None], size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)[0]
        ph, pw = target - new_h, target - new_w
        out = F.pad(out, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=1.0)
    return out.clamp(0.0, 1.0)


def list_images(folder: Union[str, Path]) -> List[Path]:
    """Image files of a folder in natural order (r_2 before r_10)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageInputError(f"{folder}: not a folder")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]

    def natural(p: Path):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]

    files.sort(key=natural)
    if not files:
        raise ImageInputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_images(
    paths: Sequence[Union[str, Path]], target: int = 518, patch_size: int = 14, mode: Literal["crop", "pad"] = "crop"
) -> Float[Tensor, "n 3 H W"]:
    """Load, composite and resize images for VGGT; frames of different shapes are padded (white, centred)."""
    if not paths:
        raise ImageInputError("no input images given")
    images = [resize_for_vggt(torch.from_numpy(read_rgb(p)).permute(2, 0, 1), target, patch_size, mode) for p in paths]
    max_h = max(i.shape[1] for i in images)
    max_w = max(i.shape[2] for i in images)
    padded = []
    for img in images:
        ph, pw = max_h - img.shape[1], max_w - img.shape[2]
        padded.append(F.pad(img, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=1.0))
    return torch.stack(padded)
