"""The training-time image dataset of T-NeRF (nerfstudio's InputDataset plus depth and alpha)."""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.data.datasets.base_dataset import InputDataset
from torch import Tensor


class TNeRFDataset(InputDataset):
    """InputDataset that keeps the images' alpha (the model composites targets on its own background, whatever the
    dataparser's ``alpha_color``) and also returns depth (in dataset units; 0 where unknown) when the dataparser
    provides it."""

    def get_image_float32(self, image_idx: int) -> Float[Tensor, "h w c"]:
        """RGB, or RGBA for images with alpha: never composited here, so that targets and renders share the model's
        background (``--pipeline.model.background-color``; nerfstudio's blend)."""
        return torch.from_numpy(self.get_numpy_image(image_idx).astype(np.float32) / 255.0)

    def depth_scale(self, image_idx: int) -> float:
        """Stored depth -> dataset units: ``depth_scales`` (tnerf-scenes), else nerfstudio's convention (the file's
        unit times the dataparser's scale, as its depth datasets do)."""
        if "depth_scales" in self.metadata:
            return float(self.metadata["depth_scales"][image_idx])
        unit = float(self.metadata.get("depth_unit_scale_factor", 1.0))
        return unit * float(self._dataparser_outputs.dataparser_scale)

    def get_depth(self, image_idx: int) -> Optional[Tensor]:
        files = self.metadata.get("depth_filenames")
        if not files or files[image_idx] is None:
            return None
        depth = torch.from_numpy(np.load(files[image_idx]).astype(np.float32) * self.depth_scale(image_idx))
        if self.scale_factor != 1.0:
            h, w = self.cameras.height[image_idx].item(), self.cameras.width[image_idx].item()
            depth = torch.nn.functional.interpolate(depth[None, None], size=(h, w), mode="nearest")[0, 0]
        return depth

    def get_rgba(self, image_idx: int) -> Float[Tensor, "h w 4"]:
        """Colour and alpha (alpha 1 for images without it), float in [0, 1]."""
        image = self.get_image_float32(image_idx)
        if image.shape[-1] == 3:
            image = torch.cat([image, torch.ones_like(image[..., :1])], dim=-1)
        return image

    def get_metadata(self, data: Dict) -> Dict:
        depth = self.get_depth(data["image_idx"])
        return {} if depth is None else {"depth_image": depth[..., None]}


PER_IMAGE_METADATA = ("depth_filenames", "depth_scales")
"""Dataparser metadata entries that are per-image lists."""


def subset_outputs(outputs: DataparserOutputs, keep: List[int]) -> DataparserOutputs:
    """The same dataparser outputs restricted to some images (per-image metadata lists are restricted too)."""
    metadata = dict(outputs.metadata)
    for key in PER_IMAGE_METADATA:
        if metadata.get(key) is not None:
            metadata[key] = [metadata[key][i] for i in keep]
    return DataparserOutputs(
        image_filenames=[outputs.image_filenames[i] for i in keep],
        cameras=outputs.cameras[torch.tensor(keep, dtype=torch.long)],
        alpha_color=outputs.alpha_color,
        scene_box=outputs.scene_box,
        mask_filenames=[outputs.mask_filenames[i] for i in keep] if outputs.mask_filenames else None,
        metadata=metadata,
        dataparser_transform=outputs.dataparser_transform,
        dataparser_scale=outputs.dataparser_scale,
    )
