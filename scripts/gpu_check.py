#!/usr/bin/env python
"""The CUDA path in one command: every GPU check of T-NeRF, a table, and ``docs/results/gpu.md``.

    python scripts/gpu_check.py              # on a CUDA machine (make gpu-check); ~3-5 min on an H100/H200
    python scripts/gpu_check.py --dry-run    # the same code paths at tiny sizes on the CPU (part of the test suite)

Checks (each a row of the table):
  1. golden VGGT fixture on the device: fp32 (TF32 off) within the CPU tolerance, bf16 autocast within a looser one;
  2. VGGT-1B (random init, real size) at 518 px, bf16: latency and peak memory for 1-64 views, beside the official
     FlashAttention-3 H100 figures;
  3. T-NeRF scene encoding (backbone + LatentHead + lifting) for 4 and 8 views at 518 px;
  4. rendering one 800x800 image from a predicted tri-plane (with a profile of where the time goes);
  5. training ``tnerf`` (200 steps) and evaluating on generated scenes, ``tnerf-dynamic`` (50 steps);
  6. the grid renderer on the device against the CPU (512^2 image of a 160^3 scene).

On a bare CUDA machine (torch, numpy and the scientific stack, but no nerfstudio) the script first installs the
wheels in ``--wheels`` (built by ``make gpu-wheels``) that are missing, with ``pip --no-index --no-deps`` into a
private folder, and restarts itself with that folder on the path. Its options are read with argparse because tyro
itself comes from those wheels. A failing check is recorded with its error and the others still run; the exit
status is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "results" / "gpu.md"
BF16_TOLERANCE = 3e-2
"""max|d|/max|ref| allowed with bf16 autocast (bf16 keeps 8 mantissa bits; the CPU's bf16 autocast gives <= 6.5e-3)."""
OFFICIAL_H100 = {1: (0.04, 1.88), 2: (0.05, 2.07), 4: (0.07, 2.45), 8: (0.11, 3.23), 10: (0.14, 3.63),
                 20: (0.31, 5.58), 50: (1.04, 11.41), 100: (3.12, 21.15)}  # fmt: skip
"""Official VGGT aggregator, one H100, FlashAttention 3: frames -> (seconds, peak GB) (VGGT README)."""

# ---------------------------------------------------------------------------------------------------- bootstrap


def wheel_distribution(wheel: Path) -> str:
    """Distribution name of a wheel file (``name-version-...whl``)."""
    return wheel.name.split("-")[0]


def is_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def ensure_dependencies(wheels: Path) -> None:
    """Make nerfstudio importable: install the missing wheels into a private folder and restart with it on the path.

    Wheels of distributions this Python already has are skipped, so the machine's own torch, numpy etc. are never
    replaced.
    """
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if importlib.util.find_spec("nerfstudio") is not None:
        return
    if os.environ.get("TNERF_GPU_CHECK_SITE"):
        raise SystemExit(f"nerfstudio is still not importable after installing the wheels of {wheels}")
    if not wheels.is_dir() or not list(wheels.glob("*.whl")):
        raise SystemExit(
            f"nerfstudio is not installed and {wheels} holds no wheels: run `make gpu-wheels` on a machine with "
            "internet access and bring that folder along (or install the project with `make setup`)"
        )
    missing = [w for w in sorted(wheels.glob("*.whl")) if not is_installed(wheel_distribution(w))]
    site = Path(tempfile.mkdtemp(prefix="tnerf-gpu-site-"))
    print(f"installing {len(missing)} wheels from {wheels} into {site} (no index, no dependencies)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
         "--disable-pip-version-check", "--target", str(site), *map(str, missing)],
        check=True,
    )  # fmt: skip
    env = dict(os.environ, TNERF_GPU_CHECK_SITE=str(site))
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


# ---------------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    """One figure of the report."""

    check: str
    item: str
    value: str
    goal: str = ""
    ok: Optional[bool] = None
    """True pass / goal met, False fail / goal missed, None: information only."""
    speed_goal: bool = False
    """A speed target (met or missed) rather than a correctness check (pass or fail): a missed goal is reported but
    does not fail the run."""

    @property
    def result(self) -> str:
        if self.ok is None:
            return "–"
        if self.speed_goal:
            return "goal met" if self.ok else "goal missed"
        return "pass" if self.ok else "**FAIL**"


