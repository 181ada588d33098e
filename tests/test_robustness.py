"""What users really feed the project: fuzzed scene files, odd images, mismatched dynamic inputs, paths escaping the
dataset, hostile or broken checkpoints, too many views, interrupted and resumed training."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, make_scenes, ns
from PIL import Image

from tnerf_ns.backbone.preprocess import load_images, read_rgb
from tnerf_ns.scenes.nerfmae import save_scene
from tnerf_ns.scenes.synthetic import generate_scene


def test_odd_images_load(tmp_path):
    Image.fromarray(np.full((30, 41), 100, np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((25, 25, 4), 200, np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((33, 17), 40000, np.uint16)).save(tmp_path / "deep.png")
    images = load_images(sorted(tmp_path.glob("*.png")), target=56)  # different sizes, none divisible by 14
    assert images.shape[0] == 3 and images.shape[-1] == 56 and images.shape[-2] % 14 == 0
    assert read_rgb(tmp_path / "deep.png").max() == pytest.approx(40000 / 65535, abs=1e-4)


@pytest.fixture(scope="module")
def small_scenes(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("robust"), 3, 20, 5, "28x28")


def tiny_pipeline(data, **dm):
    from tnerf_ns.configs import tnerf_trainer_config

    cfg = tnerf_trainer_config().pipeline
    cfg.datamanager.data = data
    for k, v in dm.items():
        setattr(cfg.datamanager, k, v)
    m = cfg.model
    m.triplane_resolution, m.triplane_channels, m.feature_dim = 8, 4, 4
    m.num_coarse_samples, m.num_fine_samples, m.backbone_image_width = 4, 4, 28
    m.backbone = "vggt-small"
    return cfg


def test_single_source_view_and_too_many_views(small_scenes):
    cfg = tiny_pipeline(small_scenes, num_source_views=1, train_num_rays_per_batch=16, num_query_points=8)
    pipe = cfg.setup(device="cpu")
    pipe.train()
    _, loss, _ = pipe.get_train_loss_dict(0)
    assert all(torch.isfinite(v) for v in loss.values())
    cfg = tiny_pipeline(small_scenes, num_source_views=4)
    cfg.model.max_source_tokens = 10
    pipe = cfg.setup(device="cpu")
    pipe.train()
    with pytest.raises(ValueError, match="max-source-tokens"):
        pipe.get_train_loss_dict(0)


def test_image_of_another_size_than_its_camera_is_refused_naming_it(small_scenes, tmp_path):
    import shutil

    scenes = tmp_path / "scenes"
    shutil.copytree(small_scenes, scenes)
    img = scenes / "synth_000000" / "images" / "frame_00003.png"
    Image.open(img).resize((20, 20)).save(img)
    pipe = tiny_pipeline(scenes, train_num_rays_per_batch=8, num_query_points=4).setup(device="cpu")
    entry = next(s for s in pipe.datamanager.train_scenes if s.name == "synth_000000")
    with pytest.raises(ValueError, match=r"frame_00003.png: the image is 20x20 pixels but its camera says"):
        pipe.datamanager._scene_images(entry)


def test_photos_of_several_sizes_in_one_scene(small_scenes, tmp_path):
    """Portrait and landscape photos of one scene (each camera at its own size): targets are padded and rays drawn
    inside each image; source views are brought to the first's size with their intrinsics scaled."""
    import shutil

    scenes = tmp_path / "scenes"
    shutil.copytree(small_scenes, scenes)
    folder = scenes / "synth_000000"
    meta = json.loads((folder / "transforms.json").read_text())
    w, h = meta["w"], meta["h"]
    for frame in meta["frames"][::2]:  # every other photo at (w/2, h) with its intrinsics to match
        path = folder / frame["file_path"]
        Image.open(path).resize((w // 2, h)).save(path)
        frame.pop("depth_file_path", None)
        frame.update(w=w // 2, h=h, fl_x=meta["fl_x"] / 2, fl_y=meta["fl_y"], cx=meta["cx"] / 2, cy=meta["cy"])
    for frame in meta["frames"]:
        frame.pop("depth_file_path", None)
    (folder / "transforms.json").write_text(json.dumps(meta))
    pipe = tiny_pipeline(scenes, train_num_rays_per_batch=64, num_query_points=4).setup(device="cpu")
    pipe.train()
    dm = pipe.datamanager
    entry = next(s for s in dm.train_scenes if s.name == "synth_000000")
    images, _, sizes = dm._scene_images(entry)
    assert images.shape[1:3] == (h, w) and {tuple(x) for x in sizes.tolist()} == {(h, w), (h, w // 2)}
    for step in range(4):
        _, loss, _ = pipe.get_train_loss_dict(step)
        assert all(torch.isfinite(v) for v in loss.values())
    ctx = dm.context_provider.context(entry.scene_idx)
    first = entry.dataset.cameras[entry.sources(None)[0]]
    assert ctx.images.shape[-2:] == (int(first.height), int(first.width))
    for n, i in enumerate(entry.sources(None)):
        cam = entry.dataset.cameras[i]
        sx = int(first.width) / int(cam.width)
        assert torch.isclose(ctx.intrinsics[n, 0, 0], cam.fx[0] * sx) and torch.isclose(
            ctx.intrinsics[n, 0, 2], cam.cx[0] * sx
        )
    assert any(int(entry.dataset.cameras[i].width) != int(first.width) for i in entry.sources(None))  # some resized


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pretrained_checkpoint_that_runs_code_is_refused(small_scenes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "step-000000001.ckpt"
    with open(evil, "wb") as f:
        pickle.dump({"pipeline": {"_model.x": _Exploit()}}, f)
    cfg = tiny_pipeline(small_scenes)
    cfg.model.pretrained = evil
    with pytest.raises(RuntimeError, match=r"step-000000001\.ckpt: cannot read"):
        cfg.setup(device="cpu")
    assert not (tmp_path / "PWNED").exists()
    torch.save({"pipeline": {"_model.field.trunk_in.weight": torch.zeros(2, 2)}}, evil)  # wrong architecture
    with pytest.raises(RuntimeError, match="does not match"):
        cfg.setup(device="cpu")
    with zipfile.ZipFile(tmp_path / "trunc.ckpt", "w") as z:
        z.writestr("junk", b"x")
    cfg.model.pretrained = tmp_path / "trunc.ckpt"
    with pytest.raises(RuntimeError, match=r"trunc\.ckpt: cannot read"):
        cfg.setup(device="cpu")
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    cfg.model.pretrained = tmp_path / "notes.ckpt"
    with pytest.raises(RuntimeError, match=r"notes\.ckpt: cannot read T-NeRF checkpoint: not a PyTorch checkpoint"):
        cfg.setup(device="cpu")


def test_a_finished_run_loads_without_the_checkpoint_it_started_from(small_scenes, tmp_path):
    """ns-eval, ns-render and the viewer (eval_setup: test_mode "test"/"inference") load the run's own checkpoint
    next, so a --pipeline.model.pretrained that is gone by then is skipped; training still needs it."""
    cfg = tiny_pipeline(small_scenes)
    cfg.model.pretrained = tmp_path / "gone"
    with pytest.raises(FileNotFoundError, match="gone: no such checkpoint"):
        cfg.setup(device="cpu", test_mode="val")
    pipe = cfg.setup(device="cpu", test_mode="test")
    assert pipe.model.config.pretrained == tmp_path / "gone"


@pytest.mark.long  # make test-slow
def test_interrupted_training_resumes_exactly(small_scenes, tmp_path):
    """6 steps straight == 3 steps, stop, resume with --load-dir for 3 more (same step, same weights). The learning
    rates decay over --schedule-steps, the whole run's length (by default each invocation's own length)."""
    common = ["--machine.device-type", "cpu", "--output-dir", str(tmp_path), "--experiment-name", "r",
              "--steps-per-eval-batch", "1000", "--steps-per-eval-image", "1000", "--steps-per-save", "1",
              "--schedule-steps", "6", "--pipeline.model.compute-lpips", "False", *TINY_MODEL]  # fmt: skip
    ns("ns-train", "tnerf", *common, "--max-num-iterations", "6", "--timestamp", "straight", "tnerf-scenes", "--data",
       str(small_scenes))  # fmt: skip
    ns("ns-train", "tnerf", *common, "--max-num-iterations", "3", "--timestamp", "part", "tnerf-scenes", "--data",
       str(small_scenes))  # fmt: skip
    part = tmp_path / "r" / "tnerf" / "part" / "nerfstudio_models"
    ns("ns-train", "tnerf", *common, "--max-num-iterations", "3", "--timestamp", "resumed", "--load-dir", str(part),
       "tnerf-scenes", "--data", str(small_scenes))  # fmt: skip
    import tnerf_ns  # noqa: F401  (safe globals for the scheduler state)

    def final(stamp):
        ckpts = sorted((tmp_path / "r" / "tnerf" / stamp / "nerfstudio_models").glob("step-*.ckpt"))
        return ckpts[-1].name, torch.load(ckpts[-1], map_location="cpu", weights_only=True)

    name_a, a = final("straight")
    name_b, b = final("resumed")
    assert name_a == name_b == "step-000000005.ckpt"
    assert a["step"] == b["step"] == 5
    for key, value in a["pipeline"].items():
        torch.testing.assert_close(value, b["pipeline"][key], msg=key)
    assert json.dumps(a["schedulers"], default=str) == json.dumps(b["schedulers"], default=str)


def test_dataset_json_escaping_the_folder_is_refused(small_scenes, tmp_path):
    import shutil

    from tnerf_ns.data.multiscene_dataparser import SceneDatasetError, TNeRFScenesDataParserConfig

    scenes = tmp_path / "scenes"
    shutil.copytree(small_scenes, scenes)
    meta_file = scenes / "synth_000001" / "transforms.json"
    meta = json.loads(meta_file.read_text())
    meta["tnerf"]["grids"][0]["file"] = "/etc/passwd"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(SceneDatasetError, match="outside the dataset folder"):
        TNeRFScenesDataParserConfig(data=scenes).setup().get_dataparser_outputs("train")


def test_saved_scene_survives_a_crash_during_write(tmp_path, monkeypatch):
    scene = generate_scene(0, 0, "object", False, 12)[0]
    save_scene(tmp_path / "s.npz", scene)
    before = (tmp_path / "s.npz").read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(KeyboardInterrupt):
        save_scene(tmp_path / "s.npz", scene)
    assert (tmp_path / "s.npz").read_bytes() == before  # the old file is intact


@pytest.mark.parametrize("spelling", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_checkpoints_with_numpy_scalars_load_under_either_numpy_major(spelling, tmp_path):
    """nerfstudio's scheduler state holds numpy float64s; a checkpoint names their reconstructor as the numpy that
    saved it does (1.x: numpy.core, 2.x: numpy._core). Both spellings load with weights_only=True."""
    import tnerf_ns  # noqa: F401  (registers the safe globals)

    path = tmp_path / "legacy.ckpt"
    torch.save({"schedulers": [{"base_lrs": [np.float64(0.5)]}]}, path, _use_new_zipfile_serialization=False,
               pickle_protocol=2)  # fmt: skip
    data = path.read_bytes()
    own = [name for name in (b"numpy.core.multiarray\n", b"numpy._core.multiarray\n") if name in data]
    assert len(own) == 1, "the scalar's module is pickled by name"
    path.write_bytes(data.replace(own[0], spelling.encode() + b"\n"))
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    assert loaded["schedulers"][0]["base_lrs"][0] == 0.5
    with pytest.raises(pickle.UnpicklingError):  # anything else stays refused
        path.write_bytes(data.replace(own[0], b"os\n"))
        torch.load(path, map_location="cpu", weights_only=True)


def test_ns_eval_of_data_without_evaluation_images_says_what_to_change(small_scenes, tmp_path):
    import shutil

    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from tnerf_ns.pipeline import NoEvalImagesError

    folder = tmp_path / "three"
    shutil.copytree(small_scenes / "synth_000000", folder)
    meta = json.loads((folder / "transforms.json").read_text())
    meta["frames"] = meta["frames"][:3]  # the default --eval-mode fraction (0.9) keeps all three for training
    (folder / "transforms.json").write_text(json.dumps(meta))
    cfg = tiny_pipeline(folder, train_num_rays_per_batch=8, num_query_points=4)
    cfg.datamanager.dataparser = NerfstudioDataParserConfig(data=folder)
    pipe = cfg.setup(device="cpu", test_mode="test")
    with pytest.raises(NoEvalImagesError, match=r"three: no evaluation images.*--eval-mode interval"):
        pipe.get_average_eval_image_metrics()


def test_cameras_that_are_not_pinhole_are_named():
    from nerfstudio.cameras.cameras import Cameras, CameraType

    from tnerf_ns.datamanagers.context import not_pinhole

    def cams(**kw):
        return Cameras(camera_to_worlds=torch.eye(4)[:3][None].repeat(2, 1, 1), fx=10.0, fy=10.0, cx=8.0, cy=8.0,
                       width=16, height=16, **kw)  # fmt: skip

    assert not_pinhole(cams()) is None
    assert not_pinhole(cams(distortion_params=torch.zeros(2, 6))) is None
    assert not_pinhole(cams(distortion_params=torch.tensor([[0.1, 0, 0, 0, 0, 0]] * 2))) == "lens distortion parameters"
    assert "non-pinhole" in not_pinhole(cams(camera_type=CameraType.FISHEYE))


def test_missing_intrinsics_are_named_and_a_frames_own_override_the_files(small_scenes, tmp_path):
    import shutil

    from tnerf_ns.data.multiscene_dataparser import SceneDatasetError, TNeRFScenesDataParserConfig

    scenes = tmp_path / "scenes"
    shutil.copytree(small_scenes, scenes)
    meta_file = scenes / "synth_000000" / "transforms.json"
    meta = json.loads(meta_file.read_text())
    fx = meta.pop("fl_x")
    meta["frames"][0]["fl_x"] = fx * 2  # the first frame has its own; the others fall back to nothing
    meta_file.write_text(json.dumps(meta))
    parser = TNeRFScenesDataParserConfig(data=scenes, held_out_fraction=0.0).setup()
    with pytest.raises(SceneDatasetError, match=r"synth_000000/transforms.json: missing or malformed camera fields"):
        parser.get_dataparser_outputs("train")
    for frame in meta["frames"][1:]:
        frame["fl_x"] = fx
    meta_file.write_text(json.dumps(meta))
    cameras = TNeRFScenesDataParserConfig(data=scenes, held_out_fraction=0.0).setup().get_dataparser_outputs().cameras
    fxs = sorted({round(float(v), 3) for v in cameras.fx.flatten()})
    assert round(fx * 2, 3) in fxs and round(fx, 3) in fxs
