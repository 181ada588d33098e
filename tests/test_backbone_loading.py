"""Loading VGGT weights: local files and folders, the hub path offline, and every kind of bad checkpoint."""

from __future__ import annotations

import logging
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from tnerf_ns.backbone import VGGTLoadError, build_vggt, load_vggt
from tnerf_ns.backbone.loading import resolve_checkpoint


@pytest.fixture(scope="module")
def small_state():
    model = build_vggt("vggt-small", seed=3)
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(model, state):
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_build_is_random_frozen_and_seeded():
    a, b, c = build_vggt("vggt-small", seed=1), build_vggt("vggt-small", seed=1), build_vggt("vggt-small", seed=2)
    key = "aggregator.frame_blocks.0.attn.qkv.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    trainable = build_vggt("vggt-small", frozen=False)
    assert trainable.training and trainable.aggregator.frame_blocks[0].attn.qkv.weight.requires_grad


def test_build_rejects_unknown_config():
    with pytest.raises(ValueError, match="Unknown VGGT config"):
        build_vggt("vggt-7b")


def test_load_safetensors_file_and_folder(tmp_path, small_state):
    save_file(small_state, str(tmp_path / "model.safetensors"))
    for source in (tmp_path / "model.safetensors", tmp_path, str(tmp_path)):
        model = load_vggt(source, "vggt-small")
        assert_same_weights(model, small_state)
        assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_load_torch_pickle_with_wrapper_and_prefix(tmp_path, small_state):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {f"module.{k}": v for k, v in small_state.items()}}, path)
    assert_same_weights(load_vggt(path, "vggt-small"), small_state)


def test_track_head_keys_are_dropped_with_a_log_line(tmp_path, small_state, caplog):
    state = dict(small_state)
    state["track_head.tracker.virual_tracks"] = torch.zeros(1, 4, 1, 8)
    save_file(state, str(tmp_path / "model.safetensors"))
    with caplog.at_level(logging.INFO, logger="tnerf_ns.backbone.loading"):
        load_vggt(tmp_path, "vggt-small")
    assert "track_head" in caplog.text


def test_missing_unexpected_and_misshapen_keys_are_named(tmp_path, small_state):
    missing = {k: v for k, v in small_state.items() if k != "camera_head.embed_pose.weight"}
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(VGGTLoadError, match=r"missing\.safetensors.*1 missing keys: camera_head\.embed_pose\.weight"):
        load_vggt(tmp_path / "missing.safetensors", "vggt-small")

    extra = dict(small_state, **{"aggregator.bogus": torch.zeros(2)})
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(VGGTLoadError, match=r"unexpected keys: aggregator\.bogus"):
        load_vggt(tmp_path / "extra.safetensors", "vggt-small")

    wrong = dict(small_state)
    wrong["aggregator.camera_token"] = torch.zeros(1, 2, 1, 64)
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(VGGTLoadError, match=r"shape mismatches.*aggregator\.camera_token \(1, 2, 1, 64\)"):
        load_vggt(tmp_path / "wrong.safetensors", "vggt-small")


def test_wrong_architecture_is_reported(tmp_path, small_state):
    save_file(small_state, str(tmp_path / "model.safetensors"))
    with pytest.raises(VGGTLoadError, match="does not match the config 'vggt-1b'"):
        load_vggt(tmp_path, "vggt-1b")


def test_corrupt_truncated_and_empty_files(tmp_path, small_state):
    good = tmp_path / "good.safetensors"
    save_file(small_state, str(good))
    data = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(VGGTLoadError, match=r"trunc\.safetensors: corrupt or truncated"):
        load_vggt(tmp_path / "trunc.safetensors", "vggt-small")
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(VGGTLoadError, match=r"garbage\.pt"):
        load_vggt(tmp_path / "garbage.pt", "vggt-small")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(VGGTLoadError, match=r"empty\.safetensors: checkpoint file is empty"):
        load_vggt(tmp_path / "empty.safetensors", "vggt-small")
    pt = tmp_path / "full.pt"
    torch.save(small_state, pt)
    raw = pt.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(VGGTLoadError, match=r"trunc\.pt"):
        load_vggt(tmp_path / "trunc.pt", "vggt-small")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_code_executing_pickle_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"aggregator.camera_token": _Exploit()}, f)
    with pytest.raises(VGGTLoadError, match=r"evil\.pt: refused to load"):
        load_vggt(path, "vggt-small")
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_missing_local_path_and_empty_folder(tmp_path):
    with pytest.raises(VGGTLoadError, match="no such checkpoint file or folder"):
        load_vggt(tmp_path / "nope.safetensors", "vggt-small")
    with pytest.raises(VGGTLoadError, match="no weights file found"):
        load_vggt(tmp_path, "vggt-small")


def test_offline_hub_gives_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VGGTLoadError) as info:
        resolve_checkpoint("facebook/VGGT-1B", cache_dir=tmp_path / "hf-cache")
    message = str(info.value)
    assert "facebook/VGGT-1B" in message and "local path" in message and "vggt-small" in message


def test_hub_cache_is_used_offline(tmp_path, monkeypatch, small_state):
    """A file already in the Hugging Face cache layout is found without network access."""
    repo_dir = tmp_path / "hf-cache" / "models--someone--tiny-vggt"
    commit = "0" * 40
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(small_state, str(snapshot / "model.safetensors"))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_vggt("someone/tiny-vggt", "vggt-small", cache_dir=tmp_path / "hf-cache")
    assert_same_weights(model, small_state)