@dataclass
class Report:
    """Rows, detail sections and the machine's description."""

    rows: List[Row] = field(default_factory=list)
    sections: Dict[str, str] = field(default_factory=dict)
    data: Dict[str, object] = field(default_factory=dict)

    def add(self, *args, **kwargs) -> Row:
        self.rows.append(Row(*args, **kwargs))
        print(f"  [{self.rows[-1].result}] {args[0]} | {args[1]}: {args[2]}", flush=True)
        return self.rows[-1]

    @property
    def failed(self) -> List[Row]:
        """Correctness checks that failed (missed speed goals are not failures)."""
        return [r for r in self.rows if r.ok is False and not r.speed_goal]


def free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------- sizes


@dataclass
class Sizes:
    """What each check runs: the real sizes on a GPU, tiny ones for the CPU dry run."""

    device: str
    backbone: str
    vggt_px: int
    vggt_views: Tuple[int, ...]
    encode_views: Tuple[int, ...]
    render_px: int
    render_chunk: int
    scenes: int
    scene_res: int
    scene_views: int
    scene_px: int
    train_steps: int
    dynamic_scenes: int
    dynamic_steps: int
    grid_res: int
    grid_px: int
    repeats: int
    tiny_model: bool

    @classmethod
    def for_run(cls, dry_run: bool) -> "Sizes":
        if dry_run:
            return cls("cpu", "vggt-small", 28, (1, 2), (2,), 24, 1 << 12, 4, 16, 6, 32, 3, 2, 2, 24, 32, 1, True)
        return cls("cuda", "vggt-1b", 518, (1, 4, 8, 10, 16, 20, 32, 50, 64), (4, 8), 800, 1 << 16, 10, 48, 16, 128, 200, 4, 50,
                   160, 512, 5, False)  # fmt: skip


# ---------------------------------------------------------------------------------------------------- checks


