"""The evaluation protocol: the reprojection baseline, baseline settings per kind of data, scoring, report rows."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from nerfstudio.configs.method_configs import all_methods

from tnerf_ns.evaluation import baselines
from tnerf_ns.evaluation.comparison_report import plot, write_table
from tnerf_ns.evaluation.protocol import (
    ROW_KEYS,
    SPEED_KEY,
    ComparisonFileError,
    ComparisonRow,
    calibration_seconds,
    on_white,
    read_rows,
    reusable_rows,
    score_views,
    spread,
)
from tnerf_ns.evaluation.reprojection import project, reproject_views, source_points, splat_image
from tnerf_ns.geometry import pixel_rays


def look_at(eye, target=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """OpenGL camera-to-world looking from ``eye`` at ``target`` (z up)."""
    eye, target = torch.tensor(eye), torch.tensor(target)
    back = torch.nn.functional.normalize(eye - target, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back), dim=0)
    up = torch.linalg.cross(back, right)
    return torch.cat([torch.stack([right, up, back], dim=1), eye[:, None]], dim=1)


K = torch.tensor([[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]])


def test_project_inverts_source_points():
    c2w = look_at((3.0, 1.0, 0.5))
    depth = torch.rand(1, 32, 32) + 2.0
    points = source_points(c2w[None], K[None], depth)[0].reshape(-1, 3)
    uv, z = project(points, c2w, K)
    v, u = torch.meshgrid(torch.arange(32) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    assert torch.allclose(uv, torch.stack([u, v], -1).reshape(-1, 2), atol=1e-3)
    assert torch.allclose(z, depth.reshape(-1), atol=1e-4)


def test_reprojecting_into_the_source_camera_reproduces_its_image():
    c2w = look_at((3.0, 0.0, 0.0))
    image = torch.rand(1, 3, 32, 32)
    depth = torch.full((1, 32, 32), 3.0)
    out = reproject_views(image, c2w[None], K[None], depth, torch.ones(1, 32, 32), c2w, K, 32, 32, torch.ones(3))
    assert torch.allclose(out, image[0].permute(1, 2, 0), atol=1e-6)


def test_z_buffer_keeps_the_nearest_point_and_holes_stay_background():
    c2w = look_at((5.0, 0.0, 0.0))
    origins, dirs, _ = pixel_rays(c2w, K, 32, 32)
    ray = dirs[16, 16]
    near, far = origins[16, 16] + 2.0 * ray, origins[16, 16] + 4.0 * ray  # both land on pixel (16, 16)
    colours = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    for order in ([0, 1], [1, 0]):  # whatever the order, the nearer red point wins
        out = splat_image(torch.stack([near, far])[order], colours[order], c2w, K, 32, 32, torch.ones(3))
        assert torch.equal(out[16, 16], torch.tensor([1.0, 0, 0]))
    assert (out.reshape(-1, 3) == 1).all(-1).sum() == 32 * 32 - 1  # every other pixel is a white hole
    behind = origins[0, 0] - 2.0 * dirs[0, 0]
    assert (splat_image(behind[None], colours[:1], c2w, K, 32, 32, torch.ones(3)) == 1).all()  # behind the camera


def test_near_far_keeps_the_box_in_view():
    c2w = torch.stack([look_at((4.0, 0, 0)), look_at((0, 2.0, 0))])
    aabb = torch.tensor([[-1.0, -1, -1], [1, 1, 1]])
    near, far = baselines.near_far_from_cameras(c2w, aabb)
    assert near == pytest.approx(2.0 - math.sqrt(3), abs=1e-5) and far == pytest.approx(4.0 + math.sqrt(3), abs=1e-5)


def test_data_kind_tells_blender_rig_generated_and_captures(tmp_path):
    (tmp_path / "rig").mkdir()
    (tmp_path / "rig" / "transforms_train.json").write_text("{}")
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "transforms_train.json").write_text("{}")
    (gen / "transforms.json").write_text(json.dumps({"tnerf": {"world_box": [[-1, -1, -1], [1, 1, 1]]}}))
    (tmp_path / "capture").mkdir()
    assert [baselines.data_kind(tmp_path / n) for n in ("rig", "gen", "capture")] == ["blender-rig", "generated",
                                                                                        "capture"]  # fmt: skip


def test_nerfacto_settings_follow_the_data():
    rig = copy.deepcopy(all_methods["nerfacto"])
    s = baselines.settings_for("nerfacto", rig, "blender-rig")
    assert (s.background, s.near, s.far, s.scene_contraction, s.camera_optimizer) == ("white", 2.0, 6.0, False, "off")
    assert s.rays_per_step == 4096 and s.preset == "authors"  # nerfacto's own batch
    assert rig.pipeline.model.disable_scene_contraction and rig.pipeline.model.camera_optimizer.mode == "off"
    gen = copy.deepcopy(all_methods["nerfacto"])
    s = baselines.settings_for("nerfacto", gen, "generated", near_far=(0.4, 7.0), rays_per_step=1024)
    assert (s.near, s.far, s.rays_per_step, s.preset) == (0.4, 7.0, 1024, "equal-rays")
    assert gen.pipeline.datamanager.train_num_rays_per_batch == 1024
    cap = copy.deepcopy(all_methods["nerfacto"])
    s = baselines.settings_for("nerfacto", cap, "capture")
    assert (s.background, s.near, s.far, s.scene_contraction, s.camera_optimizer) == (
        "last_sample", 0.05, 1000.0, True, "SO3xR3")  # fmt: skip
    with pytest.raises(ValueError, match="near/far"):
        baselines.settings_for("nerfacto", copy.deepcopy(all_methods["nerfacto"]), "generated")


def test_vanilla_nerf_on_generated_scenes_gets_the_derived_near_far():
    cfg = copy.deepcopy(all_methods["vanilla-nerf"])
    s = baselines.settings_for("vanilla-nerf", cfg, "generated", near_far=(0.5, 5.0))
    assert (s.near, s.far) == (0.5, 5.0) and cfg.pipeline.model.collider_params["near_plane"] == 0.5
    assert baselines.settings_for("vanilla-nerf", copy.deepcopy(all_methods["vanilla-nerf"]), "blender-rig").near == 2.0


class _Images:
    def __init__(self, images):
        self.images = images

    def get_image_float32(self, i):
        return self.images[i]


def test_score_views_composites_on_white_and_counts_views():
    rgba = torch.zeros(3, 8, 8, 4)  # transparent: white on the benchmark's background
    scores = score_views(lambda i: torch.ones(8, 8, 3), _Images(rgba), [0, 2], keep=[2])
    assert scores.views == 2 and scores.image_size == [8, 8] and scores.psnr > 100 and list(scores.renders) == [2]
    assert torch.equal(on_white(rgba[0]), torch.ones(8, 8, 3))
    with pytest.raises(ValueError, match="render of view 0"):
        score_views(lambda i: torch.ones(4, 4, 3), _Images(rgba), [0])
    assert spread(100, 16)[0] == 0 and spread(100, 16)[-1] == 99 and len(spread(100, 16)) == 16
    assert spread(3, 16) == [0, 1, 2]


def test_rows_have_the_documented_keys_and_make_table_and_plot(tmp_path):
    settings = baselines.BaselineSettings("white", 2.0, 6.0, False, "off", 4096, "authors").as_dict()
    tn = baselines.BaselineSettings("white", 1.0, 5.0, False, "off", 1024, "tnerf").as_dict()
    rows = []
    for split, value in (("input", 20.0), ("novel", 15.0)):
        rows.append(ComparisonRow("tnerf feed-forward", "K=2", tn, split, 16, [200, 200], 0, 1.5, value, 0.7,
                                  {"pretraining_seconds": 600.0, "pretraining_data": "scenes"}).as_dict())  # fmt: skip
        rows.append(ComparisonRow("reprojection baseline", "K=2", tn, split, 16, [200, 200], 0, 0.2, value - 3, 0.5,
                                  {"depth_source": "ground-truth depth"}).as_dict())  # fmt: skip
        rows.append(ComparisonRow("nerfacto", "budget 60s", settings, split, 16, [200, 200], 50, 60.0, 12.0, 0.6)
                    .as_dict())  # fmt: skip
    assert all(set(ROW_KEYS) <= set(r) for r in rows)
    text = write_table(rows, tmp_path, tmp_path / "scene")
    assert "| tnerf feed-forward | K=2 | 0 | 1.5 | 16/16 | 200x200 | 20.00 | 0.700 | 15.00 | 0.700 |" in text
    assert "| nerfacto | white | 2.00 | 6.00 | off | off | 4096 | authors |" in text
    assert "pre-training (not per scene): 600 s" in text and "ground-truth depth" in text
    plot(rows, tmp_path)
    assert (tmp_path / "psnr_vs_time.png").stat().st_size > 1000


def test_baseline_rows_are_kept_only_when_the_protocol_is_the_same(tmp_path):
    settings = baselines.BaselineSettings("white", 2.0, 6.0, False, "off", 4096, "authors").as_dict()
    rows = [ComparisonRow("nerfacto", f"budget {b}s", settings, split, views, [200, 200], 9, float(b), 20.0, 0.8,
                          {"device": "cpu", "data": "lego", "date": "2026-11-28", SPEED_KEY: 0.2}).as_dict()
            for b, views in ((60, 4), (180, 16)) for split in ("input", "novel")]  # fmt: skip
    expected = {(f"budget {b}s", split): {"eval_views": views, "image_size": [200, 200], "baseline_settings":
                json.loads(json.dumps(settings)), "device": "cpu", "data": "lego", SPEED_KEY: 0.23}
                for b, views in ((60, 4), (180, 16)) for split in ("input", "novel")}  # fmt: skip
    kept = reusable_rows(rows, "nerfacto", expected)
    assert kept is not None and all(k["kept"] and k["psnr"] == 20.0 for k in kept) and len(kept) == 4
    assert reusable_rows(rows, "vanilla-nerf", expected) is None  # no rows of that method
    other_budget = {(s.replace("180", "300"), split): v for (s, split), v in expected.items()}
    assert reusable_rows(rows, "nerfacto", other_budget) is None
    for change in ({"eval_views": 32}, {"image_size": [400, 400]}, {"device": "cuda"}, {"data": "mic"},
                   {"baseline_settings": {**settings, "far": 6.5}}, {SPEED_KEY: 0.4}, {SPEED_KEY: 0.15}):  # fmt: skip
        changed = {k: {**v, **change} for k, v in expected.items()}
        assert reusable_rows(rows, "nerfacto", changed) is None, change
    legacy = [{k: v for k, v in r.items() if k not in ("device", "data", "date")} for r in rows]
    assert reusable_rows(legacy, "nerfacto", expected) is not None  # older rows: CPU, data not recorded
    assert reusable_rows(legacy, "nerfacto", {k: {**v, "device": "cuda"} for k, v in expected.items()}) is None
    unknown_speed = [{k: v for k, v in r.items() if k != SPEED_KEY} for r in rows]
    assert reusable_rows(unknown_speed, "nerfacto", expected) is None  # budgets of a machine of unknown speed
    assert reusable_rows(rows, "nerfacto", {k: {**v, SPEED_KEY: 0.4} for k, v in expected.items()}, 2.5) is not None
    text = write_table(kept, tmp_path, tmp_path / "scene")
    assert "Kept from an earlier run of the same protocol" in text and "measured 2026-11-28" in text


def test_the_calibration_workload_is_timed_on_the_device():
    seconds = calibration_seconds("cpu")
    assert 0 < seconds < 5


def test_a_broken_comparison_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "comparison.json"
    row = ComparisonRow("nerfacto", "budget 60s", {}, "novel", 16, [200, 200], 9, 60.0, 20.0, 0.8).as_dict()
    path.write_text(json.dumps([row]))
    assert read_rows(path) == [row]
    for text, problem in (("[{", "not readable as JSON"), ('{"method": 1}', "expected a list of row objects"),
                          (json.dumps([{k: v for k, v in row.items() if k != "psnr"}]), "row 0 lacks psnr")):  # fmt: skip
        path.write_text(text)
        with pytest.raises(ComparisonFileError, match=problem) as err:
            read_rows(path)
        assert str(path) in str(err.value)


def test_random_interpolation_mode_draws_every_mode_in_training_and_renders_with_flow():
    from types import SimpleNamespace

    from tnerf_ns.encoding.dynamic_encoder import RANDOM_MODES, DynamicSceneEncoder

    fake = SimpleNamespace(config=SimpleNamespace(interpolation_mode="random"), training=True)
    drawn = set()
    torch.manual_seed(0)
    for _ in range(60):
        DynamicSceneEncoder.draw_mode(fake)
        drawn.add(DynamicSceneEncoder.mode.fget(fake))
    assert drawn == set(RANDOM_MODES)
    fake.training = False
    assert DynamicSceneEncoder.mode.fget(fake) == "flow"
    fake.config.interpolation_mode = "lerp"
    assert DynamicSceneEncoder.mode.fget(fake) == "lerp"


def test_make_results_log_keeps_every_steps_latest_run(tmp_path):
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    from make_results import MakeResults

    names = [name for name, _ in MakeResults().steps()]
    assert names[-1] == "sync-readme" and {"compare-lego", "compare-mic", "compare-generated", "dynamic"} <= set(names)
    runner = MakeResults(docs=tmp_path, note="test")
    runner.write_log({"compare-lego": ("python a", 60.0)}, 60.0)
    runner.write_log({"dynamic": ("python b", 120.0)}, 120.0, failed="dynamic")
    log = json.loads((tmp_path / "RESULTS_LOG.json").read_text())
    assert list(log) == ["compare-lego", "dynamic"] and log["dynamic"]["failed"] and not log["compare-lego"]["failed"]
    table = (tmp_path / "RESULTS_LOG.md").read_text()
    assert (
        "| compare-lego | 1.0 min |" in table
        and "| dynamic | 2.0 min (failed) |" in table
        and "all steps: 3 min" in table
    )


def test_make_results_keeps_the_dynamic_checkpoint_made_by_the_same_command(tmp_path):
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    from make_results import MakeResults

    runner = MakeResults(docs=tmp_path / "docs", work=tmp_path / "work", dynamic_steps=5)
    (tmp_path / "docs").mkdir()
    runner.write_log({"train-dynamic": ("ns-train a", 60.0), "dynamic-scenes": ("python b", 1.0)}, 61.0)
    ckpt = runner.kept_outputs()["train-dynamic"]
    assert ckpt.name == "step-000000004.ckpt"  # the last step's: an interrupted run has none
    assert not runner.is_kept("train-dynamic", "ns-train a")  # no checkpoint yet
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert runner.is_kept("train-dynamic", "ns-train a")
    assert not runner.is_kept("train-dynamic", "ns-train a --other-flag")  # another command made it
    assert not MakeResults(docs=runner.docs, work=runner.work, dynamic_steps=5, retrain=True).is_kept(
        "train-dynamic", "ns-train a"
    )
    (runner.work / "dyn_grids").mkdir()
    assert not runner.is_kept("dynamic-scenes", "python b")  # an empty folder is not an output
    (runner.work / "dyn_grids" / "scene.npz").write_bytes(b"x")
    assert runner.is_kept("dynamic-scenes", "python b")
    assert not runner.is_kept("dynamic", "python b")  # evaluations always re-run
    runner.write_log({"train-dynamic": ("ns-train a", 9.0)}, 9.0, failed="train-dynamic")
    assert not runner.is_kept("train-dynamic", "ns-train a")


def test_backbone_description_names_frozen_pretrained_and_random_init():
    from tnerf_ns.evaluation.protocol import backbone_description
    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

    shipped = backbone_description(TNeRFModelConfig(backbone="vggt-small"))
    assert shipped.startswith("vggt-small, frozen, pre-trained weights `vggt-small-synthetic.safetensors`")
    assert "steps of VGGT's objectives" in shipped  # the card in the weights' metadata
    assert backbone_description(TNeRFModelConfig(backbone="vggt-small", backbone_weights=None)) == (
        "vggt-small, random init, trained with the head"
    )
