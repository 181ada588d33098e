#!/usr/bin/env python
"""Behaviour-preservation check for refactors: the same weights and batches give the same numbers.

    python scripts/check_equivalence.py --out eqv/before                      # on the old code: record
    python scripts/check_equivalence.py --out eqv/after --compare eqv/before  # on the new code: replay, compare

Recording builds a tiny ``tnerf`` (and ``tnerf-dynamic``) run on generated scenes, saves the initial weights, the
step-0 losses and every parameter's gradient, the losses of 30 further training steps, and ``ns-eval``'s metrics of
the result. Replaying loads the recorded initial weights (old parameter names are mapped by the model's own
state-dict migration), so differences can only come from the code. Batches are a function of the step (the data
manager and pipeline seed per step), so both runs see the same rays, sources and query points.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import tyro
from rich.console import Console
from safetensors.torch import load_file, save_file

from tnerf_ns.models.checkpoints import migrate_state_dict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
CONSOLE = Console(width=120)


def make_data(root: Path, dynamic: bool) -> Path:
    out = root / ("dyn_scenes" if dynamic else "scenes")
    if (out / "scenes.json").exists():
        return out
    extra = ["--dynamic", "--times", "0", "0.5", "1", "--held-out-fraction", "0.34"] if dynamic else []
    for cmd in (
        ["scripts/make_synthetic_scenes.py", "--out", str(root / ("dyn_grids" if dynamic else "grids")),
         "--num-scenes", "3" if dynamic else "4", "--max-res", "24", *extra],
        ["scripts/render_scenes.py", "--scenes", str(root / ("dyn_grids" if dynamic else "grids")), "--out", str(out),
         "--views", "6", "--size", "32x32"],
    ):  # fmt: skip
        subprocess.run([sys.executable, *cmd], cwd=REPO, check=True, capture_output=True)
    return out


def tiny_trainer(data: Path, out: Path, dynamic: bool, steps: int):
    from tnerf_ns.configs import apply_tiny_settings, tnerf_dynamic_trainer_config, tnerf_trainer_config

    config = (tnerf_dynamic_trainer_config if dynamic else tnerf_trainer_config)()
    config.machine.device_type = "cpu"
    config.max_num_iterations = steps
    config.output_dir, config.experiment_name, config.timestamp = out, "eqv", "run"
    config.vis = "tensorboard"
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 10**6
    config.steps_per_save = 10**6
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser.data = data
    apply_tiny_settings(config)
    config.pipeline.model.compute_lpips = False
    if dynamic:
        config.pipeline.model.flow_radius = 1
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer, config


def record(root: Path, out: Path, dynamic: bool, weights: Optional[Path]) -> Dict:
    """Step-0 losses and gradients, 30 steps of losses, ns-eval metrics; optionally from given initial weights."""
    tag = "dynamic" if dynamic else "static"
    data = make_data(root, dynamic)
    trainer, config = tiny_trainer(data, out / f"runs-{tag}", dynamic, 30)
    model = trainer.pipeline.model
    if weights is not None:
        missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
        missing = [k for k in missing if not k.startswith("device_indicator")]
        if missing or unexpected:
            raise RuntimeError(f"recorded weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    else:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / f"{tag}_init.safetensors"))
    model.train()
    _, loss_dict, _ = trainer.pipeline.get_train_loss_dict(0)
    total = sum(loss_dict.values())
    total.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    losses = []
    original = trainer.train_iteration

    def recorded(step: int):
        result = original(step)
        losses.append(float(result[0]))
        return result

    trainer.train_iteration = recorded
    trainer.train()
    cfg_path = config.get_base_dir() / "config.yml"
    eval_json = out / f"{tag}_eval.json"
    subprocess.run([str(Path(sys.executable).parent / "ns-eval"), "--load-config", str(cfg_path), "--output-path",
                    str(eval_json)], cwd=REPO, check=True, capture_output=True)  # fmt: skip
    return {
        "step0": {k: float(v) for k, v in loss_dict.items()},
        "grads": grads,
        "losses": losses,
        "eval": json.loads(eval_json.read_text())["results"],
    }


@dataclass
class CheckEquivalence:
    """Record the numbers of a tiny run, or replay them on changed code and compare."""

    out: Path
    """Folder for this run's records."""
    compare: Optional[Path] = None
    """Records of the old code to replay and compare against."""
    data: Path = Path("/tmp/tnerf-eqv-data")
    """Generated scenes (made once, shared by both runs)."""
    rename: Optional[Path] = None
    """JSON {old_name: new_name} for gradient names, when parameters moved."""

    def main(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        rename = json.loads(self.rename.read_text()) if self.rename else {}
        report = {}
        for dynamic in (False, True):
            tag = "dynamic" if dynamic else "static"
            weights = None if self.compare is None else self.compare / f"{tag}_init.safetensors"
            rec = record(self.data, self.out, dynamic, weights)
            save_file(
                {k: v.contiguous() for k, v in rec.pop("grads").items()}, str(self.out / f"{tag}_grads.safetensors")
            )
            (self.out / f"{tag}.json").write_text(json.dumps(rec, indent=2))
            if self.compare is None:
                continue
            old = json.loads((self.compare / f"{tag}.json").read_text())
            old_grads = load_file(str(self.compare / f"{tag}_grads.safetensors"))
            new_grads = load_file(str(self.out / f"{tag}_grads.safetensors"))
            old_grads = {rename.get(k, k): v for k, v in old_grads.items()}
            migrate_state_dict(old_grads)  # names of parameters that moved into the encoder
            if set(old_grads) != set(new_grads):
                raise SystemExit(f"{tag}: gradient names differ: {sorted(set(old_grads) ^ set(new_grads))[:8]}")
            grad_err = max(
                float((new_grads[k] - g).abs().max() / g.abs().max().clamp_min(1e-12)) for k, g in old_grads.items()
            )
            step0_err = max(abs(rec["step0"][k] - v) / max(abs(v), 1e-12) for k, v in old["step0"].items())
            if set(rec["step0"]) != set(old["step0"]):
                raise SystemExit(f"{tag}: loss terms differ: {set(rec['step0']) ^ set(old['step0'])}")
            loss_err = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(rec["losses"], old["losses"]))
            eval_err = {k: abs(rec["eval"][k] - v) for k, v in old["eval"].items() if isinstance(v, float)
                        and not k.startswith(("fps", "num_rays"))}  # fmt: skip
            report[tag] = {"step0_rel": step0_err, "grad_rel": grad_err, "train_loss_rel_max": loss_err,
                           "eval_abs": eval_err, "steps": len(rec["losses"])}  # fmt: skip
        if report:
            (self.out / "comparison.json").write_text(json.dumps(report, indent=2))
            CONSOLE.print_json(json.dumps(report))
            bad = [t for t, r in report.items() if r["step0_rel"] > 1e-5 or r["grad_rel"] > 1e-4
                   or any(not math.isfinite(v) or v > 1e-3 for v in r["eval_abs"].values())]  # fmt: skip
            if bad:
                raise SystemExit(f"behaviour changed: {bad}")
            CONSOLE.print("[green]equivalent: step-0 losses and gradients, 30 steps and ns-eval agree")
        else:
            CONSOLE.print(f"[green]recorded to {self.out}")


if __name__ == "__main__":
    tyro.cli(CheckEquivalence).main()
