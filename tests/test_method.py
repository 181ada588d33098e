"""The method's conventions: default backbone, one density unit, backgrounds, direction encoding, source-view pools,
fusion of any number of views, and schedules that follow the run."""

from __future__ import annotations

import math
import os
import subprocess

import numpy as np
import pytest
import torch
from helpers import BIN, REPO, ns_here, tiny_config

from tnerf_ns.backbone.loading import DEFAULT_REPO
from tnerf_ns.configs import TINY_SETTINGS
from tnerf_ns.datamanagers.context import source_set_pool
from tnerf_ns.fields.triplane_field import TriplaneField
from tnerf_ns.heads.triplane_lifting import TriplaneLifter
from tnerf_ns.models.tnerf_model import TNeRFModelConfig


# ---------------------------------------------------------------------------------------------- default backbone
def test_default_is_the_frozen_pretrained_vggt_1b_at_518px():
    cfg = TNeRFModelConfig()
    assert cfg.backbone == "vggt-1b" and cfg.resolved_backbone_weights == DEFAULT_REPO
    assert cfg.resolved_image_width == 518
    small = TNeRFModelConfig(backbone="vggt-small")  # the weights default follows the preset: shipped, offline
    assert small.resolved_backbone_weights.endswith("vggt-small-synthetic.safetensors")
    assert small.resolved_image_width == 140
    assert TNeRFModelConfig(backbone="vggt-1b", backbone_weights="/w/model.safetensors").resolved_backbone_weights == (
        "/w/model.safetensors"
    )


def test_help_shows_the_default_weights(capsys):
    ns_here("ns-train", "tnerf", "--help")  # ns-train's entry point in this process (exit status 0 asserted there)
    assert "facebook/VGGT-1B" in capsys.readouterr().out


