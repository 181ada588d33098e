"""The scripts behind README's front page and the diagnosis: results_at_a_glance, front_picture, diagnose_prediction,
on the shared tiny run and a generated scene."""

from __future__ import annotations

import json
import math
import runpy
import sys
from unittest import mock

import pytest
from helpers import REPO
from PIL import Image

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` skips it


def run(script: str, *args: str) -> str:
    """A script run as ``python script args`` would, in this process (no second ~8 s of imports); its output."""
    import contextlib
    import io

    out = io.StringIO()
    with mock.patch.object(sys, "argv", [script, *args]), contextlib.redirect_stdout(out):
        runpy.run_path(str(REPO / script), run_name="__main__")
    return out.getvalue()


def test_results_at_a_glance_reads_comparisons_and_says_pending(tmp_path):
    row = {"method": "tnerf feed-forward", "setting": "K=4", "split": "novel", "psnr": 12.345, "ssim": 0.5}
    empty = {"method": "empty field (background only)", "setting": "-", "split": "novel", "psnr": 9.0, "ssim": 0.6}
    (tmp_path / "lego").mkdir()
    (tmp_path / "lego" / "comparison.json").write_text(json.dumps([empty, row]))
    out = tmp_path / "glance.md"
    run("scripts/results_at_a_glance.py", "--compare", str(tmp_path), "--out", str(out))
    lines = {line.split(" | ")[0]: line for line in out.read_text().splitlines() if line.startswith("| ")}
    assert (
        lines["| lego (Blender)"] == "| lego (Blender) | 12.35 / 0.500 | not measured | not measured | 9.00 / 0.600 |"
    )
    assert lines["| DTU scan24, 3 views (real)"].count("pending") == 4  # no mean-colour row anywhere: no such column
    (tmp_path / "fox").mkdir()  # a capture: the feed-forward row of its own K
    (tmp_path / "fox" / "comparison.json").write_text(json.dumps([empty, {**row, "setting": "K=8"}]))
    run("scripts/results_at_a_glance.py", "--compare", str(tmp_path), "--out", str(out))
    assert "| fox (real, hand-held) | 12.35 / 0.500 (K=8) | not measured |" in out.read_text()
    mean = {"method": "mean-colour image", "setting": "-", "split": "novel", "psnr": 10.0, "ssim": 0.7}
    (tmp_path / "lego" / "comparison.json").write_text(json.dumps([empty, row, mean]))
    run("scripts/results_at_a_glance.py", "--compare", str(tmp_path), "--out", str(out))
    assert "| 9.00 / 0.600 | 10.00 / 0.700 |" in out.read_text()


def test_capture_picture_puts_feed_forward_refined_nerfacto_and_truth_side_by_side(trained, scenes, tmp_path):
    out = tmp_path / "methods.jpg"
    run("scripts/capture_picture.py", "--data", str(scenes / "synth_000003"), "--tnerf-checkpoint",
        str(trained.parent / "nerfstudio_models"), "--out", str(out), "--work", str(tmp_path / "work"), "--budget", "3",
        "--source-views", "2", "--eval-views", "2", "--scale", "1.0")  # fmt: skip
    result = json.loads(out.with_suffix(".json").read_text())
    assert list(result["psnr"]) == ["feed-forward", "T-NeRF refined, 3 s", "nerfacto, 3 s"]
    assert all(math.isfinite(v) and v > 0 for v in result["psnr"].values()) and result["steps"]["feed-forward"] == 0
    h, w = result["image_size"]
    assert Image.open(out).size == (4 * w, h + 18)  # three renders and the ground truth, each labelled below


def test_front_picture_shows_sources_prediction_and_truth(trained, scenes, tmp_path):
    out = tmp_path / "front.png"
    printed = run("scripts/front_picture.py", "--tnerf-checkpoint", str(trained.parent / "nerfstudio_models"), "--data",
               str(scenes / "synth_000003"), "--out", str(out), "--source-views", "2", "--scale", "1.0")  # fmt: skip
    assert "prediction" in printed and "empty field" in printed
    width, height = Image.open(out).size
    assert width > 3 * 32 and height >= 32  # sources, prediction and ground truth side by side


def test_diagnose_prediction_writes_every_row(trained, scenes, tmp_path):
    out = tmp_path / "diagnosis"
    run("scripts/diagnose_prediction.py", "--config", str(trained), "--scenes", str(scenes), "--out", str(out),
        "--source-views", "1", "2",
        "--knockout-k", "2", "--lego", "None", "--capacity-resolutions", "16", "--capacity-steps", "3",
        "--capacity-rays", "64")  # fmt: skip
    rows = json.loads((out / "demo-head.json").read_text())["rows"]
    names = {r["row"] for r in rows}
    assert {"predicted", "oracle depth", "no backbone features", "no tri-plane", "empty field",
            "reprojection, GT depth", "constant depth"} <= names  # fmt: skip
    assert {"capacity: planes 16, decoder frozen", "capacity: planes 16, decoder fitted"} <= names
    predicted = [r for r in rows if r["row"] == "predicted"]
    assert {(r["K"], r["split"]) for r in predicted} == {(1, "input"), (1, "novel"), (2, "input"), (2, "novel")}
    assert all(r["views"] > 0 and r["psnr"] > 0 for r in predicted)
    assert json.loads((out / "benchmark.json").read_text()) == {"scenes_folder": str(scenes)}
    assert "| demo-head | generated | oracle depth | 2 | novel |" in (out / "diagnosis.md").read_text()


def test_probe_input_views_splits_the_error_and_restores_the_field(trained, scenes, tmp_path):
    out = tmp_path / "probe.json"
    text = run("scripts/probe_input_views.py", "--config", str(trained), "--scenes", str(scenes), "--num-scenes", "1",
               "--k", "2", "--out", str(out))  # fmt: skip
    result = json.loads(out.read_text())
    assert result["views"] == 2 and list(result["rows"]) == ["as trained", "colour from the sources",
                                                             "colour from the own view"]  # fmt: skip
    for row in result["rows"].values():
        assert row["psnr"] > 0 and 0 <= row["object_holes"] <= 1 and 0 <= row["object_transparency"] <= 1
    assert "| colour from the own view |" in text and out.with_suffix(".md").is_file()
    edges = result["edges"]
    assert list(edges) == ["0-2 px", "2-4 px", "4-8 px", "> 8 px"] and sum(e["pixels"] for e in edges.values()) > 0
    assert abs(sum(e["error_share"] for e in edges.values()) - 1) < 1e-6 and "| 0-2 px |" in text


def test_the_edge_breakdown_bins_object_pixels_by_their_distance_to_the_silhouette():
    import numpy as np

    sys.path.insert(0, str(REPO / "scripts"))
    from probe_input_views import edge_breakdown

    alpha = np.zeros((20, 20))
    alpha[5:15, 5:15] = 1.0  # a 10x10 square: distances 1 to 5 from its edge
    clear = np.zeros_like(alpha)
    clear[5, 5:15] = 1.0  # a hole along its top row
    error = alpha.copy()
    out = edge_breakdown(alpha, clear, error)
    assert out["0-2 px"][:2] == [64.0, 10.0]  # the two outer rings (36 + 28 pixels), the hole in the first
    assert out["2-4 px"][0] == 32.0 and out["4-8 px"][0] == 4.0 and out["> 8 px"][0] == 0.0
    assert sum(v[2] for v in out.values()) == 100.0


def test_the_colour_override_forces_the_gate_and_is_undone():
    import torch

    sys.path.insert(0, str(REPO / "scripts"))
    from probe_input_views import colour_override

    from tnerf_ns.fields.triplane_field import TriplaneField

    field = TriplaneField(plane_channels=4, hidden_dim=16, projection_channels=3)
    before = {k: v.clone() for k, v in field.state_dict().items()}
    h = torch.randn(5, 16)
    with colour_override(field, "colour from the own view"):
        assert torch.allclose(torch.sigmoid(field.blend_gate(h)), torch.ones(5, 1))
        assert float(field.projection.log_sharpness) == 9.0
    assert all(torch.equal(before[k], v) for k, v in field.state_dict().items())
