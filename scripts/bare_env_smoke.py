#!/usr/bin/env python
"""Smoke test of the training/eval path in the current interpreter, without the ``ns-*`` launchers.

    python scripts/bare_env_smoke.py --work /tmp/tnerf-smoke
    python scripts/bare_env_smoke.py --work /tmp/tnerf-smoke --closure   # also list the non-bare distributions

Renders tiny static and dynamic synthetic datasets with the real scripts, trains ``tnerf`` and ``tnerf-dynamic``
programmatically for a few iterations (tiny model, cpu unless ``--device cuda``), runs
``pipeline.get_average_eval_image_metrics`` and reloads the run with nerfstudio's ``eval_setup``. Used by
``scripts/check_bare_env.sh`` to prove the project runs on a machine with only the bare scientific stack plus the
wheels of ``scripts/gpu_wheels.txt``; ``--closure`` prints every imported distribution that is not in that bare stack
(what ``.gpu-wheels/`` must bring).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The distributions a bare CUDA machine has (and their own dependencies, found from their metadata below).
BARE = ["torch", "torchvision", "numpy", "einops", "safetensors", "jaxtyping", "huggingface_hub", "rich",
        "tensorboard", "torchmetrics", "scipy", "matplotlib", "pillow", "opencv-python-headless", "timm", "pytest",
        "pip", "setuptools"]  # fmt: skip


WHEEL_LIST = REPO / "scripts" / "gpu_wheels.txt"
# imported by try/except only when present (requests' and imageio's optional speedups, tnerf_ns' ffmpeg lookup, ...):
# the bare run of scripts/check_bare_env.sh, which lacks them, passes
OPTIONAL = {"imageio-ffmpeg", "pysocks", "simplejson", "defusedxml", "six", "threadpoolctl"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bare_closure() -> set:
    """The bare distributions plus everything they require (recursively, markers evaluated for this interpreter)."""
    from packaging.requirements import Requirement

    seen, todo = set(), [_norm(n) for n in BARE]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_norm(req.name))
    return seen


def imported_distributions() -> set:
    owners = md.packages_distributions()
    found = set()
    for mod in list(sys.modules):
        for dist in owners.get(mod.split(".")[0], []):
            found.add(_norm(dist))
    return found


def run(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO, check=True)


TINY = {"triplane_resolution": 16, "triplane_channels": 8, "feature_dim": 8, "num_coarse_samples": 8,
        "num_fine_samples": 8, "backbone_image_width": 42}  # fmt: skip  # tests/helpers.py TINY_MODEL


def train(config_fn, data: Path, out: Path, device: str, iterations: int) -> Path:
    from nerfstudio.engine.trainer import Trainer  # noqa: F401  (the class config.setup() builds)

    config = config_fn()
    config.machine.device_type = device
    config.output_dir = out
    config.experiment_name = "smoke"
    config.timestamp = "run"
    config.max_num_iterations = iterations
    config.steps_per_eval_batch = config.steps_per_eval_image = 2
    config.steps_per_save = iterations
    config.vis = "tensorboard"
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.train_num_rays_per_batch = 64
    config.pipeline.datamanager.num_query_points = 64
    for key, value in TINY.items():
        setattr(config.pipeline.model, key, value)
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    start = time.perf_counter()
    trainer.train()
    print(f"{config.method_name}: {iterations} iterations in {time.perf_counter() - start:.1f}s")
    metrics = trainer.pipeline.get_average_eval_image_metrics(step=iterations)
    print(f"{config.method_name}: eval metrics {sorted(metrics)} psnr={float(metrics['psnr']):.2f}")
    config_file = out / "smoke" / config.method_name / "run" / "config.yml"
    assert config_file.is_file(), config_file
    assert list((config_file.parent / "nerfstudio_models").glob("step-*.ckpt")), "no checkpoint written"
    return config_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (datasets, runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--closure", action="store_true", help="print the imported non-bare distributions")
    args = parser.parse_args()

    import numpy as np
    import torch

    from tnerf_ns import configs

    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__}, "
          f"nerfstudio {md.version('nerfstudio')}")  # fmt: skip
    work = args.work
    static, dynamic = work / "scenes", work / "dyn_scenes"
    run("scripts/make_synthetic_scenes.py", "--out", str(work / "grids"), "--num-scenes", "3", "--max-res", "24")
    run("scripts/render_scenes.py", "--scenes", str(work / "grids"), "--out", str(static), "--views", "6",
        "--size", "32x32")  # fmt: skip
    run("scripts/make_synthetic_scenes.py", "--out", str(work / "dyn_grids"), "--num-scenes", "3", "--max-res", "24",
        "--dynamic")  # fmt: skip
    run("scripts/render_scenes.py", "--scenes", str(work / "dyn_grids"), "--out", str(dynamic), "--views", "6",
        "--size", "32x32")  # fmt: skip

    # the generators' own imports, in this process too (closure)
    import scripts.make_synthetic_scenes  # noqa: F401
    import scripts.render_scenes  # noqa: F401
    import tnerf_ns.scenes.grid_renderer  # noqa: F401

    static_config = train(configs.tnerf_trainer_config, static, work / "runs", args.device, args.iterations)
    train(configs.tnerf_dynamic_trainer_config, dynamic, work / "runs", args.device, args.iterations)

    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, _ = eval_setup(static_config, test_mode="test")
    camera = pipeline.datamanager.eval_dataset.cameras[0:1].to(pipeline.device)
    with torch.no_grad():
        rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"]
    assert torch.isfinite(rgb).all()
    print(f"eval_setup: reloaded {static_config.parent.name}, rendered {tuple(rgb.shape)}")

    # what `ns-train tnerf ... tnerf-scenes --data X` parses (tyro), and its --help, without starting a run
    import contextlib
    import io

    import tyro
    from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

    cli = ["tnerf", "--machine.device-type", "cpu", "--max-num-iterations", "1", "tnerf-scenes", "--data", str(static)]
    parsed = tyro.cli(AnnotatedBaseConfigUnion, args=cli)
    assert parsed.method_name == "tnerf" and parsed.pipeline.datamanager.dataparser.data == static, parsed.pipeline
    with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.suppress(SystemExit):
        tyro.cli(AnnotatedBaseConfigUnion, args=["tnerf-dynamic", "--help"])
    assert "tnerf-dynamic" in text.getvalue() or "pipeline" in text.getvalue(), text.getvalue()[:500]
    print("ns-train CLI: parsed tnerf config, tnerf-dynamic --help ok")

    if args.closure:
        extra = sorted(imported_distributions() - bare_closure() - {"tnerf-ns"})
        print("non-bare distributions imported:", " ".join(extra))
        listed = {_norm(line.split("#")[0].split("==")[0].strip()) for line in WHEEL_LIST.read_text().splitlines()}
        unlisted = [d for d in extra if d not in listed and d not in OPTIONAL]
        if unlisted:
            raise SystemExit(f"imported but neither bare nor in {WHEEL_LIST.name}: {' '.join(unlisted)}")
    print("SMOKE OK")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
