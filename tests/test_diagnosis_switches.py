"""The diagnosis's config switches (--pipeline.model.lift-depth, backbone-features, triplane-features,
projected-views): each changes exactly what it names."""

from __future__ import annotations

import pytest
import torch
from test_triplane import camera

from tnerf_ns.fields.source_projection import TriplaneScene
from tnerf_ns.geometry import CanonicalBox
from tnerf_ns.heads.triplane_lifting import TriplaneLifter
from tnerf_ns.models.tnerf_model import TNeRFModelConfig
from tnerf_ns.scene_context import SceneContext

SIZES = dict(backbone="vggt-small", backbone_weights=None, feature_dim=8, triplane_resolution=16, triplane_channels=8,
             backbone_image_width=42)  # fmt: skip
BOX = CanonicalBox(torch.tensor([[-1.0, -1, -1], [1, 1, 1]]))


def test_oracle_depth_puts_known_pixels_at_their_ground_truth_depth():
    lifter = TriplaneLifter(feature_dim=2, resolution=16, channels=4, lift_stride=1, refine_layers=0)
    h = w = 8
    intr = torch.tensor([[[16.0, 0, 4], [0, 16, 4], [0, 0, 1]]])
    c2w = camera([0, 0, 3])[None]  # looking along -z from z = 3
    z = torch.full((1, h, w), 2.5)  # a wall at world z = 0.5
    z[0, 0, 0] = 0.0  # unknown: keeps the predicted depth
    maps = (torch.ones(1, 2, h, w), torch.zeros(1, h, w), torch.zeros(1, h, w), c2w, intr)
    lifted = lifter.lift(*maps, oracle_z=z)
    world_z = lifted.points[0, ..., 2]
    torch.testing.assert_close(world_z[1:], torch.full_like(world_z[1:], 0.5), atol=1e-4, rtol=0)
    torch.testing.assert_close(lifted.points[0, 0, 0], lifter.lift(*maps).points[0, 0, 0])


def context(depth=None) -> SceneContext:
    k, h, w = 2, 28, 28
    c2w = torch.stack([camera([0, 0, 3]), camera([0.5, 0, 3])])
    intr = torch.tensor([[30.0, 0, 14], [0, 30, 14], [0, 0, 1]]).expand(k, 3, 3)
    images = torch.rand(k, 3, h, w, generator=torch.Generator().manual_seed(0))
    return SceneContext(("s", 0), 0, "scene_a", images, torch.ones(k, h, w), c2w, intr, depth=depth)


def encode(**switches) -> TriplaneScene:
    torch.manual_seed(0)
    encoder = TNeRFModelConfig(**SIZES, **switches).make_encoder(BOX).eval()
    with torch.no_grad():
        return encoder(context(depth=torch.full((2, 28, 28), 2.8)))[0]


def test_switches_change_the_prediction_as_named():
    default = encode()
    assert torch.equal(encode(triplane_features=False).planes, torch.zeros_like(default.planes))
    assert not torch.allclose(encode(backbone_features=False).planes, default.planes)
    oracle = encode(lift_depth="ground-truth")
    assert not torch.allclose(oracle.planes, default.planes)
    # the oracle depth reaches the projection branch's depth channel too
    assert not torch.allclose(oracle.views.maps[:, -1], default.views.maps[:, -1])
    no_views = encode(projected_views=False)
    assert no_views.views is None and torch.equal(no_views.planes, default.planes)
    again = encode()  # deterministic: the differences are the switches'
    torch.testing.assert_close(again.planes, default.planes)
    torch.testing.assert_close(again.views.maps, default.views.maps)


def test_oracle_depth_without_depth_maps_names_the_scene():
    encoder = TNeRFModelConfig(**SIZES, lift_depth="ground-truth").make_encoder(BOX).eval()
    with pytest.raises(ValueError, match="scene_a.*lift-depth ground-truth"):
        encoder(context())