def check_golden(report: Report, sizes: Sizes) -> None:
    """1. The golden fixture on the device: fp32 with TF32 off, then bf16 autocast."""
    import torch
    from safetensors.torch import load_file

    from tnerf_ns.backbone import load_vggt
    from tnerf_ns.backbone.golden import FP32_TOLERANCE, GOLDEN_CASES, golden_errors

    fixture = REPO / "tests" / "fixtures" / "reference" / "vggt_golden"
    model = load_vggt(fixture / "weights.safetensors", "vggt-small").to(sizes.device)
    reference = load_file(str(fixture / "inputs_and_outputs.safetensors"))
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        for precision, tolerance in (("fp32, TF32 off", FP32_TOLERANCE), ("bf16 autocast", BF16_TOLERANCE)):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            model.mixed_precision = precision.startswith("bf16")
            errors = {
                (case, name): err
                for case in GOLDEN_CASES
                for name, err in golden_errors(model, reference, case).items()
            }
            (case, name), worst = max(errors.items(), key=lambda kv: kv[1])
            report.add("1 golden VGGT", f"{precision}: worst of {len(errors)} outputs ({case}/{name})",
                       f"{worst:.2e}", f"< {tolerance:.0e}", worst < tolerance)  # fmt: skip
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def check_vggt_latency(report: Report, sizes: Sizes) -> None:
    """2. VGGT at full size: aggregator latency and peak memory by number of views."""
    import torch

    from tnerf_ns.backbone import build_vggt
    from tnerf_ns.benchmarking import PeakMemory, median_seconds

    with torch.device(sizes.device):  # initialise on the device: 1.2 B parameters initialise in seconds there
        vggt = build_vggt(sizes.backbone, seed=0)
    weights_gb = sum(p.numel() * p.element_size() for p in vggt.aggregator.parameters()) / 1e9
    dpt_layers = vggt.config.intermediate_layer_idx
    lines = [
        f"{sizes.backbone} aggregator, random weights (fp32, {weights_gb:.2f} GB) under bf16 autocast, "
        f"{sizes.vggt_px}x{sizes.vggt_px} px, SDPA attention; median of {sizes.repeats} after a warm-up. "
        "Peak = allocator peak including the weights; 'above' = peak minus weights and inputs. 'all layers' keeps "
        f"all {vggt.config.depth} aggregator outputs (as the official benchmark returns them); 'DPT layers' keeps "
        f"the {len(dpt_layers)} layers T-NeRF reads.",
        "",
        "| views | all layers s | peak GB | above GB | DPT layers s | peak GB | official H100 FA3 s / GB |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = []
    for views in sizes.vggt_views:
        images = torch.rand(1, views, 3, sizes.vggt_px, sizes.vggt_px, device=sizes.device)
        figures = []
        for layers in (None, dpt_layers):
            with torch.no_grad(), PeakMemory(sizes.device, measure_cpu=False) as mem:
                repeats = sizes.repeats if views <= 16 else 2  # long runs vary little
                sec = median_seconds(lambda: vggt.aggregate(images, layers), sizes.device, repeats, warmup=1)
            figures.append((sec, mem.total_peak_bytes / 1e9, mem.peak_bytes / 1e9))
            free_memory()
        official = OFFICIAL_H100.get(views)
        ref = f"{official[0]:.2f} / {official[1]:.2f}" if official else "–"
        (s_all, p_all, a_all), (s_dpt, p_dpt, _) = figures
        lines.append(f"| {views} | {s_all:.3f} | {p_all:.2f} | {a_all:.2f} | {s_dpt:.3f} | {p_dpt:.2f} | {ref} |")
        rows.append({"views": views, "seconds_all": s_all, "peak_gb_all": p_all, "above_gb_all": a_all,
                     "seconds_dpt": s_dpt, "peak_gb_dpt": p_dpt})  # fmt: skip
        full_size = sizes.backbone == "vggt-1b" and sizes.vggt_px == 518 and official is not None
        goal = f"<= {official[0]:.2f} s (official)" if full_size else ""
        ok = (s_all <= official[0]) if (full_size and sizes.device == "cuda") else None
        report.add("2 VGGT latency", f"{sizes.backbone}, {views} views, {sizes.vggt_px} px, bf16",
                   f"{s_all:.3f} s, {p_all:.2f} GB peak", goal, ok, speed_goal=True)  # fmt: skip
        del images
    report.sections["VGGT latency and memory"] = "\n".join(lines + ["", attention_backends(vggt, sizes, report)])
    report.data["vggt_latency"] = rows
    del vggt
    free_memory()


def attention_backends(vggt, sizes: Sizes, report: Report) -> str:
    """Where the backbone's time goes: aggregator latency with each SDPA backend forced, and a kernel profile."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from tnerf_ns.benchmarking import median_seconds, synchronize

    views_list = [v for v in (8, 50) if v in sizes.vggt_views] or [sizes.vggt_views[-1]]  # official anchors
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cuDNN": SDPBackend.CUDNN_ATTENTION,
                "mem-efficient": SDPBackend.EFFICIENT_ATTENTION}  # fmt: skip
    lines = ["Aggregator seconds (all layers kept) with one SDPA backend forced (default = PyTorch's own choice):", "",
             "| views | default | " + " | ".join(backends) + " |", "|---:|---:|" + "---:|" * len(backends)]  # fmt: skip
    timings = {}
    for views in views_list:
        images = torch.rand(1, views, 3, sizes.vggt_px, sizes.vggt_px, device=sizes.device)
        cells = []
        for name, backend in [("default", None), *backends.items()]:
            try:
                with torch.no_grad(), sdpa_kernel([backend]) if backend is not None else nullcontext():
                    sec = median_seconds(lambda: vggt.aggregate(images), sizes.device, 2, warmup=1)
                cells.append(f"{sec:.3f}")
                timings[f"{views}/{name}"] = sec
            except RuntimeError as err:  # backend not available for this device / dtype / shape
                cells.append("n/a")
                timings[f"{views}/{name}"] = str(err).splitlines()[0][:120]
            free_memory()
        lines.append(f"| {views} | " + " | ".join(cells) + " |")
        del images
    report.data["sdpa_backends"] = timings
    views = views_list[0]
    images = torch.rand(1, views, 3, sizes.vggt_px, sizes.vggt_px, device=sizes.device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if sizes.device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.no_grad():
        vggt.aggregate(images)
        synchronize(sizes.device)
        with torch.profiler.profile(activities=activities) as prof:
            vggt.aggregate(images)
            synchronize(sizes.device)
    sort = "cuda_time_total" if sizes.device == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=12, max_name_column_width=60)
    lines += ["", f"Profile of one {views}-view aggregator forward (default backend), top operators by {sort}:", "",
              f"```\n{table}\n```"]  # fmt: skip
    return "\n".join(lines)


def bench_cameras(views: int, radius: float = 2.6, fov_deg: float = 50.0, px: int = 518):
    """``views`` OpenGL cameras on a ring looking at the origin (the canonical box [-1, 1]^3), and intrinsics."""
    import numpy as np
    import torch

    from tnerf_ns.scenes.camera_rigs import look_at_opengl

    poses = []
    for i in range(views):
        angle = 2 * math.pi * i / views
        eye = np.array([radius * math.cos(angle), radius * math.sin(angle), 0.8])
        poses.append(look_at_opengl(eye, np.zeros(3)))
    focal = px / (2 * math.tan(math.radians(fov_deg) / 2))
    intrinsics = torch.tensor([[focal, 0, px / 2], [0, focal, px / 2], [0, 0, 1]], dtype=torch.float32)
    return torch.tensor(np.stack(poses), dtype=torch.float32), intrinsics.expand(views, 3, 3).clone(), focal


def build_encoding_model(sizes: Sizes):
    """The tnerf model with the full-size backbone (random weights), in eval mode on the device."""
    import torch
    from nerfstudio.data.scene_box import SceneBox

    from tnerf_ns.models.tnerf_model import TNeRFModelConfig

    config = TNeRFModelConfig(backbone=sizes.backbone, backbone_weights=None, backbone_image_width=sizes.vggt_px,
                              compute_lpips=False,
                              backbone_cache_size=0, eval_num_rays_per_chunk=sizes.render_chunk)  # fmt: skip
    with torch.device(sizes.device):
        model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0, -1, -1], [1, 1, 1]])), num_train_data=1)
    return model.to(sizes.device).eval()


def check_encoding_and_render(report: Report, sizes: Sizes) -> None:
    """3. Scene encoding for 4 and 8 views; 4. rendering one image from the predicted tri-plane."""
    import torch

    from tnerf_ns.benchmarking import PeakMemory, median_seconds
    from tnerf_ns.scene_context import SceneContext

    model = build_encoding_model(sizes)
    planes = None
    for views in sizes.encode_views:
        c2w, intrinsics, _ = bench_cameras(views, px=sizes.vggt_px)
        ctx = SceneContext(
            key=("gpu-check", views), scene_idx=0, name="random", alpha=torch.ones(views, sizes.vggt_px, sizes.vggt_px),
            images=torch.rand(views, 3, sizes.vggt_px, sizes.vggt_px), c2w=c2w[:, :3], intrinsics=intrinsics,
        ).to(torch.device(sizes.device))  # fmt: skip
        with torch.no_grad(), PeakMemory(sizes.device, measure_cpu=False) as mem:
            sec = median_seconds(lambda: model.encoder(ctx), sizes.device, sizes.repeats, warmup=1)
            planes = model.encoder(ctx)[0]
            aggregated = model.encoder.aggregate(model.encoder.resize(ctx.images)[0], ctx.key)
            images, intr = model.encoder.resize(ctx.images, ctx.intrinsics)
            head = median_seconds(
                lambda: model.encoder.head_and_lift(aggregated, images, intr, ctx), sizes.device, sizes.repeats, 1
            )
        goal = "<= 0.15 s" if views == 8 else ""
        ok = (sec <= 0.15) if (views == 8 and sizes.device == "cuda") else None
        report.add("3 scene encoding", f"{sizes.backbone} + LatentHead + lifting, {views} views, {sizes.vggt_px} px",
                   f"{sec:.3f} s ({head:.3f} s head + lifting), {mem.total_peak_bytes / 1e9:.2f} GB peak", goal, ok, speed_goal=True)  # fmt: skip
        report.data[f"encode_{views}_views_s"] = sec
        report.data[f"head_lift_{views}_views_s"] = head
        del aggregated
        free_memory()
    render_image(report, sizes, model, planes)
    del model
    free_memory()


def render_image(report: Report, sizes: Sizes, model, planes) -> None:
    """One square image through the model's renderer, chunked as ns-render does; then a profile of one render."""
    import torch
    from nerfstudio.cameras.cameras import Cameras

    from tnerf_ns.benchmarking import PeakMemory, median_seconds, synchronize

    c2w, _, focal = bench_cameras(1, px=sizes.render_px)
    camera = Cameras(camera_to_worlds=c2w[:, :3], fx=focal, fy=focal, cx=sizes.render_px / 2, cy=sizes.render_px / 2,
                     width=sizes.render_px, height=sizes.render_px).to(sizes.device)  # fmt: skip
    flat = camera.generate_rays(camera_indices=0).reshape((-1,))
    chunk = sizes.render_chunk

    def render() -> Dict[str, torch.Tensor]:
        with torch.no_grad():
            outs = [model.render(flat[i : i + chunk], planes) for i in range(0, len(flat), chunk)]
        return {k: torch.cat([o[k] for o in outs]) for k in ("rgb", "accumulation")}

    with PeakMemory(sizes.device, measure_cpu=False) as mem:
        sec = median_seconds(render, sizes.device, sizes.repeats, warmup=1)
    image = render()
    finite = bool(torch.isfinite(image["rgb"]).all())
    samples = 2 * model.config.num_coarse_samples + model.config.num_fine_samples  # the fine pass re-evaluates coarse
    ok = (sec <= 0.05) if sizes.device == "cuda" else None
    report.add("4 rendering", f"{sizes.render_px}x{sizes.render_px} image, hierarchical "
               f"{model.config.num_coarse_samples}+{model.config.num_fine_samples} samples, chunks of {chunk} rays",
               f"{sec * 1e3:.1f} ms, {mem.total_peak_bytes / 1e9:.2f} GB peak", "<= 50 ms", ok, speed_goal=True)  # fmt: skip
    report.add("4 rendering", "rendered image is finite, accumulation in [0, 1]", f"finite={finite}", "finite",
               finite and bool(((image["accumulation"] >= 0) & (image["accumulation"] <= 1 + 1e-4)).all()))  # fmt: skip
    report.data["render_ms"] = sec * 1e3
    report.data["render_samples_per_s"] = sizes.render_px**2 * samples / sec
    # the default path of ns-eval / ns-render / the viewer: occupancy grid (one-off per scene), empty-space skipping
    from tnerf_ns.benchmarking import Stopwatch

    key = ("gpu-check", "render")
    with Stopwatch(sizes.device) as build:
        grid = model.renderer.occupancy_grid(planes, model.field)
    model.occupancy_cache.put(key, grid)

    def render_fast() -> Dict[str, torch.Tensor]:
        outs = [model.render_fast(flat[i : i + chunk], planes, key) for i in range(0, len(flat), chunk)]
        return {k: torch.cat([o[k] for o in outs]) for k in ("rgb", "accumulation")}

    sec_fast = median_seconds(render_fast, sizes.device, sizes.repeats, warmup=1)
    fast_image = render_fast()
    report.add("4 rendering", f"{sizes.render_px}x{sizes.render_px} image, occupancy path (random weights: grid "
               f"{grid.fraction:.0%} occupied, built once in {build.seconds * 1e3:.0f} ms)", f"{sec_fast * 1e3:.1f} ms",
               "<= 50 ms", (sec_fast <= 0.05) if sizes.device == "cuda" else None, speed_goal=True)  # fmt: skip
    report.add("4 rendering", "occupancy-path image is finite", f"finite={bool(torch.isfinite(fast_image['rgb']).all())}",
               "finite", bool(torch.isfinite(fast_image["rgb"]).all()))  # fmt: skip
    report.data["render_fast_ms"] = sec_fast * 1e3
    activities = [torch.profiler.ProfilerActivity.CPU]
    if sizes.device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        render()
        synchronize(sizes.device)
    sort = "cuda_time_total" if sizes.device == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=60)
    report.sections["Where the rendering time goes"] = (
        f"One {sizes.render_px}x{sizes.render_px} render ({sizes.render_px**2 * samples / 1e6:.1f} M field "
        f"evaluations: {samples} per ray counting the fine pass's re-evaluation of the coarse samples) at "
        f"{sec * 1e3:.1f} ms = {report.data['render_samples_per_s']:.3g} field evaluations/s. torch.profiler, top "
        f"operators by {sort}:\n\n```\n{table}\n```"
    )


