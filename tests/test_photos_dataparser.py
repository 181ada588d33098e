"""The ``tnerf-photos`` dataparser end to end: ``ns-train tnerf tnerf-photos`` on a read-only folder of tiny generated
photos (no poses), ``ns-eval`` reusing the same cameras, and nerfacto training on the same dataparser."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, env, ns
from test_photos_to_transforms import save_tiny_weights

from tnerf_ns.data.photos_dataparser import TNeRFPhotosDataParserConfig

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` skips it


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture()
def photos(scenes, tmp_path):
    """The images of a generated scene alone in a read-only folder (no transforms.json)."""
    folder = tmp_path / "photos"
    shutil.copytree(scenes / "synth_000001" / "images", folder)
    for path in folder.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    yield folder
    folder.chmod(stat.S_IRWXU)


def parser_flags(weights) -> list:
    return ["--backbone", "vggt-small", "--weights", str(weights), "--posing-device", "cpu"]


def test_ns_train_tnerf_on_photos_then_ns_eval_reuses_the_cameras(photos, tiny_weights, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TNERF_PHOTOS_CACHE", str(cache))
    before = sorted(os.listdir(photos))
    ns("ns-train", "tnerf", "--machine.device-type", "cpu", "--max-num-iterations", "3", "--output-dir",
       str(tmp_path / "runs"), "--experiment-name", "p", "--timestamp", "run", "--vis", "tensorboard",
       "--pipeline.model.compute-lpips", "False", *TINY_MODEL, "tnerf-photos", "--data", str(photos),
       *parser_flags(tiny_weights))  # fmt: skip
    assert sorted(os.listdir(photos)) == before  # nothing written next to the photos
    made = list(cache.glob("*/transforms.json"))
    assert len(made) == 1 and made[0].parent.name.startswith("photos-")
    first, mtime = made[0].read_text(), made[0].stat().st_mtime_ns

    config = tmp_path / "runs" / "p" / "tnerf" / "run" / "config.yml"
    proc = ns("ns-eval", "--load-config", str(config), "--output-path", str(tmp_path / "eval.json"))
    assert "reusing the cameras" in proc.stdout.replace("\n", " ")
    assert np.isfinite(json.loads((tmp_path / "eval.json").read_text())["results"]["psnr"])
    assert made[0].read_text() == first and made[0].stat().st_mtime_ns == mtime  # cameras unchanged

    # in-process: two loads give the cameras of transforms.json, and the scene box it records
    meta = json.loads(first)
    parser_config = TNeRFPhotosDataParserConfig(data=photos, backbone="vggt-small", weights=str(tiny_weights))
    outputs = [parser_config.setup().get_dataparser_outputs("train") for _ in range(2)]
    assert torch.equal(outputs[0].cameras.camera_to_worlds, outputs[1].cameras.camera_to_worlds)
    by_name = {os.path.basename(f["file_path"]): np.asarray(f["transform_matrix"])[:3] for f in meta["frames"]}
    for name, c2w in zip(outputs[0].image_filenames, outputs[0].cameras.camera_to_worlds):
        assert np.allclose(by_name[name.name], c2w.numpy(), atol=1e-6)
    assert torch.allclose(outputs[0].scene_box.aabb, torch.tensor(meta["tnerf_photos"]["scene_box"]))
    assert outputs[0].metadata["points3D_xyz"].shape[0] == meta["tnerf_photos"]["points"]


def test_explicit_output_dir_and_other_photos_remake(photos, tiny_weights, tmp_path):
    out = tmp_path / "posed"
    config = TNeRFPhotosDataParserConfig(data=photos, output_dir=out, backbone="vggt-small", weights=str(tiny_weights))
    config.setup().get_dataparser_outputs("train")
    record = json.loads((out / "transforms.json").read_text())["tnerf_photos"]
    assert record["backbone"] == "vggt-small" and record["weights"]["file"] == str(tiny_weights)
    other = tmp_path / "other"
    shutil.copytree(photos, other)
    other.chmod(stat.S_IRWXU)
    (other / sorted(os.listdir(other))[0]).unlink()  # other photos, same output folder: made again, not reused
    config.data = other
    outputs = config.setup().get_dataparser_outputs("train")
    remade = json.loads((out / "transforms.json").read_text())["tnerf_photos"]
    assert remade["image_fingerprint"] != record["image_fingerprint"] and len(outputs.image_filenames) >= 1


def test_nerfacto_trains_on_tnerf_photos(photos, tiny_weights, tmp_path):
    """Any nerfstudio method: nerfacto's pipeline on tnerf-photos takes a training step (in process, LPIPS off: its
    AlexNet weights need a download)."""
    import torchmetrics.image.lpip as lpip_module
    from nerfstudio.configs.method_configs import method_configs

    class NoLPIPS(torch.nn.Module):
        def forward(self, a, b):
            return torch.tensor(float("nan"))

    original = lpip_module.LearnedPerceptualImagePatchSimilarity
    lpip_module.LearnedPerceptualImagePatchSimilarity = lambda *a, **k: NoLPIPS()
    try:
        config = copy.deepcopy(method_configs["nerfacto"])
        config.machine.device_type = "cpu"
        config.pipeline.model.implementation = "torch"
        config.pipeline.datamanager.dataparser = TNeRFPhotosDataParserConfig(
            data=photos, output_dir=tmp_path / "posed", backbone="vggt-small", weights=str(tiny_weights)
        )
        config.pipeline.datamanager.data = photos
        config.pipeline.datamanager.train_num_rays_per_batch = 64
        pipeline = config.pipeline.setup(device="cpu", test_mode="val")
        _, loss_dict, _ = pipeline.get_train_loss_dict(step=0)
        loss = sum(loss_dict.values())
        loss.backward()
        assert torch.isfinite(loss)
    finally:
        lpip_module.LearnedPerceptualImagePatchSimilarity = original


@pytest.mark.long  # make test-slow; the dataparser's own test below runs in make test
def test_ns_train_names_an_empty_photo_folder(tmp_path):
    import subprocess

    from helpers import BIN, REPO

    (tmp_path / "empty").mkdir()
    proc = subprocess.run([str(BIN / "ns-train"), "tnerf", "--machine.device-type", "cpu", "--output-dir",
                           str(tmp_path / "runs"), *TINY_MODEL, "tnerf-photos", "--data", str(tmp_path / "empty"),
                           "--backbone", "vggt-small", "--weights", "random"], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode != 0 and f"{tmp_path / 'empty'}: no images" in proc.stdout + proc.stderr


def test_the_photos_dataparser_names_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    parser = TNeRFPhotosDataParserConfig(data=tmp_path / "empty", backbone="vggt-small", weights="random").setup()
    with pytest.raises(Exception, match=f"{tmp_path / 'empty'}: no images"):
        parser.get_dataparser_outputs("train")


@pytest.mark.long  # make test-slow; posing photos and the scoring it uses run in make test (above, test_posefree_capture)
def test_evaluate_posefree_writes_results(scenes, trained, tiny_weights, tmp_path):
    """The evaluation script on a tiny scene with the shared tiny run: camera errors and both PSNRs."""
    import subprocess
    import sys

    from helpers import REPO

    # the shared tiny run (tests/helpers.py) stands in for a trained T-NeRF
    out = tmp_path / "results"
    args = ["--label", "tiny", "--backbone", "vggt-small", "--weights", str(tiny_weights), "--scenes", str(scenes),
            "--max-scenes", "1", "--tnerf-config", str(trained), "--out", str(out), "--work", str(tmp_path / "work"),
            "--device", "cpu"]  # fmt: skip
    proc = subprocess.run([sys.executable, "scripts/evaluate_posefree.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    row = next(iter(json.loads((out / "tiny.json").read_text())["scenes"].values()))
    assert row["vggt"]["rotation_deg"] >= 0 and row["baseline"]["centre_rel"] > 0
    assert np.isfinite(row["gt_poses"]["psnr"]) and np.isfinite(row["pose_free"]["psnr"])
    assert "| tiny (`vggt-small`) | 1 |" in (out / "posefree.md").read_text()