def test_offline_vggt_1b_stops_before_training_naming_both_ways_out(scenes, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PATH=f"{BIN}:{os.environ['PATH']}")
    proc = subprocess.run(
        [str(BIN / "ns-train"), "tnerf", "--machine.device-type", "cpu", "--output-dir", str(tmp_path / "runs"),
         "--vis", "tensorboard", "tnerf-scenes", "--data", str(scenes)],
        check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "--pipeline.model.backbone-weights" in text and "--pipeline.model.backbone vggt-small" in text
    assert not list((tmp_path / "runs").rglob("step-*.ckpt"))  # nothing trained


# ---------------------------------------------------------------------------------------------- density units
def scene_mode_pipeline(parser):
    config = tiny_config(parser.data, parser)
    config.pipeline.model.compute_lpips = False
    return config.pipeline.setup(device="cpu", test_mode="val")


def parsers(scene, kind):
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    if kind == "blender":
        return [BlenderDataParserConfig(data=scene, scale_factor=s) for s in (1.0, 2.5)]
    # the same generated scene with its world (cameras, box, depth) scaled by 2.5
    return [
        NerfstudioDataParserConfig(data=scene, scale_factor=s, scene_scale=s, orientation_method="none",
                                   center_method="none", auto_scale_poses=False, depth_unit_scale_factor=1.0,
                                   train_split_fraction=0.5)
        for s in (1.0, 2.5)
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["blender", "nerfstudio"])
def test_the_same_scene_at_another_scale_gives_the_same_images_and_losses(scenes, kind):
    small, large = (scene_mode_pipeline(p) for p in parsers(scenes / "synth_000003", kind))
    large.load_state_dict(small.state_dict())
    losses = []
    for pipeline in (small, large):
        pipeline.train()
        _, loss_dict, _ = pipeline.get_train_loss_dict(0)
        losses.append({k: float(v) for k, v in loss_dict.items()})
    assert losses[0].keys() == losses[1].keys()
    for name, value in losses[0].items():
        assert losses[1][name] == pytest.approx(value, rel=1e-3, abs=1e-6), name
    if kind == "nerfstudio":
        assert "depth_loss" in losses[0] and "source_depth_loss" in losses[0]
    images = []
    for pipeline in (small, large):
        pipeline.eval()
        camera = pipeline.datamanager.eval_dataset.cameras[0:1]
        with torch.no_grad():
            images.append(pipeline.model.get_outputs_for_camera(camera))
    torch.testing.assert_close(images[1]["rgb"], images[0]["rgb"], atol=2e-4, rtol=0)
    torch.testing.assert_close(images[1]["accumulation"], images[0]["accumulation"], atol=2e-4, rtol=0)
    torch.testing.assert_close(images[1]["depth"], 2.5 * images[0]["depth"], atol=2e-3, rtol=1e-3)


# ---------------------------------------------------------------------------------------------- backgrounds
@pytest.mark.parametrize("background", ["white", "black", "random"])
def test_targets_and_renders_share_the_background(scenes, background):
    """Targets keep their alpha and are composited on the model's background: a render equal to the true colour and
    opacity has zero photometric loss whatever the option (white-composited targets would not)."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    config = tiny_config(scenes / "synth_000003", BlenderDataParserConfig(data=scenes / "synth_000003"))
    config.pipeline.model.background_color = background
    pipeline = config.pipeline.setup(device="cpu", test_mode="val")
    pipeline.train()
    _, batch = pipeline.datamanager.next_train(0)
    image = batch["image"]
    assert image.shape[-1] == 4 and (image[:, 3] < 0.5).any() and (image[:, 3] > 0.5).any()
    rgb, alpha = image[:, :3], image[:, 3:]
    model = pipeline.model
    if background == "random":  # nerfstudio's renderer leaves the background out of a random-background render
        pred = rgb * alpha
    else:
        pred = rgb * alpha + model.renderer_rgb.get_background_color(background, rgb.shape, rgb.device) * (1 - alpha)
    outputs = {"rgb": pred, "rgb_coarse": pred, "accumulation": alpha}
    model.eval()
    loss = model.get_loss_dict(outputs, batch)  # evaluation mode: the photometric terms only
    assert float(loss["rgb_loss"]) < 1e-10 and float(loss["rgb_coarse_loss"]) < 1e-10


# ---------------------------------------------------------------------------------------------- directions
def test_direction_encoding_is_the_real_sh_of_the_unit_direction():
    """Real spherical harmonics (Y_0^0, then l = 1 as (y, z, x), then l = 2) of the unit view direction; feeding
    (d + 1) / 2 (the tcnn convention) would not match."""
    field = TriplaneField(plane_channels=2, hidden_dim=8, direction_levels=3)
    x, y, z = 0.0, 0.6, 0.8
    expected = [
        0.28209479177387814,
        0.4886025119029199 * y, 0.4886025119029199 * z, 0.4886025119029199 * x,
        1.0925484305920792 * x * y, 1.0925484305920792 * y * z, 0.31539156525252005 * (3 * z * z - 1),
        1.0925484305920792 * x * z, 0.5462742152960396 * (x * x - y * y),
    ]  # fmt: skip
    d = torch.tensor([[x, y, z]])
    torch.testing.assert_close(field.encode_directions(d)[0], torch.tensor(expected), atol=1e-6, rtol=0)
    torch.testing.assert_close(field.encode_directions(3.0 * d), field.encode_directions(d))  # a direction


# ---------------------------------------------------------------------------------------------- source views
def test_training_pool_spans_the_k_range_and_differs_from_set_to_set():
    angles = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    centres = np.stack([np.cos(angles), np.sin(angles), np.zeros(12)], -1)
    pool = source_set_pool(centres, (2, 8), 8)
    assert sorted({len(s) for s in pool}) == [2, 3, 4, 5, 6, 7, 8]
    assert len({tuple(s) for s in pool}) == len(pool) >= 7
    assert source_set_pool(centres, (2, 8), 8) == pool  # deterministic: cacheable
    assert max(len(s) for s in source_set_pool(centres[:4], (2, 8), 8)) == 3  # a target view always remains


def test_training_contexts_vary_k_and_evaluation_stays_fixed(scenes):
    config = tiny_config(scenes)
    config.pipeline.datamanager.input_view_ray_share = 0.0
    pipeline = config.pipeline.setup(device="cpu", test_mode="val")
    dm = pipeline.datamanager
    sizes = {len(dm.next_train(step)[1]["context"].images) for step in range(40)}
    assert len(sizes) >= 3 and max(sizes) <= 5  # 6 views per scene: K in 2..5
    evals = {len(dm.next_eval(step)[1]["context"].images) for step in range(5)}
    assert evals == {dm.config.num_source_views}
    for step in range(10):  # no target ray comes from a view given to the model
        _, batch = dm.next_train(step)
        ctx = batch["context"]
        sources = {int(i) for i in ctx.key[1]}
        assert not sources & {int(i) for i in batch["indices"][:, 0]}


def test_a_share_of_training_rays_comes_from_the_input_views_when_asked(scenes):
    config = tiny_config(scenes)
    config.pipeline.datamanager.input_view_ray_share = 0.25
    dm = config.pipeline.setup(device="cpu", test_mode="val").datamanager
    for step in range(6):
        _, batch = dm.next_train(step)
        sources = {int(i) for i in batch["context"].key[1]}
        cameras = batch["indices"][:, 0].tolist()
        n_in = round(0.25 * len(cameras))
        assert set(cameras[:n_in]) <= sources and not set(cameras[n_in:]) & sources
        assert len(set(cameras[:n_in])) > 1  # spread over the inputs, not one of them
    _, batch = dm.next_eval(0)  # evaluation never scores an input view
    assert not {int(i) for i in batch["context"].key[1]} & {int(i) for i in batch["indices"][:, 0]}
    dm.config.input_view_ray_share = 1.5
    with pytest.raises(ValueError, match="input-view-ray-share"):
        dm.next_train(0)


def test_scene_mode_refinement_uses_neither_input_view_rays_nor_a_weight_average(scenes):
    """Head training defaults to both; refining one capture keeps its measured behaviour: its views alike, and the
    last iterate (its 60 / 180 / 600 s checkpoints are what is judged)."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes

    pipeline = scene_mode_pipeline(BlenderDataParserConfig(data=scenes / "synth_000003"))
    dm = pipeline.datamanager
    assert dm.scene_mode and dm.config.input_view_ray_share > 0 and pipeline.model.config.weight_average_decay > 0
    for step in range(6):  # as before the share existed: the capture's views outside the source set
        _, batch = dm.next_train(step)
        assert not {int(i) for i in batch["context"].key[1]} & {int(i) for i in batch["indices"][:, 0]}
    trainer = type("Trainer", (), {"_start_step": 0, "config": type("C", (), {"max_num_iterations": 10})()})()
    attributes = TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=pipeline, trainer=trainer)
    plain = super(type(pipeline), pipeline).get_training_callbacks(attributes)  # VanillaPipeline's
    assert len(pipeline.get_training_callbacks(attributes)) == len(plain)  # no averaging callback


