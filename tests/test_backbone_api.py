"""Backbone API: config validation, input checks, patch-token entry points, frozen mode, package import side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tnerf_ns  # noqa: F401  (installs the checkpoint safe-globals)
from tnerf_ns.backbone import VGGT_CONFIGS, VGGTConfig, build_vggt, get_vggt_config


def test_every_spec_size_is_a_config_field():
    fields = set(VGGTConfig.__dataclass_fields__)
    for name in (
        "embed_dim",
        "depth",
        "num_heads",
        "patch_embed_depth",
        "camera_trunk_depth",
        "dpt_features",
        "dpt_out_channels",
        "img_size",
        "patch_size",
        "rope_base",
        "camera_iterations",
    ):
        assert name in fields
    assert get_vggt_config("vggt-1b").intermediate_layer_idx == (4, 11, 17, 23)
    assert get_vggt_config("vggt-small").intermediate_layer_idx == (0, 1, 2, 3)
    assert set(VGGT_CONFIGS) == {"vggt-1b", "vggt-small"}


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="divisible by 4"):
        VGGTConfig(embed_dim=72, num_heads=4, patch_embed_num_heads=4)
    with pytest.raises(ValueError, match="dpt_layer_idx"):
        VGGTConfig(depth=4, dpt_layer_idx=(0, 1, 2, 9))


def test_custom_config_object_builds():
    cfg = get_vggt_config("vggt-small").replace(depth=2, dpt_layer_idx=(0, 0, 1, 1), enable_point=False)
    model = build_vggt(cfg)
    assert model.point_head is None
    out = model(torch.rand(2, 3, 28, 42))
    assert out["depth"].shape == (1, 2, 28, 42, 1) and "world_points" not in out
    with pytest.raises(ValueError, match="without its point head"):
        model.forward_from_patch_tokens(model.embed_patches(torch.rand(2, 3, 28, 42)), (28, 42), heads=["point"])


def test_input_checks():
    model = build_vggt("vggt-small")
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        model(torch.rand(2, 3, 30, 28))
    with pytest.raises(ValueError, match=r"\[S, 3, H, W\]"):
        model(torch.rand(28, 28))


def test_frozen_backbone_gives_no_gradients_and_small_config_can_train():
    frozen = build_vggt("vggt-small")
    images = torch.rand(1, 2, 3, 28, 28)
    assert not frozen(images)["depth"].requires_grad
    trainable = build_vggt("vggt-small", frozen=False)
    trainable(images)["depth"].mean().backward()
    assert trainable.aggregator.frame_blocks[0].attn.qkv.weight.grad is not None


def test_outputs_shapes_and_ranges_for_four_frames_at_140px():
    out = build_vggt("vggt-small")(torch.rand(4, 3, 140, 140))
    assert out["pose_enc"].shape == (1, 4, 9) and len(out["pose_enc_list"]) == 4
    assert out["depth"].shape == (1, 4, 140, 140, 1) and (out["depth"] > 0).all()
    assert (out["depth_conf"] >= 1).all() and (out["world_points_conf"] >= 1).all()
    assert out["world_points"].shape == (1, 4, 140, 140, 3)


def test_nerfstudio_scheduler_state_loads_with_weights_only(tmp_path):
    """nerfstudio 1.1.5 schedulers store numpy float64; the package init makes weights_only loading accept it."""
    path = tmp_path / "step.ckpt"
    torch.save({"schedulers": {"fields": {"_last_lr": [np.float64(0.01)], "base_lrs": [np.float64(0.01)]}}}, path)
    state = torch.load(path, weights_only=True)
    assert state["schedulers"]["fields"]["_last_lr"][0] == pytest.approx(0.01)
