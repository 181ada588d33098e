"""Generator -> renderer -> dataparser from the command line, atomic/resumable rendering, query points."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from helpers import make_scenes
from PIL import Image

from tnerf_ns.data.multiscene_dataparser import SceneDatasetError, TNeRFScenesDataParserConfig
from tnerf_ns.data.scene_points import ScenePointSampler
from tnerf_ns.scenes.nerfmae import index_dataset
from tnerf_ns.scenes.render_dataset import RenderSettings, group_scenes, render_scene_folder


@pytest.fixture(scope="module")
def static_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    make_scenes(root, 5, 32, 6, "40x48", out="rendered")
    return root


@pytest.fixture(scope="module")
def dynamic_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamic")
    make_scenes(root, 2, 24, 4, "32x32", "--dynamic", "--times", "0", "0.5", "1", "--held-out-fraction", "0.5",
                out="rendered")  # fmt: skip
    return root


def test_rendered_scene_is_a_nerfstudio_and_blender_dataset(static_dataset):
    scene = static_dataset / "rendered" / "synth_000000"
    meta = json.loads((scene / "transforms.json").read_text())
    assert len(meta["frames"]) == 6 and meta["w"] == 48 and meta["h"] == 40
    image = np.asarray(Image.open(scene / meta["frames"][0]["file_path"]))
    assert image.shape == (40, 48, 4) and image[..., 3].max() == 255 and image[..., 3].min() == 0
    depth = np.load(scene / meta["frames"][0]["depth_file_path"])
    assert depth.shape == (40, 48) and depth.max() > 0
    assert (scene / "grids" / "grid.npz").is_file()
    # nerfstudio's own parsers read it as is
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    ns = NerfstudioDataParserConfig(data=scene, orientation_method="none", center_method="none",
                                    auto_scale_poses=False, eval_mode="all").setup()  # fmt: skip
    assert len(ns.get_dataparser_outputs("train").image_filenames) == 6
    blender = BlenderDataParserConfig(data=scene).setup()
    assert len(blender.get_dataparser_outputs("train").image_filenames) == 5
    assert len(blender.get_dataparser_outputs("test").image_filenames) == 1


def test_multiscene_dataparser_splits_by_scene(static_dataset):
    parser = TNeRFScenesDataParserConfig(data=static_dataset / "rendered").setup()
    train = parser.get_dataparser_outputs("train")
    test = parser.get_dataparser_outputs("test")
    train_names = {s["name"] for s in train.metadata["scenes"]}
    test_names = {s["name"] for s in test.metadata["scenes"]}
    assert test_names == {"synth_000004"} and not train_names & test_names and len(train_names) == 4
    assert len(train.image_filenames) == 24 and len(test.image_filenames) == 6
    ids = train.cameras.metadata["scene_idx"][:, 0]
    assert ids.tolist() == [i for i in range(4) for _ in range(6)]
    for s in train.metadata["scenes"]:
        assert [int(ids[i]) for i in s["image_indices"]] == [train.metadata["scenes"].index(s)] * 6
    assert not parser.includes_time and train.cameras.times is None
    # every scene is normalised into the same box, and its grid is reachable
    assert torch.equal(train.scene_box.aabb, torch.tensor([[-1.0, -1, -1], [1, 1, 1]]))
    assert all(s["grids"][0]["file"].endswith("grid.npz") for s in train.metadata["scenes"])


def test_depth_and_poses_share_the_normalisation(static_dataset):
    """A pixel's depth, unprojected with the normalised camera, lands on matter of the normalised grid."""
    parser = TNeRFScenesDataParserConfig(data=static_dataset / "rendered").setup()
    out = parser.get_dataparser_outputs("train")
    scene = out.metadata["scenes"][0]
    sampler = ScenePointSampler(scene["grids"][0]["file"], np.array(scene["centre"]), scene["world_to_unit"])
    cam = out.cameras[0]
    depth = np.load(out.metadata["depth_filenames"][0]) * out.metadata["depth_scales"][0]
    ys, xs = np.nonzero(depth)
    rays = cam.generate_rays(camera_indices=0, keep_shape=True)
    pts = []
    for y, x in list(zip(ys, xs))[::7][:40]:
        d = rays.directions[y, x]
        cos = float(-(d @ cam.camera_to_worlds[:, 2]))  # OpenGL looks along -z
        pts.append(rays.origins[y, x] + d * float(depth[y, x]) / cos)
    _, density, _ = sampler.ground_truth(torch.stack(pts))
    assert (density > 1.0).float().mean() > 0.8


