"""VGGT pre-training: objectives (known values, confidence, gradient, first-camera normalisation), varied camera rigs,
a tiny pre-training run that learns and resumes, and the shipped vggt-small weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnerf_ns.backbone.pretrain_data import BatchSampler, RenderedScene
from tnerf_ns.backbone.training_losses import (
    LossWeights,
    camera_loss,
    confidence_regression_loss,
    multiscale_gradient_loss,
    normalize_to_first_camera,
    vggt_loss,
)
from tnerf_ns.geometry import invert_rigid, quaternion_to_matrix
from tnerf_ns.scenes.camera_rigs import RigVariation, apply_roll, look_at_opengl, orbit_poses, room_poses

NO_FILTER = LossWeights(valid_range=1.0)


def random_rigid(n: int, generator: torch.Generator) -> torch.Tensor:
    q = torch.randn(n, 4, generator=generator)
    return torch.cat([quaternion_to_matrix(q), torch.randn(n, 3, 1, generator=generator) * 2], dim=-1)


def test_camera_loss_known_values_and_iteration_weights():
    gt = torch.zeros(1, 2, 9)
    pred = gt.clone()
    pred[..., :3] += 0.3
    pred[..., 3:7] -= 0.1
    pred[..., 7:] += 0.2
    one = camera_loss([pred], gt)
    assert one["camera_T"].item() == pytest.approx(0.3)
    assert one["camera_R"].item() == pytest.approx(0.1)
    assert one["camera_fov"].item() == pytest.approx(0.2)
    assert one["camera"].item() == pytest.approx(0.3 + 0.1 + 0.5 * 0.2)
    # two iterations: the first weighs 0.6, the last 1, divided by 2
    two = camera_loss([pred, gt], gt)
    assert two["camera"].item() == pytest.approx(0.6 * 0.5 / 2)
    # translation errors are clamped at 100; invalid frames are left out
    far = gt.clone()
    far[0, 1, 0] = 1e4
    assert camera_loss([far], gt)["camera_T"].item() == pytest.approx(100 / 6)
    assert camera_loss([far], gt, torch.tensor([[True, False]]))["camera"].item() == 0.0


def test_confidence_term_and_its_optimum():
    gt = torch.zeros(1, 1, 8, 8, 3)
    pred = gt + torch.tensor([0.3, 0.0, 0.4])  # |err| = 0.5
    mask = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    conf = torch.full((1, 1, 8, 8), 2.0)
    loss_conf, loss_reg = confidence_regression_loss(pred, gt, conf, mask, NO_FILTER)
    assert loss_reg.item() == pytest.approx(0.5)
    assert loss_conf.item() == pytest.approx(0.5 * 2.0 - 0.2 * math.log(2.0))
    # the aleatoric term is minimised at c = alpha / (gamma * r): confident where the error is small
    cs = torch.linspace(1.01, 5, 400)
    values = [confidence_regression_loss(pred * 0.1, gt, conf * 0 + c, mask, NO_FILTER)[0] for c in cs]
    assert cs[int(torch.stack(values).argmin())].item() == pytest.approx(0.2 / 0.05, abs=0.02)
    # masked pixels do not count; the 98th-percentile filter drops outliers
    mask[..., :4] = False
    pred2 = pred.clone()
    pred2[..., :4, :] = 100.0
    assert confidence_regression_loss(pred2, gt, conf, mask, NO_FILTER)[1].item() == pytest.approx(0.5)
    big = torch.zeros(1, 1, 50, 50, 1)
    err = big.clone()
    err[0, 0, 0, :10] = 1000.0  # 10 of 2500 pixels: above the 98th percentile
    full = torch.ones(1, 1, 50, 50, dtype=torch.bool)
    assert confidence_regression_loss(err, big, full.float() + 1, full)[1].item() == 0.0


def test_gradient_term_sees_structure_not_offsets():
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    gt = torch.rand(1, 1, 16, 16, 1)
    assert multiscale_gradient_loss(gt + 3.0, gt, mask, None, NO_FILTER).item() == pytest.approx(0.0, abs=1e-6)
    ramp = gt + torch.arange(16.0)[None, None, None, :, None] * 0.1  # residual grows by 0.1 per column
    one_scale = LossWeights(gradient_scales=1)
    # x-gradients: 16 rows * 15 pairs * 0.1, divided by 256 valid pixels
    assert multiscale_gradient_loss(ramp, gt, mask, None, one_scale).item() == pytest.approx(16 * 15 * 0.1 / 256)
    conf = torch.full((1, 1, 16, 16), 2.0)
    with_conf = multiscale_gradient_loss(ramp, gt, mask, conf, one_scale).item()
    assert with_conf == pytest.approx((2 * 16 * 15 * 0.1 - 0.2 * math.log(2) * 2 * 16 * 15) / 256, rel=1e-5)


def test_first_camera_normalisation_is_invariant_to_a_similarity():
    g = torch.Generator().manual_seed(0)
    c2w = random_rigid(3, g)[None]  # OpenCV camera-to-world
    intr = torch.tensor([[20.0, 0, 12], [0, 20.0, 10], [0, 0, 1]]).expand(1, 3, 3, 3)
    depth = torch.rand(1, 3, 20, 24, generator=g) * 3 + 1
    mask = depth > 1.5
    ref = normalize_to_first_camera(invert_rigid(c2w), intr, depth, mask)
    rot, shift, scale = quaternion_to_matrix(torch.tensor([0.2, -0.5, 0.3, 0.8])), torch.tensor([4.0, -2, 7]), 3.7
    moved = torch.cat([rot @ c2w[..., :3], scale * (rot @ c2w[..., 3:]) + shift[:, None]], dim=-1)
    out = normalize_to_first_camera(invert_rigid(moved), intr, depth * scale, mask)
    for key in ("extrinsics", "points", "depth", "pose_enc"):
        assert torch.allclose(out[key], ref[key], atol=1e-4), key
    assert torch.allclose(ref["extrinsics"][0, 0], torch.eye(3, 4), atol=1e-5)
    valid_norm = ref["points"].norm(dim=-1)[mask].mean()
    assert valid_norm.item() == pytest.approx(1.0, abs=1e-5)
    assert out["scale"].item() == pytest.approx(scale * ref["scale"].item(), rel=1e-5)


def test_perfect_prediction_has_only_the_confidence_floor():
    g = torch.Generator().manual_seed(1)
    c2w = random_rigid(2, g)[None]
    intr = torch.tensor([[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]]).expand(1, 2, 3, 3)
    depth = torch.rand(1, 2, 16, 16, generator=g) + 1
    mask = torch.ones_like(depth, dtype=torch.bool)
    gt = normalize_to_first_camera(invert_rigid(c2w), intr, depth, mask)
    conf = torch.full_like(depth, 1.5)
    outputs = {"pose_enc_list": [gt["pose_enc"]], "depth": gt["depth"][..., None], "depth_conf": conf,
               "world_points": gt["points"], "world_points_conf": conf}  # fmt: skip
    terms = vggt_loss(outputs, gt, mask)
    floor = -0.2 * math.log(1.5)
    assert terms["camera"].item() == pytest.approx(0.0, abs=1e-5)
    assert terms["depth_conf"].item() == pytest.approx(floor, abs=1e-5)
    assert terms["depth_reg"].item() == pytest.approx(0.0, abs=1e-5)
    assert terms["point_conf"].item() == pytest.approx(floor, abs=1e-5)
    assert terms["depth_grad"].item() < 0 and terms["point_grad"].item() < 0  # only the -alpha log c floor
    expected = 5 * terms["camera"] + terms["depth_total"] + terms["point_total"]
    assert terms["loss"].item() == pytest.approx(expected.item(), abs=1e-6)


# ---------------------------------------------------------------- camera rigs


def test_rig_defaults_unchanged_and_variation_applies():
    base = orbit_poses(8, np.zeros(3), 3.0, seed=4)
    assert np.array_equal(base, orbit_poses(8, np.zeros(3), 3.0, seed=4, variation=RigVariation()))
    var = RigVariation(distance_scale=(0.9, 1.6), target_jitter=0.1, roll_deg=25.0)
    poses = orbit_poses(64, np.zeros(3), 3.0, seed=4, variation=var)
    dist = np.linalg.norm(poses[:, :, 3], axis=-1)
    assert dist.min() >= 0.9 * 3.0 - 1e-6 and dist.max() <= 1.6 * 3.0 + 1e-6 and dist.std() > 0.2
    # roll: the camera's right axis leaves the horizontal plane, by up to the roll
    roll = np.degrees(np.arcsin(np.abs(poses[:, 2, 0])))
    assert roll.max() > 15 and roll.max() <= 25 + 1e-6
    # off-centre look-at: the optical axis misses the centre, by up to the jitter box
    forward = -poses[:, :, 2]
    eye = poses[:, :, 3]
    miss = np.linalg.norm(np.cross(forward, -eye), axis=-1)
    assert miss.max() > 0.1 and miss.max() <= 0.1 * 3.0 * math.sqrt(3) + 1e-6
    assert np.abs(np.linalg.norm(np.cross(-base[:, :, 2], -base[:, :, 3]), axis=-1)).max() < 1e-9
    # rotations stay rotations
    rot = poses[:, :, :3]
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    box = np.array([[0.0, 0, 0], [5, 4, 3]])
    assert np.array_equal(room_poses(6, box, seed=2), room_poses(6, box, seed=2, variation=RigVariation()))
    rolled = room_poses(6, box, seed=2, variation=RigVariation(roll_deg=30))
    assert np.allclose(rolled[:, :, 3], room_poses(6, box, seed=2)[:, :, 3])  # same eyes, other orientations
    assert np.abs(rolled[:, 2, 0]).max() > math.sin(math.radians(5))


def test_apply_roll_rotates_about_the_viewing_axis():
    pose = look_at_opengl(np.array([0.0, -3, 0]), np.zeros(3))[None]
    rolled = apply_roll(pose, np.radians([30.0]))[0]
    assert np.allclose(rolled[:, 2], pose[0, :, 2]) and np.allclose(rolled[:, 3], pose[0, :, 3])
    assert math.degrees(math.asin(rolled[2, 0])) == pytest.approx(30.0)


def test_render_settings_vary_fov_and_aspect_and_keep_old_records():
    from tnerf_ns.scenes.render_dataset import RenderSettings, cameras_for
    from tnerf_ns.scenes.synthetic import generate_scene

    old_keys = {"views", "height", "width", "fov_object_deg", "fov_room_deg", "orbit_radius", "step_voxels", "seed",
                "test_every"}  # fmt: skip
    assert set(RenderSettings().record()) == old_keys
    scene = generate_scene(0, 0, "object", False, 24)[0]
    settings = RenderSettings(views=4, fov_range_deg=(30.0, 90.0), sizes=((28, 42), (42, 28), (28, 28)))
    fovs, shapes = [], set()
    for seed in range(12):
        _, intr = cameras_for(scene, settings, seed)
        fovs.append(math.degrees(2 * math.atan(intr.width / 2 / intr.fx)))
        shapes.add((intr.height, intr.width))
    assert min(fovs) >= 30 and max(fovs) <= 90 and np.std(fovs) > 5
    assert shapes == {(28, 42), (42, 28), (28, 28)}
    _, fixed = cameras_for(scene, RenderSettings(views=4), 0)
    assert math.degrees(2 * math.atan(fixed.width / 2 / fixed.fx)) == pytest.approx(45.0)


# ---------------------------------------------------------------- training


def toy_scenes(n: int = 3, views: int = 4, size: int = 28) -> list:
    g = torch.Generator().manual_seed(3)
    scenes = []
    for i in range(n):
        c2w = random_rigid(views, g) * torch.tensor([1.0, 1, 1, 0.3])
        scenes.append(RenderedScene(
            name=f"s{i}", kind="object", images=(torch.rand(views, 3, size, size, generator=g) * 255).to(torch.uint8),
            depth=(torch.rand(views, size, size, generator=g) + 2).half(), extrinsics=invert_rigid(c2w),
            intrinsics=torch.tensor([[30.0, 0, size / 2], [0, 30.0, size / 2], [0, 0, 1]]),
        ))  # fmt: skip
    return scenes


def test_batches_share_view_count_and_size():
    sampler = BatchSampler(toy_scenes(), min_views=2, max_views=8, max_frames=8)
    assert sampler.max_views == 4
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        batch = sampler.sample(g)
        b, s = batch["images"].shape[:2]
        assert 2 <= s <= 4 and b == 8 // s and batch["depth"].shape == (b, s, 28, 28)


def test_tiny_pretraining_lowers_the_loss():
    from tnerf_ns.backbone.loading import build_vggt

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread avoids OpenMP contention on a busy machine
    torch.manual_seed(0)
    model = build_vggt("vggt-small", seed=0, frozen=False).train()
    batch = BatchSampler(toy_scenes(1), min_views=3, max_views=3, max_frames=3).sample(torch.Generator())
    gt = normalize_to_first_camera(batch["extrinsics"], batch["intrinsics"], batch["depth"], batch["mask"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    losses = []
    for _ in range(25):
        loss = vggt_loss(model(batch["images"]), gt, batch["mask"])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    torch.set_num_threads(threads)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses


# ---------------------------------------------------------------- the shipped weights


def test_shipped_weights_load_and_are_the_vggt_small_default():
    from safetensors import safe_open

    from tnerf_ns.backbone.loading import PRESET_WEIGHTS, VGGT_SMALL_WEIGHTS, load_vggt
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

    assert VGGT_SMALL_WEIGHTS.is_file() and VGGT_SMALL_WEIGHTS.stat().st_size < 12e6  # fp16, a few MB
    with safe_open(str(VGGT_SMALL_WEIGHTS), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16
        assert "not VGGT-1B" in f.metadata()["tnerf_card"]
    model = load_vggt(VGGT_SMALL_WEIGHTS, "vggt-small")
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    out = model(torch.rand(2, 3, 112, 140))
    assert torch.isfinite(out["depth"]).all() and torch.isfinite(out["pose_enc"]).all()
    assert PRESET_WEIGHTS["vggt-small"] == str(VGGT_SMALL_WEIGHTS)
    cfg = TNeRFModelConfig(backbone="vggt-small")
    assert cfg.resolved_backbone_weights == str(VGGT_SMALL_WEIGHTS)
    assert TNeRFModelConfig(backbone="vggt-small", backbone_weights=None).resolved_backbone_weights is None


def test_tnerf_on_the_shipped_backbone_freezes_it_and_starts_the_head_from_its_point_head():
    from tnerf_ns.geometry import CanonicalBox
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

    cfg = TNeRFModelConfig(backbone="vggt-small", feature_dim=8, triplane_resolution=16, triplane_channels=8)
    encoder = cfg.make_encoder(CanonicalBox(torch.tensor([[-1.0, -1, -1], [1, 1, 1]])))
    assert not encoder.trainable_backbone and not any(p.requires_grad for p in encoder.vggt.parameters())
    assert not any(k.startswith("backbone") for k in encoder.state_dict())  # kept out of checkpoints
    head, point = encoder.latent_head.dpt.state_dict(), encoder.vggt.point_head.state_dict()
    same = [k for k, v in head.items() if k in point and point[k].shape == v.shape and torch.equal(point[k], v)]
    assert len(same) >= len(head) - 2  # all but the output convolution, whose channels differ


def test_checkpoint_with_its_own_backbone_keeps_it():
    """vggt-small runs saved before the shipped weights became the default hold a trained backbone: it is used."""
    from tnerf_ns.geometry import CanonicalBox
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

    box = CanonicalBox(torch.tensor([[-1.0, -1, -1], [1, 1, 1]]))
    sizes = dict(backbone="vggt-small", feature_dim=8, triplane_resolution=16, triplane_channels=8)
    old = TNeRFModelConfig(**sizes, backbone_weights=None).make_encoder(box)
    state = {k: v + 0.01 if k.startswith("backbone.") and v.is_floating_point() else v
             for k, v in old.state_dict().items()}  # fmt: skip
    encoder = TNeRFModelConfig(**sizes).make_encoder(box)
    assert "backbone" in encoder._hidden
    encoder.load_state_dict(state, strict=True)
    assert "backbone" not in encoder._hidden and not encoder.trainable_backbone
    key = "aggregator.camera_token"
    assert torch.equal(encoder.vggt.state_dict()[key], state[f"backbone.{key}"])
    assert not any(p.requires_grad for p in encoder.vggt.parameters())