def make_scenes(root: Path, sizes: Sizes, dynamic: bool) -> Path:
    """Generated scenes rendered into a tnerf-scenes dataset, with the project's own scripts."""
    grids, scenes = root / "grids", root / "scenes"
    count = sizes.dynamic_scenes if dynamic else sizes.scenes
    gen = [sys.executable, str(REPO / "scripts" / "make_synthetic_scenes.py"), "--out", str(grids),
           "--num-scenes", str(count), "--max-res", str(sizes.scene_res)] + (["--dynamic"] if dynamic else [])  # fmt: skip
    render = [sys.executable, str(REPO / "scripts" / "render_scenes.py"), "--scenes", str(grids), "--out",
              str(scenes), "--views", str(sizes.scene_views), "--size", f"{sizes.scene_px}x{sizes.scene_px}",
              "--device", sizes.device]  # fmt: skip
    for cmd in (gen, render):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"{Path(cmd[1]).name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return scenes


def train(sizes: Sizes, data: Path, out: Path, dynamic: bool, steps: int) -> Tuple[object, List[float], List[float]]:
    """Train through nerfstudio's Trainer (as ns-train does); returns the trainer, the loss and time of each step."""
    import torch

    from tnerf_ns.benchmarking import Stopwatch
    from tnerf_ns.configs import apply_tiny_settings, tnerf_dynamic_trainer_config, tnerf_trainer_config

    config = (tnerf_dynamic_trainer_config if dynamic else tnerf_trainer_config)()
    config.machine.device_type = sizes.device
    config.max_num_iterations = steps
    config.output_dir = out
    config.experiment_name = "gpu-check"
    config.timestamp = "run"
    config.vis = "tensorboard"
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 10**6
    config.steps_per_save = 10**6
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser.data = data
    config.pipeline.model.compute_lpips = False
    config.pipeline.model.backbone = "vggt-small"  # trained from random init (no download)
    if sizes.tiny_model:  # the test suite's tiny settings
        apply_tiny_settings(config)
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    losses: List[float] = []
    times: List[float] = []
    original = trainer.train_iteration

    def recorded(step: int):
        with Stopwatch(sizes.device) as watch:
            result = original(step)
            losses.append(float(result[0]))  # the float() also waits for the step
        times.append(watch.seconds)
        return result

    trainer.train_iteration = recorded
    trainer.train()
    devices = {p.device.type for p in trainer.pipeline.model.parameters()}
    if devices != {torch.device(sizes.device).type}:
        raise RuntimeError(f"model parameters on {devices} after training on {sizes.device}")
    return trainer, losses, times


