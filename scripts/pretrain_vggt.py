#!/usr/bin/env python
"""Pre-train the ``vggt-small`` architecture with VGGT's own objectives on rendered generated scenes.

    python scripts/make_synthetic_scenes.py --out data/mixed --num-scenes 300 --kind mixed --max-res 96 \\
        --held-out-fraction 0.08
    python scripts/render_scenes.py --scenes data/mixed --out data/mixed_rendered --views 12 \\
        --sizes 140x140 112x140 98x140 140x112 --fov-range 30 90 --distance-scale 0.9 1.6 --target-jitter 0.12 \\
        --roll-deg 20
    python scripts/pretrain_vggt.py --data data/mixed_rendered --out runs/vggt_small --max-steps 7000 \\
        --export tnerf_ns/weights/vggt-small-synthetic.safetensors

Camera, depth and point-map losses with confidence and gradient terms (``tnerf_ns/backbone/training_losses.py``),
ground truth in the first camera's frame normalised by the mean point distance; 2-8 views per sample, several
image sizes. Held-out scenes are scored every ``--val-every`` steps (tensorboard in ``OUT/tb``). Interrupt at any
time: ``OUT/checkpoint.safetensors`` + ``OUT/trainer_state.pt`` (plain tensors, read with ``weights_only=True``) are
written atomically and the run resumes from them. ``--export`` writes the weights in fp16 with a metadata card.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch
import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import load_file, save_file

from tnerf_ns.backbone.loading import build_vggt
from tnerf_ns.backbone.pretrain_data import BatchSampler, PretrainDataError, fixed_samples, load_split
from tnerf_ns.backbone.training_losses import LossWeights, normalize_to_first_camera, vggt_loss
from tnerf_ns.backbone.vggt import VGGT

CONSOLE = Console()
CLIP_MODULES = ("aggregator", "camera_head", "depth_head", "point_head")
"""Gradients are clipped per module, as in the released configuration."""


@dataclass
class PretrainVGGT:
    """Pre-train vggt-small with VGGT's objectives."""

    data: Path
    """Rendered dataset (``render_scenes.py`` output) with held-out scenes in ``scenes.json``."""
    out: Path
    """Run folder: checkpoint, trainer state, tensorboard logs, ``run.json``."""
    config: str = "vggt-small"
    """Architecture preset (unchanged VGGT structure)."""
    max_steps: int = 7000
    """Optimiser steps (the learning-rate schedule spans them)."""
    lr: float = 3e-4
    """Peak learning rate (the paper trains from scratch with a peak of 2e-4 at 160k steps; a short run of a small
    model takes a little more)."""
    weight_decay: float = 0.05
    warmup_steps: int = 300
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    min_views: int = 2
    max_views: int = 8
    max_frames: int = 8
    """Frames per step: a batch holds ``max(1, max_frames // views)`` samples."""
    clip_norm: float = 1.0
    val_every: int = 500
    """Steps between held-out validations (and checkpoints)."""
    val_views: int = 4
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    threads: Optional[int] = None
    """CPU threads (default: torch's)."""
    time_limit_min: Optional[float] = None
    """Stop (saving a resumable checkpoint) after this many minutes of this invocation."""
    export: Optional[Path] = None
    """Write the weights here when the run stops (fp16 safetensors with a metadata card)."""
    fresh: bool = False
    """Ignore an existing checkpoint in ``out`` and start over."""


def lr_at(step: int, cfg: PretrainVGGT) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def init_fov_bias(model: VGGT, value: float = 0.5) -> None:
    """Start the camera head's field-of-view outputs positive (``value`` rad per refinement step): they pass a ReLU,
    and a random head whose raw output is negative for every input never gets a gradient there (seen in a run here:
    fov_w stuck at 0)."""
    if model.camera_head is not None:
        with torch.no_grad():
            model.camera_head.pose_branch.fc2.bias[7:].fill_(value)


def to_device(batch: Dict[str, torch.Tensor], device: torch.device) -> Dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def step_loss(model: VGGT, batch: Dict[str, torch.Tensor], weights: LossWeights) -> Dict[str, torch.Tensor]:
    gt = normalize_to_first_camera(batch["extrinsics"], batch["intrinsics"], batch["depth"], batch["mask"])
    outputs = model(batch["images"])
    return vggt_loss(outputs, gt, batch["mask"], weights)


@torch.no_grad()
def validate(model: VGGT, samples: List[Dict[str, torch.Tensor]], device: torch.device) -> Dict[str, float]:
    """Mean held-out loss terms plus quick metrics (median-scaled depth abs-rel, relative rotation error)."""
    from tnerf_ns.backbone.geometry_metrics import sample_metrics

    model.eval()
    sums: Dict[str, float] = {}
    for sample in samples:
        batch = to_device(sample, device)
        gt = normalize_to_first_camera(batch["extrinsics"], batch["intrinsics"], batch["depth"], batch["mask"])
        outputs = model(batch["images"])
        terms = {k: float(v) for k, v in vggt_loss(outputs, gt, batch["mask"]).items()}
        terms.update(sample_metrics(outputs, gt, batch["mask"]))
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v
    model.train()
    return {k: v / len(samples) for k, v in sums.items()}


def save_atomic(model: VGGT, optimizer: torch.optim.Optimizer, step: int, generator: torch.Generator, out: Path):
    """Weights as safetensors, optimiser + step + sampler state as plain tensors; each file replaced atomically."""
    tmp = out / ".checkpoint.safetensors.partial"
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(out / "checkpoint.safetensors")
    state = {"optimizer": optimizer.state_dict(), "step": torch.tensor(step), "generator": generator.get_state()}
    tmp = out / ".trainer_state.pt.partial"
    torch.save(state, tmp)
    tmp.replace(out / "trainer_state.pt")


