"""Shared helpers and session fixtures for the end-to-end tests (tiny model settings, CLI runners, data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from PIL import Image

from tnerf_ns.configs import tiny_settings_flags

REPO = Path(__file__).resolve().parents[1]

BIN = Path(sys.executable).parent
TINY_MODEL = tiny_settings_flags()


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"  # ns-* and the ffmpeg that setup links into the venv
    return e


def ns(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def ns_here(*args: str) -> None:
    """A nerfstudio CLI (``ns-render``, ``ns-eval``, ``ns-export``, ...) run in this process through its own console
    entry point: the same code as the executable without its ~8 s of imports. Each CLI also runs at least once as a
    real subprocess (``ns``) somewhere in the suite."""
    from importlib.metadata import entry_points
    from unittest import mock

    (point,) = [e for e in entry_points(group="console_scripts") if e.name == args[0]]
    with mock.patch.object(sys, "argv", list(args)), mock.patch.dict(os.environ, {"PATH": env()["PATH"]}):
        try:
            point.load()()
        except SystemExit as done:
            assert done.code in (0, None), f"{' '.join(args)} exited with {done.code}"


def refine_then_eval_prediction(common: Sequence[str], scene: Path, out: Path) -> None:
    """Scene mode of a Blender-format scene with ``ns-train tnerf *common``: 0 iterations (the prediction) scored by
    ``ns-eval``, then 3 refinement steps that must train and save a checkpoint."""
    for iters, stamp in (("0", "ff"), ("3", "refined")):
        ns("ns-train", "tnerf", *common, "--max-num-iterations", iters, "--timestamp", stamp, "--experiment-name",
           "scene", "blender-data", "--data", str(scene))  # fmt: skip
    run = out / "scene" / "tnerf"
    ns_here("ns-eval", "--load-config", str(run / "ff" / "config.yml"), "--output-path", str(out / "ff.json"))
    assert np.isfinite(json.loads((out / "ff.json").read_text())["results"]["psnr"])
    assert [p.name for p in (run / "refined" / "nerfstudio_models").glob("step-*.ckpt")] == ["step-000000002.ckpt"]


def script(*args: str) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def not_blank(path: Path) -> np.ndarray:
    img = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
    assert img.std() > 1.0, f"{path} is a flat image"
    return img


def make_scenes(root: Path, num_scenes: int, max_res: int, views: int, size: str, *generator_args: str,
                out: str = "scenes") -> Path:  # fmt: skip
    """Generate synthetic grids under ``root/grids`` and render them into ``root/<out>`` (the real scripts)."""
    script("scripts/make_synthetic_scenes.py", "--out", str(root / "grids"), "--num-scenes", str(num_scenes),
           "--max-res", str(max_res), *generator_args)  # fmt: skip
    script("scripts/render_scenes.py", "--scenes", str(root / "grids"), "--out", str(root / out),
           "--views", str(views), "--size", size)  # fmt: skip
    return root / out


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> Path:
    return make_scenes(tmp_path_factory.mktemp("tnerf_data"), 4, 24, 6, "32x32")


TRAINED_STEPS = 150
"""Steps of the shared trained run: enough for the tiny model to learn (tests/test_model_learns.py checks it)."""


@pytest.fixture(scope="session")
def trained(scenes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    # about 3 minutes on 2 idle cores; the timeout leaves room for other jobs sharing them
    ns("ns-train", "tnerf", "--machine.device-type", "cpu", "--max-num-iterations", str(TRAINED_STEPS),
       "--output-dir", str(out), "--experiment-name", "t", "--timestamp", "run", "--steps-per-eval-batch", "50",
       "--steps-per-eval-image", "75", "--vis", "tensorboard", *TINY_MODEL, "tnerf-scenes", "--data", str(scenes),
       timeout=900)  # fmt: skip
    config = out / "t" / "tnerf" / "run" / "config.yml"
    assert config.is_file() and list((config.parent / "nerfstudio_models").glob("step-*.ckpt"))
    return config


def empty_psnr(config: Path) -> float:
    """PSNR of rendering nothing (the background) on a run's evaluation images: the floor a model must beat."""
    from nerfstudio.utils.eval_utils import eval_setup

    from tnerf_ns.report import empty_field_baseline

    _, pipeline, _, _ = eval_setup(config, test_mode="test")
    return empty_field_baseline(pipeline)["psnr"]


def tiny_config(data: Path, parser=None):
    """The tiny ``tnerf`` trainer configuration on CPU for ``data``: tnerf-scenes, or the given dataparser config."""
    from tnerf_ns.configs import apply_tiny_settings, tnerf_trainer_config

    config = apply_tiny_settings(tnerf_trainer_config())
    config.machine.device_type = "cpu"
    if parser is not None:
        config.pipeline.datamanager.dataparser = parser
    config.pipeline.datamanager.data = config.pipeline.datamanager.dataparser.data = data
    return config


@pytest.fixture(scope="session")
def dynamic_scenes(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("dyn_data"), 3, 24, 6, "28x28", "--dynamic", "--times", "0", "0.5", "1",
                       "--held-out-fraction", "0.34")  # fmt: skip


@pytest.fixture(scope="session")
def trained_dynamic(dynamic_scenes, tmp_path_factory) -> Path:
    """A tiny tnerf-dynamic run (random interpolation modes), shared by the dynamic and export tests."""
    out = tmp_path_factory.mktemp("dyn_runs")
    ns("ns-train", "tnerf-dynamic", "--machine.device-type", "cpu", "--max-num-iterations", "4", "--output-dir",
       str(out), "--experiment-name", "d", "--timestamp", "run", "--steps-per-eval-image", "2",
       "--steps-per-eval-batch", "2", "--pipeline.model.flow-radius", "1", "--pipeline.model.interpolation-mode",
       "random", *TINY_MODEL, "tnerf-scenes", "--data",
       str(dynamic_scenes))  # fmt: skip
    return out / "d" / "tnerf-dynamic" / "run" / "config.yml"