def loss_trend(losses: List[float]) -> Tuple[float, float]:
    """Mean loss of the first and the last fifth of the run."""
    k = max(1, len(losses) // 5)
    return statistics.fmean(losses[:k]), statistics.fmean(losses[-k:])


def check_training(report: Report, sizes: Sizes, workdir: Path) -> None:
    """5. tnerf: train, evaluate on held-out scenes; tnerf-dynamic: train."""
    from tnerf_ns.benchmarking import Stopwatch
    from tnerf_ns.report import empty_field_baseline

    watch = Stopwatch().start()
    data = make_scenes(workdir / "static", sizes, dynamic=False)
    report.add("5 training", f"data: {sizes.scenes} generated scenes, {sizes.scene_views} views of {sizes.scene_px}px "
               f"(grids {sizes.scene_res}, rendered on {sizes.device})", f"{watch.seconds:.1f} s")  # fmt: skip
    trainer, losses, times = train(sizes, data, workdir / "runs", dynamic=False, steps=sizes.train_steps)
    first, last = loss_trend(losses)
    steady = times[min(10, len(times) - 1) :] if len(times) > 1 else times
    rate = 1.0 / statistics.median(steady)
    report.add("5 training", f"tnerf, {len(losses)} steps, {trainer.config.pipeline.model.backbone}",
               f"{rate:.1f} steps/s; loss {first:.4f} -> {last:.4f}", "loss decreases",
               (last < first) if len(losses) >= 50 else None)  # too few steps in a dry run to expect progress  # fmt: skip
    pipeline = trainer.pipeline
    pipeline.eval()
    watch.start()
    metrics = pipeline.get_average_eval_image_metrics(step=sizes.train_steps)
    baseline = empty_field_baseline(pipeline)
    report.add("5 training", f"tnerf evaluation on held-out scenes ({baseline['images']} images, {sizes.device})",
               f"PSNR {metrics['psnr']:.2f} dB vs empty field {baseline['psnr']:.2f} dB "
               f"({watch.seconds:.1f} s)", "finite", math.isfinite(metrics["psnr"]))  # fmt: skip
    report.data.update(train_steps_per_s=rate, train_loss=[first, last], eval_psnr=metrics["psnr"],
                       empty_field_psnr=baseline["psnr"])  # fmt: skip
    del trainer, pipeline
    free_memory()
    data = make_scenes(workdir / "dynamic", sizes, dynamic=True)
    trainer, losses, times = train(sizes, data, workdir / "runs-dynamic", dynamic=True, steps=sizes.dynamic_steps)
    first, last = loss_trend(losses)
    rate = 1.0 / statistics.median(times[min(5, len(times) - 1) :])
    report.add("5 training", f"tnerf-dynamic, {len(losses)} steps ({trainer.config.pipeline.model.interpolation_mode})",
               f"{rate:.1f} steps/s; loss {first:.4f} -> {last:.4f}", "runs, finite",
               all(math.isfinite(v) for v in losses))  # fmt: skip
    report.data.update(dynamic_steps_per_s=rate)
    del trainer
    free_memory()


def check_grid_renderer(report: Report, sizes: Sizes) -> None:
    """6. Grid renderer: rays/s on the device against the CPU, same scene and camera."""
    import torch

    from tnerf_ns.benchmarking import median_seconds
    from tnerf_ns.scenes.grid_renderer import GridVolume, render_view
    from tnerf_ns.scenes.render_dataset import RenderSettings, cameras_for
    from tnerf_ns.scenes.synthetic import generate_scene

    scene = generate_scene(0, 0, "object", False, sizes.grid_res)[0]
    px = sizes.grid_px
    poses, intr = cameras_for(scene, RenderSettings(views=4, height=px, width=px), seed=0)
    c2w = torch.from_numpy(poses[1]).float()
    figures = {}
    images = {}
    for device in dict.fromkeys(["cpu", sizes.device]):
        volume = GridVolume.from_scene(scene, device)
        args = (volume, c2w, intr.fx, intr.fy, intr.cx, intr.cy, px, px)
        sec = median_seconds(lambda: render_view(*args), device, max(1, sizes.repeats // 2), warmup=1)
        figures[device] = px * px / sec
        images[device] = render_view(*args)["rgb"].cpu()
    same = float((images["cpu"] - images[sizes.device]).abs().max())
    speedup = figures[sizes.device] / figures["cpu"]
    report.add("6 grid renderer", f"{px}x{px} image, object scene {tuple(scene.grid_shape)}",
               f"{figures[sizes.device]:.3g} rays/s on {sizes.device} vs {figures['cpu']:.3g} on cpu "
               f"({speedup:.1f}x); largest colour difference {same:.1e}",
               "faster than CPU, same image", None if sizes.device == "cpu" else (speedup > 1 and same < 1e-2))  # fmt: skip
    report.data.update(grid_rays_per_s=figures)


# ---------------------------------------------------------------------------------------------------- report


def environment(sizes: Sizes) -> Dict[str, str]:
    import numpy as np
    import torch

    env = {
        "device": "cpu (dry run)" if sizes.device == "cpu" else torch.cuda.get_device_name(0),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "CUDA (torch)": str(torch.version.cuda),
        "numpy": np.__version__,
        "nerfstudio": importlib.metadata.version("nerfstudio"),
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    if sizes.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env["device"] += f" ({props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs)"
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True,
                check=True, timeout=30,
            ).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            env["driver"] = "unknown (nvidia-smi not available)"
    return env


def markdown(report: Report, env: Dict[str, str], total_s: float, dry_run: bool) -> str:
    lines = [
        "# GPU check",
        "",
        "Written by `python scripts/gpu_check.py` (`make gpu-check`)"
        + (" in its CPU dry run (tiny sizes; figures mean nothing)." if dry_run else "."),
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in env.items()),
        f"- whole check: {total_s:.0f} s",
        "",
        "## Checks",
        "",
        "| check | what | measured | goal | result |",
        "|---|---|---|---|---|",
    ]
    for r in report.rows:
        lines.append(f"| {r.check} | {r.item} | {r.value} | {r.goal} | {r.result} |")
    checks = [r for r in report.rows if r.ok is not None and not r.speed_goal]
    goals = [r for r in report.rows if r.ok is not None and r.speed_goal]
    lines += ["", f"Correctness: {len(checks) - len(report.failed)} of {len(checks)} checks pass. Speed goals: "
              f"{sum(bool(r.ok) for r in goals)} of {len(goals)} met (a missed goal is reported, not a failure)."]  # fmt: skip
    for title, body in report.sections.items():
        lines += ["", f"## {title}", "", body]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU; writes to a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help=f"report file (default {DEFAULT_OUT.relative_to(REPO)};"
                        " dry run: a temporary folder)")  # fmt: skip
    parser.add_argument("--wheels", type=Path, default=REPO / ".gpu-wheels", help="wheels for a bare machine")
    parser.add_argument("--only", nargs="*", type=int, default=None, help="run only these checks (1-6)")
    args = parser.parse_args(argv)
    ensure_dependencies(args.wheels)

    import torch

    from tnerf_ns.benchmarking import Stopwatch

    sizes = Sizes.for_run(args.dry_run)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run on a GPU machine, or use --dry-run to exercise the code paths on the CPU")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="tnerf-gpu-check-"))
    out = args.out or (workdir / "gpu.md" if args.dry_run else DEFAULT_OUT)
    if args.dry_run and out.resolve() == DEFAULT_OUT.resolve():
        raise SystemExit(f"a dry run never writes {DEFAULT_OUT}; pick another --out")
    torch.manual_seed(0)
    report = Report()
    checks = {
        1: lambda: check_golden(report, sizes),
        2: lambda: check_vggt_latency(report, sizes),
        3: lambda: check_encoding_and_render(report, sizes),
        5: lambda: check_training(report, sizes, workdir),
        6: lambda: check_grid_renderer(report, sizes),
    }
    total = Stopwatch().start()
    for number, run in checks.items():
        if args.only and number not in args.only and not (number == 3 and 4 in args.only):
            continue
        print(f"check {number} ...", flush=True)
        watch = Stopwatch().start()
        try:
            run()
        except Exception as err:  # record and go on: one GPU run should tell everything it can
            report.add(f"{number} error", type(err).__name__, str(err).splitlines()[0][:200] if str(err) else "", "",
                       False)  # fmt: skip
            report.sections[f"Error in check {number}"] = f"```\n{traceback.format_exc()[-4000:]}\n```"
            traceback.print_exc()
        print(f"check {number}: {watch.seconds:.1f} s", flush=True)
        free_memory()
    env = environment(sizes)
    text = markdown(report, env, total.seconds, args.dry_run)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"environment": env, "rows": [r.__dict__ for r in report.rows],
                                                    "data": report.data}, indent=2, default=str))  # fmt: skip
    print(text)
    print(f"report written to {out}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
