"""Trained heads leave as a shareable folder (safetensors + config + card) and come back from a path or a hub id."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from helpers import tiny_config

from tnerf_ns.models.checkpoints import read_model_weights, resolve_pretrained

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` skips it


@pytest.fixture(scope="module")
def head(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("head") / "my-head"
    proc = subprocess.run([sys.executable, "scripts/export_head.py", "--load-config", str(trained), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_export_writes_weights_config_and_card(head, trained):
    assert {p.name for p in head.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    config = json.loads((head / "config.json").read_text())
    assert config["method"] == "tnerf" and config["model"]["backbone"] == "vggt-small"
    assert "--pipeline.model.pretrained" in (head / "README.md").read_text()
    exported, original = read_model_weights(head), read_model_weights(trained.parent / "nerfstudio_models")
    assert exported.keys() <= original.keys() and len(exported) > 10
    for key, value in exported.items():
        torch.testing.assert_close(value, original[key])


def test_hub_repo_ids_resolve_through_huggingface_hub(head, monkeypatch):
    import huggingface_hub

    asked = []

    def fake_download(repo_id, allow_patterns=None, **kwargs):
        asked.append((repo_id, tuple(allow_patterns)))
        return str(head)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    assert resolve_pretrained("my-org/my-head") == head
    assert asked[0][0] == "my-org/my-head" and "model.safetensors" in asked[0][1]  # safetensors only, no pickles
    assert read_model_weights("my-org/my-head").keys() == read_model_weights(head).keys()

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match="local folder to --pipeline.model.pretrained"):
        resolve_pretrained("my-org/missing-head")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        resolve_pretrained("./not/here")


def test_scene_mode_starts_from_an_exported_head(head, scenes):
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    config = tiny_config(scenes / "synth_000003", BlenderDataParserConfig(data=scenes / "synth_000003"))
    config.pipeline.model.pretrained = head
    pipeline = config.pipeline.setup(device="cpu", test_mode="test")
    weights = read_model_weights(head)
    key = "field.trunk_in.weight"
    torch.testing.assert_close(pipeline.model.state_dict()[key], weights[key])
