"""The loss terms of the T-NeRF model, weighted by its configuration (each term is a function of
:mod:`tnerf_ns.losses`); terms that do not apply to a batch or a representation are left out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Tuple

from torch import Tensor

from tnerf_ns import losses

if TYPE_CHECKING:
    from tnerf_ns.models.tnerf_model import TNeRFModel


def blend_for_loss(model: "TNeRFModel", outputs: Dict, image: Tensor, key: str = "rgb") -> Tuple[Tensor, Tensor]:
    """Prediction and ground truth composited on the model's background the way nerfstudio's losses compare them."""
    return model.renderer_rgb.blend_background_for_loss_computation(
        pred_image=outputs[key], pred_accumulation=outputs["accumulation"], gt_image=image.to(model.device)
    )


def model_losses(model: "TNeRFModel", outputs: Dict, batch: Dict) -> Dict[str, Tensor]:
    """Photometric losses (fine and coarse pass); in training also depth, the 3-D point losses, the source-view
    losses (tri-plane: the lifted source pixels) and the tri-plane regularisers."""
    cfg, half, device = model.config, model.box.half_extent, model.device
    image = batch["image"].to(device)
    terms: Dict[str, Tuple[float, Optional[Tensor]]] = {
        "rgb_loss": (cfg.rgb_loss_mult, losses.photometric_loss(*blend_for_loss(model, outputs, image)))
    }
    if cfg.coarse_rgb_loss_mult > 0:
        pred_c, gt_c = blend_for_loss(model, outputs, image, "rgb_coarse")
        terms["rgb_coarse_loss"] = (cfg.coarse_rgb_loss_mult, losses.photometric_loss(pred_c, gt_c))
    if not model.training:
        return {name: mult * value for name, (mult, value) in terms.items() if value is not None}
    if cfg.depth_loss_mult > 0 and "depth" in batch and "z_depth" in outputs:
        target = batch["depth"].to(device) / half  # dataset -> canonical units, like the box
        terms["depth_loss"] = (cfg.depth_loss_mult, losses.depth_loss(outputs["z_depth"][..., 0] / half, target))
    if "point_density" in outputs:
        pts = batch["context"].points
        # ground truth is per dataset unit; a canonical unit is ``half`` dataset units long
        target = pts.density.to(device) * half
        opacity = losses.point_opacity_loss(outputs["point_density"], target, cfg.point_reference_step)
        terms["point_opacity_loss"] = (cfg.point_opacity_loss_mult, opacity)
        if cfg.point_rgb_loss_mult > 0:
            colour = losses.point_colour_loss(outputs["point_rgb"], pts.rgb.to(device), (pts.kind == 0).to(device))
            terms["point_rgb_loss"] = (cfg.point_rgb_loss_mult, colour)
    ctx = batch.get("context")
    if outputs.get("lifted") is not None and ctx is not None:
        depth = None if ctx.depth is None else ctx.depth.to(device)
        src = losses.source_view_losses(outputs["lifted"], ctx.alpha.to(device), depth, half)
        for name in ("source_weight_loss", "source_depth_loss"):
            mult = getattr(cfg, f"{name}_mult")
            if mult > 0 and name in src:
                terms[name] = (mult, src[name])
    if cfg.representation == "triplane":  # regularisers of the planes (a predicted MLP has none)
        if cfg.triplane_l2_mult > 0:
            terms["triplane_l2"] = (cfg.triplane_l2_mult, losses.triplane_l2(outputs["planes"]))
        if cfg.triplane_tv_mult > 0:
            terms["triplane_tv"] = (cfg.triplane_tv_mult, losses.triplane_tv(outputs["planes"]))
    return {name: mult * value for name, (mult, value) in terms.items() if value is not None}
