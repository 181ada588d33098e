"""What nerfstudio's exporters read from a T-NeRF model: alpha is the rendered opacity, and rays that see nothing
report far depth (free space for the TSDF). The exporters themselves run end to end in test_export.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tnerf_ns.models.tnerf_model import FAR_DEPTH, TNeRFModel


def bare_model(background="white") -> TNeRFModel:
    model = TNeRFModel.__new__(TNeRFModel)  # only the two overrides are exercised: no encoder, no field
    torch.nn.Module.__init__(model)
    model.renderer_rgb = SimpleNamespace(background_color=background)
    return model


def test_alpha_is_the_rendered_opacity():
    rgb, acc = torch.rand(4, 5, 3), torch.rand(4, 5, 1)
    rgba = bare_model().get_rgba_image({"rgb": rgb, "accumulation": acc})
    assert torch.equal(rgba[..., :3], rgb) and torch.equal(rgba[..., 3:], acc)


def test_random_background_keeps_nerfstudios_rule():
    rgb, acc = torch.rand(4, 5, 3), torch.rand(4, 5, 1) * 0.5 + 0.5
    rgba = bare_model("random").get_rgba_image({"rgb": rgb, "accumulation": acc})
    assert torch.allclose(rgba[..., :3], rgb / acc)


def test_exporter_depth_is_far_where_the_ray_sees_nothing(monkeypatch):
    depth = torch.full((3, 1), 2.0)
    acc = torch.tensor([[0.9], [0.4], [0.51]])
    model = bare_model()
    monkeypatch.setattr(model, "context_for_rays", lambda bundle: None)
    monkeypatch.setattr(model, "render_image", lambda bundle, ctx: {"depth": depth.clone(), "accumulation": acc})
    out = model.get_outputs_for_camera_ray_bundle(None)
    assert out["depth"][:, 0].tolist() == pytest.approx([2.0, FAR_DEPTH, 2.0])