def test_fusion_does_not_depend_on_repeating_a_view():
    """The same view given twice must give the same planes as once: the lifting averages views by their weights and
    measures occupancy per view instead of summing it."""
    torch.manual_seed(0)
    lifter = TriplaneLifter(feature_dim=3, resolution=8, channels=4, lift_stride=1, refine_layers=1)
    feats, depth, weight = torch.rand(1, 3, 6, 6), torch.randn(1, 6, 6), torch.randn(1, 6, 6)
    c2w = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3]]])
    intr = torch.tensor([[[6.0, 0, 3], [0, 6, 3], [0, 0, 1]]])
    once, _ = lifter(feats, depth, weight, c2w, intr)
    twice, _ = lifter(*(torch.cat([t, t]) for t in (feats, depth, weight, c2w, intr)))
    torch.testing.assert_close(twice, once, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("iterations", [0, 12])
def test_learning_rates_decay_over_the_run(scenes, tmp_path, iterations):
    config = tiny_config(scenes)
    config.max_num_iterations = iterations
    config.output_dir, config.vis = tmp_path, "tensorboard"
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    scheduler = trainer.optimizers.schedulers["fields"]
    for _ in range(iterations):
        scheduler.step()
    lr = scheduler.get_last_lr()[0]
    if iterations:  # the end of the run is the end of the decay: lr_final = lr / 10
        assert lr == pytest.approx(1e-4, rel=1e-3)
    assert set(TINY_SETTINGS) and trainer.config.optimizers["fields"]["scheduler"].max_steps == max(iterations, 1)