def test_dynamic_scenes_carry_times(dynamic_dataset):
    parser = TNeRFScenesDataParserConfig(data=dynamic_dataset / "rendered").setup()
    assert parser.includes_time
    train = parser.get_dataparser_outputs("train")
    assert sorted(set(train.cameras.times[:, 0].tolist())) == [0.0, 0.5, 1.0]
    scene = train.metadata["scenes"][0]
    assert scene["dynamic"] and [g["time"] for g in scene["grids"]] == [0.0, 0.5, 1.0]
    assert len(train.image_filenames) == 12 and scene["views_per_time"] == 4


def test_render_is_atomic_and_resumes(static_dataset, tmp_path, monkeypatch):
    index = index_dataset(static_dataset / "grids", progress=False)
    paths = group_scenes(index)["synth_000001"]
    out = tmp_path / "synth_000001"
    settings = RenderSettings(views=3, height=16, width=16)
    calls = {"n": 0}

    def crash_after_two():
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_scene_folder(paths, out, settings, progress=crash_after_two)
    assert not out.exists()  # no half-written scene under the final name
    assert render_scene_folder(paths, out, settings) == "rendered"
    assert render_scene_folder(paths, out, settings) == "kept"
    os.utime(paths[0])  # the grid was regenerated: the rendered scene is stale
    assert render_scene_folder(paths, out, settings) == "re-rendered"
    assert render_scene_folder(paths, out, RenderSettings(views=2, height=16, width=16)) == "re-rendered"
    assert len(json.loads((out / "transforms.json").read_text())["frames"]) == 2
    assert not list(tmp_path.glob(".partial-*"))


def test_dataparser_errors_name_the_file(tmp_path, static_dataset):
    with pytest.raises(SceneDatasetError, match="dataset folder not found"):
        TNeRFScenesDataParserConfig(data=tmp_path / "nope").setup().get_dataparser_outputs("train")
    bad = tmp_path / "bad"
    (bad / "s").mkdir(parents=True)
    src = json.loads((static_dataset / "rendered" / "synth_000000" / "transforms.json").read_text())
    src["frames"][0]["file_path"] = "../../../etc/passwd"
    (bad / "s" / "transforms.json").write_text(json.dumps(src))
    with pytest.raises(SceneDatasetError, match=r"transforms\.json: path '\.\./\.\./\.\./etc/passwd' points outside"):
        TNeRFScenesDataParserConfig(data=bad).setup().get_dataparser_outputs("train")
    (bad / "s" / "transforms.json").write_text("{not json")
    with pytest.raises(SceneDatasetError, match=r"s/transforms\.json: invalid JSON"):
        TNeRFScenesDataParserConfig(data=bad).setup().get_dataparser_outputs("train")


def test_query_points_have_ground_truth(static_dataset):
    parser = TNeRFScenesDataParserConfig(data=static_dataset / "rendered").setup()
    scene = parser.get_dataparser_outputs("train").metadata["scenes"][1]
    sampler = ScenePointSampler(scene["grids"][0]["file"], np.array(scene["centre"]), scene["world_to_unit"])
    batch = sampler.sample(2000, generator=torch.Generator().manual_seed(0))
    assert batch.positions.shape == (2000, 3) and batch.positions.abs().max() <= 1.0 + 1e-5
    counts = torch.bincount(batch.kind, minlength=3)
    assert counts.tolist() == [800, 600, 600]
    assert batch.opacity[batch.kind == 2].max() < 1e-3  # empty space is transparent
    assert batch.opacity[batch.kind == 0].mean() > 0.3
    assert ((batch.rgb >= 0) & (batch.rgb <= 1)).all()
