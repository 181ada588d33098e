"""Damaged images are found when a dataset is set up: named, skipped in multi-scene data, refused in scene mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config
from PIL import Image

from tnerf_ns.data import image_check
from tnerf_ns.data.image_check import ImageCheckError, damaged_images


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(image_check, "CACHE_FILE", tmp_path / "cache" / "image_checks.json")
    monkeypatch.setattr(image_check, "_MEMORY", {})


def damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not an image at all")


def test_truncated_empty_and_non_image_files_are_found(tmp_path):
    files = []
    for name in ("good", "truncated", "empty", "text"):
        path = tmp_path / f"{name}.png"
        Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(path)
        if name != "good":
            damage(path, name)
        files.append(path)
    problems = damaged_images(files)
    assert set(problems) == set(files[1:])
    assert "empty file" in problems[files[2]] and "not a readable image" in problems[files[1]]
    cached = json.loads(image_check.CACHE_FILE.read_text())  # verdicts kept for the next run
    assert len(cached) == 4
    image_check._MEMORY.clear()
    assert set(damaged_images(files)) == set(files[1:])  # from the disk cache


def pipeline_for(data: Path, parser=None):
    return tiny_config(data, parser).pipeline.setup(device="cpu", test_mode="val")


def test_multi_scene_data_skips_a_damaged_scene_and_trains(scenes, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(scenes, data)
    held_out = set(json.loads((data / "scenes.json").read_text())["held_out"])
    victim = next(
        name for name in sorted(json.loads((data / "scenes.json").read_text())["scenes"]) if name not in held_out
    )
    damaged = sorted((data / victim / "images").glob("*.png"))[2]
    damage(damaged, "truncated")
    pipeline = pipeline_for(data)
    out = capsys.readouterr().out
    assert f"Skipping scene {victim}" in out and damaged.name in out
    names = {s.name for s in pipeline.datamanager.train_scenes}
    assert victim not in names and names
    pipeline.train()
    for step in range(3):  # the damaged scene is never drawn
        pipeline.get_train_loss_dict(step)


def test_scene_mode_refuses_a_damaged_image_with_its_path(scenes, tmp_path):
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    scene = tmp_path / "scene"
    shutil.copytree(scenes / "synth_000003", scene)
    frames = json.loads((scene / "transforms_train.json").read_text())["frames"]
    damaged = scene / (frames[1]["file_path"] + ("" if frames[1]["file_path"].endswith(".png") else ".png"))
    damage(damaged, "empty")  # not the split's first image, which nerfstudio's parser itself opens for its size
    with pytest.raises(ImageCheckError, match=damaged.name):
        pipeline_for(scene, BlenderDataParserConfig(data=scene))
