"""Per-image evaluation metrics of ``ns-eval``: PSNR, SSIM, LPIPS (when its weights can be loaded), depth error."""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Tuple

import torch
from jaxtyping import Float
from nerfstudio.utils import colormaps
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn
from torchmetrics.functional import structural_similarity_index_measure
from torchmetrics.image import PeakSignalNoiseRatio


class ImageMetrics(nn.Module):
    """Metrics of a rendered image against its ground truth.

    Args:
        compute_lpips: try LPIPS (AlexNet weights come from the internet; offline machines skip it with a warning).
    """

    def __init__(self, compute_lpips: bool = True) -> None:
        super().__init__()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self._lpips = None
        self._lpips_failed = not compute_lpips

    def lpips(self) -> Optional[nn.Module]:
        if self._lpips is None and not self._lpips_failed:
            try:
                from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._lpips = LearnedPerceptualImagePatchSimilarity(normalize=True).to(self.psnr.device)
                if not getattr(self._lpips, "available", True):  # tnerf_ns.compat's offline stand-in (it warned)
                    self._lpips, self._lpips_failed = None, True
            except Exception as err:  # offline: the AlexNet weights cannot be downloaded
                self._lpips_failed = True
                CONSOLE.print(f"[yellow]LPIPS disabled: its AlexNet weights could not be loaded ({type(err).__name__})")
        return self._lpips

    def forward(
        self,
        rgb: Float[Tensor, "h w 3"],
        gt: Float[Tensor, "h w 3"],
        z_depth: Optional[Float[Tensor, "h w"]] = None,
        gt_depth: Optional[Float[Tensor, "h w"]] = None,
    ) -> Dict[str, float]:
        gt_nchw = gt.permute(2, 0, 1)[None]
        rgb_nchw = rgb.permute(2, 0, 1)[None].clamp(0, 1)
        metrics = {
            "psnr": float(self.psnr(rgb_nchw, gt_nchw).item()),
            "ssim": float(structural_similarity_index_measure(rgb_nchw, gt_nchw, data_range=1.0)),
        }
        lpips = self.lpips()
        if lpips is not None:
            metrics["lpips"] = float(lpips(rgb_nchw, gt_nchw))
        if gt_depth is not None and z_depth is not None:
            valid = gt_depth > 0
            if valid.any():
                metrics["depth_abs_rel"] = float(((z_depth[valid] - gt_depth[valid]).abs() / gt_depth[valid]).mean())
        return metrics

    def metrics_and_images(
        self, outputs: Dict[str, Tensor], gt: Float[Tensor, "h w 3"], gt_depth: Optional[Tensor] = None
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        """What ``ns-eval`` reports for one rendered image (``gt`` composited like the render) and the images it
        saves: ground truth beside the render, opacity and depth."""
        z_depth = outputs["z_depth"][..., 0] if "z_depth" in outputs else None
        metrics = self(outputs["rgb"], gt, z_depth, gt_depth)
        acc = colormaps.apply_colormap(outputs["accumulation"])
        depth = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
        return metrics, {"img": torch.cat([gt, outputs["rgb"]], dim=1), "accumulation": acc, "depth": depth}
