"""Object masks of a capture (``masks/<image name>``, white = object) and the scores computed with them.

The object-masked PSNR is the mean squared error over the pixels inside the mask, per image (RegNeRF's evaluation code,
which the published sparse-view DTU figures use); the masked SSIM sets the background to white in both images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np
import torch
from jaxtyping import Bool, Float
from PIL import Image
from torch import Tensor

from tnerf_ns.evaluation.protocol import ssim


class MaskFileError(ValueError):
    """A mask image that cannot be used (the message names the file)."""


def psnr_of(a: Tensor, b: Tensor, where: Optional[Bool[Tensor, "h w"]] = None) -> float:
    """PSNR of images in [0, 1]; ``where``: only these pixels."""
    err = (a - b) ** 2
    mse = err[where].mean() if where is not None else err.mean()
    return float(-10 * torch.log10(mse.clamp_min(1e-10)))


def read_mask(path: Path, hw) -> Optional[Bool[Tensor, "h w"]]:
    """The mask at ``path`` (None when there is none), at ``hw`` = (height, width): a mask of another size with the
    image's aspect (the images were rescaled) is resized by nearest neighbour; any other size is an error."""
    if not path.is_file():
        return None
    try:
        image = Image.open(path).convert("L")
    except OSError as err:
        raise MaskFileError(f"{path}: cannot read the mask ({err})") from err
    h, w = int(hw[0]), int(hw[1])
    if (image.height, image.width) != (h, w):
        if abs(image.width * h - image.height * w) > max(image.width, image.height):  # not the image's aspect
            raise MaskFileError(f"{path}: mask is {image.width}x{image.height}, its image {w}x{h}")
        image = image.resize((w, h), Image.NEAREST)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0 > 0.5)


def mask_finder(folder: Path, dataset) -> Optional[Callable[[int, tuple], Optional[Tensor]]]:
    """``find(i, hw)``: the mask of image ``i`` of a nerfstudio ``dataset`` from ``folder/masks`` (None when the capture
    has no masks folder)."""
    masks = folder / "masks"
    if not masks.is_dir():
        return None
    return lambda i, hw: read_mask(masks / Path(dataset.image_filenames[i]).name, hw)


def masked_scores(
    pred: Float[Tensor, "h w 3"], gt: Float[Tensor, "h w 3"], mask: Optional[Bool[Tensor, "h w"]]
) -> Dict[str, float]:
    """Full-image PSNR/SSIM and, with a mask, the object-masked PSNR/SSIM and the PSNR outside the mask."""
    out = {"psnr": psnr_of(pred, gt), "ssim": ssim(pred, gt)}
    if mask is not None:
        out["psnr_masked"] = psnr_of(pred, gt, mask)
        white = torch.ones_like(gt)
        m = mask[..., None].float()
        out["ssim_masked"] = ssim(pred * m + white * (1 - m), gt * m + white * (1 - m))
        out["psnr_outside"] = psnr_of(pred, gt, ~mask)
    return out
