"""tnerf-dynamic end to end: training on dynamic scenes, ns-eval at intermediate times, an interpolation video along
a camera path with render_time keyframes, the time fallback, and the mode comparison script."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import ns_here, script

from tnerf_ns.data.multiscene_dataparser import TNeRFScenesDataParserConfig
from tnerf_ns.datamanagers.tnerf_datamanager import TNeRFDataManagerConfig

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` skips it


def test_data_manager_uses_t0_t1_sources_and_evaluates_intermediate_times(dynamic_scenes):
    dm = TNeRFDataManagerConfig(dataparser=TNeRFScenesDataParserConfig(data=dynamic_scenes), num_source_views=2,
                                train_num_rays_per_batch=32, num_query_points=16).setup(device="cpu")  # fmt: skip
    assert dm.includes_time
    scene = dm.train_scenes[0]
    assert scene.dynamic and scene.time_values == [0.0, 0.5, 1.0]
    times = dm.train_dataset.cameras.times[:, 0]
    assert all(float(times[i]) == 0.0 for i in scene.sources_at(0.0))
    assert all(float(times[i]) == 1.0 for i in scene.sources_at(1.0))
    # t1 sources are the same cameras as the t0 sources
    c2w = dm.train_dataset.cameras.camera_to_worlds
    assert torch.allclose(c2w[scene.sources_at(0.0)], c2w[scene.sources_at(1.0)])
    assert set(dm.eval_dataset.cameras.times[:, 0].tolist()) == {0.5}
    _, batch = dm.next_train(0)
    ctx = batch["context"]
    assert ctx.images_t1 is not None and ctx.images_t1.shape == ctx.images.shape and ctx.time in (0.0, 0.5, 1.0)


def test_ns_eval_and_interpolation_video(trained_dynamic, dynamic_scenes, tmp_path):
    ns_here("ns-eval", "--load-config", str(trained_dynamic), "--output-path", str(tmp_path / "eval.json"))
    assert np.isfinite(json.loads((tmp_path / "eval.json").read_text())["results"]["psnr"])
    meta = json.loads((dynamic_scenes / "synth_000000" / "transforms.json").read_text())
    c2w = np.asarray(meta["frames"][0]["transform_matrix"]).reshape(-1).tolist()
    path = {"camera_type": "perspective", "render_height": 20, "render_width": 20, "seconds": 1.0, "fps": 3,
            "camera_path": [{"camera_to_world": c2w, "fov": 45.0, "aspect": 1.0, "render_time": t}
                            for t in (0.0, 0.5, 1.0)]}  # fmt: skip
    (tmp_path / "path.json").write_text(json.dumps(path))
    ns_here("ns-render", "camera-path", "--load-config", str(trained_dynamic), "--camera-path-filename",
       str(tmp_path / "path.json"), "--output-path", str(tmp_path / "sweep.mp4"))  # fmt: skip
    assert (tmp_path / "sweep.mp4").stat().st_size > 0


def test_time_changes_the_prediction_and_defaults_when_missing(trained_dynamic):
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, _ = eval_setup(trained_dynamic, test_mode="test")
    model = pipeline.model
    camera = pipeline.datamanager.eval_dataset.cameras[0:1]
    outs = {}
    for t in (0.0, 1.0):
        camera.times = torch.tensor([[t]])
        outs[t] = model.get_outputs_for_camera(camera)["rgb"]
    camera.times = None
    default = model.get_outputs_for_camera(camera)["rgb"]
    torch.testing.assert_close(default, outs[model.config.default_time])
    assert not torch.allclose(outs[0.0], outs[1.0])


def test_evaluate_dynamic_compares_the_three_modes(trained_dynamic, tmp_path):
    script("scripts/evaluate_dynamic.py", "--load-config", str(trained_dynamic), "--out", str(tmp_path))
    report = json.loads((tmp_path / "dynamic_eval.json").read_text())
    results = report["results"]
    assert report["trained_with"] == "random" and report["held_out_scenes"] == 1  # the run's mode, not the last used
    assert set(results) == {"empty field", "nearest input photo", "nearest", "lerp", "flow"}
    # views at the source cameras' poses are scored apart from the others; only they have a nearest input photo
    assert set(results["flow"]) == {"source poses", "other poses"} and set(results["flow"]["other poses"]) == {"0.5"}
    assert set(results["nearest input photo"]) == {"source poses"}
    table = (tmp_path / "dynamic_eval.md").read_text()
    assert "| source poses | flow |" in table and "| other poses | flow |" in table
    assert (tmp_path / "dynamic_frames.png").is_file()
