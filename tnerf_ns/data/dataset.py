"""The training-time image dataset of T-NeRF (nerfstudio's InputDataset plus depth and alpha)."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.data.datasets.base_dataset import InputDataset
from torch import Tensor


class TNeRFDataset(InputDataset):
    """InputDataset that also returns depth (in dataset units; 0 where unknown) when the dataparser provides it."""

    def get_depth(self, image_idx: int) -> Optional[Tensor]:
        files = self.metadata.get("depth_filenames")
        if not files or files[image_idx] is None:
            return None
        depth = np.load(files[image_idx]).astype(np.float32)
        depth = depth * float(self.metadata.get("depth_scales", [1.0] * len(self))[image_idx])
        depth = torch.from_numpy(depth)
        if self.scale_factor != 1.0:
            h, w = self.cameras.height[image_idx].item(), self.cameras.width[image_idx].item()
            depth = torch.nn.functional.interpolate(depth[None, None], size=(h, w), mode="nearest")[0, 0]
        return depth

    def get_rgba(self, image_idx: int) -> Float[Tensor, "h w 4"]:
        """Colour and alpha (alpha 1 for images without it), float in [0, 1]."""
        image = torch.from_numpy(self.get_numpy_image(image_idx).astype(np.float32) / 255.0)
        if image.shape[-1] == 3:
            image = torch.cat([image, torch.ones_like(image[..., :1])], dim=-1)
        return image

    def get_metadata(self, data: Dict) -> Dict:
        depth = self.get_depth(data["image_idx"])
        return {} if depth is None else {"depth_image": depth[..., None]}