def export_fp16(model: VGGT, path: Path, card: Dict[str, object]) -> None:
    """fp16 weights plus a JSON model card in the safetensors metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.partial")
    save_file(tensors, str(tmp), metadata={"tnerf_card": json.dumps(card)})
    tmp.replace(path)


def main(cfg: PretrainVGGT) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    cfg.out.mkdir(parents=True, exist_ok=True)
    CONSOLE.print(f"loading scenes from {cfg.data}")
    train_scenes, held_scenes = load_split(cfg.data, held_out=False), load_split(cfg.data, held_out=True)
    sampler = BatchSampler(train_scenes, cfg.min_views, cfg.max_views, cfg.max_frames)
    val_samples = fixed_samples(held_scenes, views=min(cfg.val_views, sampler.max_views), seed=cfg.seed)
    CONSOLE.print(f"{len(train_scenes)} training scenes, {len(held_scenes)} held out, sizes {sampler.sizes}")

    model = build_vggt(cfg.config, seed=cfg.seed, frozen=False).to(device).train()
    init_fov_bias(model)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "token" not in n and "pos_embed" not in n]
    no_decay = [
        p for n, p in model.named_parameters() if not (p.ndim >= 2 and "token" not in n and "pos_embed" not in n)
    ]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )  # fmt: skip
    generator = torch.Generator().manual_seed(cfg.seed)
    step = 0
    ckpt, state_file = cfg.out / "checkpoint.safetensors", cfg.out / "trainer_state.pt"
    if ckpt.exists() and state_file.exists() and not cfg.fresh:
        model.load_state_dict(load_file(str(ckpt), device=str(device)))
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        generator.set_state(state["generator"])
        CONSOLE.print(f"[green]resumed from {ckpt} at step {step}")
    (cfg.out / "run.json").write_text(json.dumps({k: str(v) for k, v in asdict(cfg).items()}, indent=1))

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(cfg.out / "tb"))
    weights = LossWeights()
    modules = {name: getattr(model, name) for name in CLIP_MODULES if getattr(model, name, None) is not None}
    start, start_step, last_val = time.time(), step, {}
    ema = None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[info]}"))  # fmt: skip
    with Progress(*columns, console=CONSOLE) as bar:
        task = bar.add_task("pretraining", total=cfg.max_steps, completed=step, info="")
        while step < cfg.max_steps:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)
            terms = step_loss(model, to_device(sampler.sample(generator), device), weights)
            if not torch.isfinite(terms["loss"]):
                raise FloatingPointError(
                    f"non-finite loss at step {step}: { ({k: float(v) for k, v in terms.items()}) }"
                )
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            for module in modules.values():
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.clip_norm)
            optimizer.step()
            step += 1
            loss = float(terms["loss"].detach())
            ema = loss if ema is None else 0.98 * ema + 0.02 * loss
            if step % 10 == 0:
                for k, v in terms.items():
                    writer.add_scalar(f"train/{k}", float(v.detach()), step)
                writer.add_scalar("train/lr", lr_at(step, cfg), step)
            timed_out = cfg.time_limit_min is not None and time.time() - start > 60 * cfg.time_limit_min
            if step % cfg.val_every == 0 or step == cfg.max_steps or timed_out:
                last_val = validate(model, val_samples, device)
                for k, v in last_val.items():
                    writer.add_scalar(f"val/{k}", v, step)
                save_atomic(model, optimizer, step, generator, cfg.out)
                shown = ("loss", "depth_abs_rel", "point_error", "rotation_error_deg", "fov_error_deg")
                CONSOLE.print(f"step {step} ({time.time() - start:.0f} s): train loss {ema:.3f}, held-out "
                              + ", ".join(f"{k} {last_val[k]:.3f}" for k in shown if k in last_val))  # fmt: skip
            rate = (time.time() - start) / max(1, step - start_step)
            info = f"loss {ema:.3f} | {rate:.2f} s/step"
            if last_val:
                info += f" | val loss {last_val['loss']:.3f} abs-rel {last_val['depth_abs_rel']:.3f}"
                info += f" rot {last_val['rotation_error_deg']:.1f}°"
            bar.update(task, completed=step, info=info)
            if timed_out:
                CONSOLE.print(f"[yellow]time limit reached at step {step}; resume by running the same command")
                break
    writer.close()
    elapsed = time.time() - start
    summary = {"step": step, "seconds_this_run": round(elapsed, 1), "validation": last_val}
    with (cfg.out / "log.jsonl").open("a") as f:
        f.write(json.dumps(summary) + "\n")
    CONSOLE.print(f"[green]step {step}: {json.dumps({k: round(v, 4) for k, v in last_val.items()})}")
    if cfg.export is not None:
        card = {
            "architecture": cfg.config, "steps": step, "data": str(cfg.data), "train_scenes": len(train_scenes),
            "held_out_scenes": len(held_scenes), "views_per_sample": [cfg.min_views, sampler.max_views],
            "objective": "VGGT camera + depth + point losses with confidence and gradient terms",
            "note": "small stand-in trained on generated scenes, not VGGT-1B",
        }  # fmt: skip
        export_fp16(model, cfg.export, card)
        CONSOLE.print(f"[green]exported fp16 weights to {cfg.export}")


if __name__ == "__main__":
    try:
        main(tyro.cli(PretrainVGGT))
    except (PretrainDataError, FloatingPointError) as err:
        CONSOLE.print(f"[red]error: {err}", soft_wrap=True)
        sys.exit(2)
