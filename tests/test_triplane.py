"""LatentHead, tri-plane lifting and the tri-plane field."""

from __future__ import annotations

import math

import torch

from tnerf_ns.backbone import build_vggt
from tnerf_ns.fields.triplane_field import TriplaneField, sample_triplane
from tnerf_ns.geometry import pixel_rays, ray_box_intersection
from tnerf_ns.heads.latent_head import LatentHead
from tnerf_ns.heads.triplane_lifting import TriplaneLifter
from tnerf_ns.scenes.camera_rigs import look_at_opengl


def camera(eye) -> torch.Tensor:
    import numpy as np

    return torch.tensor(look_at_opengl(np.asarray(eye, dtype=float), np.zeros(3)), dtype=torch.float32)


def test_latent_head_outputs_and_point_head_init():
    vggt = build_vggt("vggt-small")
    head = LatentHead(vggt.config, feature_dim=8)
    images = torch.rand(1, 2, 3, 28, 42)
    with torch.no_grad():
        agg = vggt.aggregate(images, head.layers)
        out = head(agg, (28, 42), vggt.patch_start_idx)
    assert out["features"].shape == (1, 2, 8, 28, 42) and out["depth_logit"].shape == (1, 2, 28, 42)
    copied = head.init_from_point_head(vggt.point_head)
    assert copied == len(vggt.point_head.state_dict()) - 2  # all but the last conv (different width)
    key = "scratch.refinenet1.out_conv.weight"
    assert torch.equal(head.dpt.state_dict()[key], vggt.point_head.state_dict()[key])


def test_box_intersection_and_pixel_rays():
    t0, t1 = ray_box_intersection(torch.tensor([[0.0, 0, 3]]), torch.tensor([[0.0, 0, -1]]), -1.0, 1.0)
    assert float(t0) == 2.0 and float(t1) == 4.0
    t0, t1 = ray_box_intersection(torch.tensor([[0.0, 3, 3]]), torch.tensor([[0.0, 0, -1]]), -1.0, 1.0)
    assert float(t1) <= float(t0)  # miss
    intr = torch.tensor([[[20.0, 0, 8], [0, 20, 6], [0, 0, 1]]])
    o, d, norm = pixel_rays(camera([0, 0, 3])[None], intr, 12, 16)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(1, 12, 16))
    centre = d[0, 6, 8]
    assert centre[2] < -0.99  # looking at the origin from +z
    assert d[0, 0, 8, 1] > 0  # top row points up (OpenGL y up)


def test_lifting_rays_equal_nerfstudio_camera_rays():
    """The lifting's pixel rays are nerfstudio's rays for the same camera (half-pixel centres, principal point,
    OpenGL axes), so splatted points land where rendering looks."""
    from nerfstudio.cameras.cameras import Cameras, CameraType

    c2w = camera([0.4, -2.5, 1.2])
    fx, fy, cx, cy, h, w = 23.0, 19.0, 9.3, 6.1, 12, 17  # off-centre principal point, non-square pixels
    cams = Cameras(camera_to_worlds=c2w[None], fx=fx, fy=fy, cx=cx, cy=cy, width=w, height=h,
                   camera_type=CameraType.PERSPECTIVE)  # fmt: skip
    bundle = cams.generate_rays(camera_indices=0, keep_shape=True)
    intr = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    origins, dirs, norm = pixel_rays(c2w, intr, h, w)
    torch.testing.assert_close(origins, bundle.origins, atol=1e-6, rtol=0)
    torch.testing.assert_close(dirs, bundle.directions, atol=1e-6, rtol=0)
    torch.testing.assert_close(norm, bundle.metadata["directions_norm"][..., 0], atol=1e-6, rtol=0)


def test_lifting_puts_features_where_the_depth_says():
    """A single view whose every pixel sees depth t: the splatted mass lies on the matching plane cells."""
    lifter = TriplaneLifter(feature_dim=2, resolution=16, channels=4, lift_stride=1, refine_layers=0)
    h = w = 8
    intr = torch.tensor([[[16.0, 0, 4], [0, 16, 4], [0, 0, 1]]])  # narrow view: every ray enters the box
    c2w = camera([0, 0, 3])[None]
    feats = torch.ones(1, 2, h, w)
    # fraction 0.5 of the box segment [2, 4] -> t = 3 on the central ray -> z = 0
    lifted = lifter.lift(feats, torch.zeros(1, h, w), torch.full((1, h, w), 10.0), c2w, intr)
    z = lifted.points[0, ..., 2]
    assert lifted.valid.all() and z.abs().max() < 0.35
    planes_in, wsum = lifter.splat(lifted.points, lifted.features, lifted.weights)
    assert planes_in.shape == (3, 2 + 1 + 1, 16, 16)
    assert wsum[1].sum(1).argmax() in (7, 8)  # xz plane: rows are z, mass at z ~ 0 (middle rows)
    planes, _ = lifter(feats, torch.zeros(1, h, w), torch.zeros(1, h, w), c2w, intr)
    assert planes.shape == (3, 4, 16, 16)


def test_lifting_ignores_rays_that_miss_the_box():
    lifter = TriplaneLifter(feature_dim=2, resolution=8, channels=4, lift_stride=1, refine_layers=0)
    intr = torch.tensor([[[4.0, 0, 4], [0, 4, 4], [0, 0, 1]]])
    c2w = camera([0, 5, 3])[None]
    c2w[0, :, 3] = torch.tensor([0.0, 5.0, 3.0])
    c2w[0, :, :3] = torch.eye(3)  # looking along -z at y = 5: never enters the box
    lifted = lifter.lift(torch.ones(1, 2, 8, 8), torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), c2w, intr)
    assert not lifted.valid.any() and lifted.weights.sum() == 0


def test_sample_triplane_reads_the_right_cells():
    planes = torch.zeros(3, 1, 5, 5)
    planes[0, 0, 4, 0] = 1.0  # xy plane, row y = +1, column x = -1
    planes[2, 0, 0, 4] = 2.0  # yz plane, row z = -1, column y = +1
    feats = sample_triplane(planes, torch.tensor([[-1.0, 1.0, 0.3], [0.0, 1.0, -1.0]]))
    assert feats.shape == (2, 3)
    assert float(feats[0, 0]) == 1.0 and float(feats[1, 2]) == 2.0


def test_field_decodes_density_and_colour_with_gradients():
    field = TriplaneField(plane_channels=4, hidden_dim=16, num_layers=2, position_frequencies=2, direction_levels=2)
    planes = torch.randn(3, 4, 8, 8, requires_grad=True)
    pts = torch.rand(10, 3) * 2 - 1
    density, rgb = field.decode(planes, pts, torch.nn.functional.normalize(torch.randn(10, 3), dim=-1))
    assert density.shape == (10, 1) and (density >= 0).all()
    assert rgb.shape == (10, 3) and ((rgb >= 0) & (rgb <= 1)).all()
    (density.sum() + rgb.sum()).backward()
    assert planes.grad.abs().sum() > 0
    assert math.isfinite(float(density.detach().sum()))
