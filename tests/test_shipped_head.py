"""The head shipped in tnerf_ns/weights: which runs start from it, and the clear stops when it does not fit (other
model settings, other backbone weights)."""

from __future__ import annotations

import json

import pytest

from tnerf_ns.models import checkpoints
from tnerf_ns.models.checkpoints import HEAD_WEIGHTS, HeadMismatchError, check_backbone, shipped_head
from tnerf_ns.models.tnerf_model import TNeRFModelConfig


def fake_head(folder, **settings):
    folder.mkdir(parents=True)
    (folder / HEAD_WEIGHTS).write_bytes(b"")
    cfg = TNeRFModelConfig(backbone="vggt-small")
    model = {name: getattr(cfg, name) for name in checkpoints.HEAD_SETTINGS}
    model.update(settings)
    (folder / "config.json").write_text(json.dumps({"model": model, "backbone_fingerprint": "abc123" * 8}))
    return folder


def test_scene_mode_starts_from_the_shipped_head_only_when_it_fits(tmp_path, monkeypatch, capsys):
    head = fake_head(tmp_path / "head")
    monkeypatch.setitem(checkpoints.SHIPPED_HEADS, "vggt-small", head)
    assert shipped_head(TNeRFModelConfig(backbone="vggt-small")) == head
    assert shipped_head(TNeRFModelConfig(backbone="vggt-small", shipped_head=False)) is None
    assert shipped_head(TNeRFModelConfig(backbone="vggt-1b")) is None  # no head shipped for it
    # other backbone weights: the head was not trained on them, scene mode starts from scratch
    assert shipped_head(TNeRFModelConfig(backbone="vggt-small", backbone_weights=None)) is None
    # other model settings: the head cannot fit, the run starts from scratch and says why
    assert shipped_head(TNeRFModelConfig(backbone="vggt-small", triplane_resolution=32)) is None
    assert "triplane_resolution 64 (this run: 32)" in " ".join(capsys.readouterr().out.split())
    monkeypatch.setitem(checkpoints.SHIPPED_HEADS, "vggt-small", tmp_path / "absent")
    assert shipped_head(TNeRFModelConfig(backbone="vggt-small")) is None


def test_a_head_exported_before_a_setting_existed_counts_as_made_without_it(tmp_path, monkeypatch):
    head = fake_head(tmp_path / "head")
    config = json.loads((head / "config.json").read_text())
    del config["model"]["projection_surface_votes"]  # as written before the surface votes
    (head / "config.json").write_text(json.dumps(config))
    monkeypatch.setitem(checkpoints.SHIPPED_HEADS, "vggt-small", head)
    assert shipped_head(TNeRFModelConfig(backbone="vggt-small", projection_surface_votes=False)) == head
    assert shipped_head(TNeRFModelConfig(backbone="vggt-small", projection_surface_votes=True)) is None


def test_a_head_with_other_backbone_weights_stops_with_a_message(tmp_path):
    head = fake_head(tmp_path / "head")
    check_backbone(head, "abc123" * 8)  # the weights it names: fine
    check_backbone(tmp_path, "anything")  # no config.json (a plain checkpoint folder): nothing to check
    with pytest.raises(HeadMismatchError, match=r"head.*fingerprint abc123abc123.*backbone-weights"):
        check_backbone(head, "ffff" * 16)


@pytest.mark.slow
def test_scene_mode_with_nothing_trained_predicts_the_scene(tmp_path):
    """The issue's first use: ``ns-train tnerf --pipeline.model.backbone vggt-small --max-num-iterations 0
    blender-data --data <scene>`` gives a prediction with nothing trained first (the shipped head), well above the
    empty field on the scene's held-out view; a scene generated from a seed the head never saw."""
    import numpy as np
    from helpers import make_scenes, ns, ns_here

    head = checkpoints.SHIPPED_HEADS["vggt-small"]
    assert (head / HEAD_WEIGHTS).is_file(), f"{head}: the shipped head is missing (make train-head)"
    scenes = make_scenes(tmp_path, 1, 32, 10, "64x64", "--seed", "4242")
    scene = next(p for p in scenes.iterdir() if (p / "transforms_train.json").is_file())
    runs = tmp_path / "runs"
    ns("ns-train", "tnerf", "--machine.device-type", "cpu", "--pipeline.model.backbone", "vggt-small",
       "--max-num-iterations", "0", "--output-dir", str(runs), "--experiment-name", "s", "--timestamp", "ff",
       "--vis", "tensorboard", "blender-data", "--data", str(scene))  # fmt: skip
    config = runs / "s" / "tnerf" / "ff" / "config.yml"
    ns_here("ns-eval", "--load-config", str(config), "--output-path", str(tmp_path / "eval.json"))
    psnr = json.loads((tmp_path / "eval.json").read_text())["results"]["psnr"]
    from helpers import empty_psnr

    empty = empty_psnr(config)
    assert np.isfinite(psnr) and psnr > empty + 3.0, (psnr, empty)


def test_an_exported_heads_folder_loads_as_a_run_with_its_recorded_settings(tmp_path):
    """The diagnosis and evaluation scripts measure an exported head (``load_run``): tnerf's defaults with the head's
    recorded model settings, its weights from the folder; anything else stops naming the path."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from evaluate_source_views import load_run

    head = fake_head(tmp_path / "head", triplane_resolution=48, projection_surface_votes=True)
    config, weights = load_run(head)
    assert weights == head
    assert config.pipeline.model.triplane_resolution == 48 and config.pipeline.model.projection_surface_votes
    assert checkpoints.recorded_head_settings(head)["triplane_resolution"] == 48
    with pytest.raises(SystemExit, match="neither a run's config.yml"):
        load_run(tmp_path / "missing")
