#!/usr/bin/env python
"""Where does a training step start to differ between torch thread counts? (issue 28, item 3)

    python scripts/thread_determinism.py --load-config demo_output/runs/demo/tnerf/run/config.yml
    python scripts/thread_determinism.py --load-config <run>/config.yml --no-onednn   # the next culprit

Runs one training step (``pipeline.get_train_loss_dict`` and the backward pass) of a saved run once per thread count,
in one process, recording a hash of every ATen op's output (``TorchDispatchMode``), and prints the first ops whose
outputs differ and how many parameter gradients differ. Ops that only allocate (``empty``) are skipped: their
contents are whatever the memory held. Writes the report to ``--out`` (JSON) when given.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import tyro
from rich.console import Console
from torch.utils._python_dispatch import TorchDispatchMode

CONSOLE = Console(width=120)


class OpLog(TorchDispatchMode):
    """Every op's name, output shapes and a hash of its floating-point outputs, in call order."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: List[Tuple[str, str, List[tuple]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else [out]
        digest = hashlib.blake2b(digest_size=8)
        for o in outs:
            if isinstance(o, torch.Tensor) and o.dtype.is_floating_point:
                digest.update(o.detach().contiguous().cpu().numpy().tobytes())
        shapes = [tuple(o.shape) for o in outs if isinstance(o, torch.Tensor)]
        self.rows.append((str(func), digest.hexdigest(), shapes))
        return out


@dataclass
class ThreadDeterminism:
    """Compare one training step across torch thread counts, op by op."""

    load_config: Path
    """A training run's config.yml."""
    threads: List[int] = field(default_factory=lambda: [1, 2])
    """Thread counts to compare (the first is the reference)."""
    step: int = 5
    """Training step whose batch is used."""
    no_onednn: bool = False
    """Switch oneDNN off (PyTorch's own convolutions) to see what differs next."""
    show: int = 12
    """Differing ops to print."""
    out: Optional[Path] = None
    """JSON report."""

    def one_step(self, pipeline, threads: int):
        torch.set_num_threads(threads)
        log = OpLog()
        with log:
            _, loss_dict, _ = pipeline.get_train_loss_dict(self.step)
            sum(loss_dict.values()).backward()
        grads = {n: p.grad.detach().clone() for n, p in pipeline.named_parameters() if p.grad is not None}
        for p in pipeline.parameters():
            p.grad = None
        return log.rows, grads

    def main(self) -> dict:
        from nerfstudio.utils.eval_utils import eval_setup

        if self.no_onednn:
            torch.backends.mkldnn.enabled = False
        _, pipeline, _, _ = eval_setup(self.load_config, test_mode="val")
        pipeline.train()
        self.one_step(pipeline, self.threads[0])  # warm-up: the first step loads and caches the scene
        reference, ref_grads = self.one_step(pipeline, self.threads[0])
        report = {"config": str(self.load_config), "step": self.step, "onednn": not self.no_onednn, "runs": []}
        for threads in self.threads[1:]:
            rows, grads = self.one_step(pipeline, threads)
            differing = [
                {"index": i, "op": a[0], "shapes": [list(s) for s in a[2]]}
                for i, (a, b) in enumerate(zip(reference, rows))
                if a[1] != b[1] and "empty" not in a[0]
            ]
            grad_diff = {n: float((ref_grads[n] - grads[n]).abs().max()) for n in ref_grads if n in grads}
            run = {
                "threads": [self.threads[0], threads],
                "ops": len(rows),
                "same_op_sequence": [r[0] for r in reference] == [r[0] for r in rows],
                "differing_ops": len(differing),
                "first_differing": differing[: self.show],
                "gradients_differing": sum(v > 0 for v in grad_diff.values()),
                "gradients": len(grad_diff),
                "largest_gradient_difference": max(grad_diff.values(), default=0.0),
            }
            report["runs"].append(run)
            CONSOLE.print(
                f"threads {self.threads[0]} vs {threads} (oneDNN {'on' if not self.no_onednn else 'off'}): "
                f"{run['differing_ops']} of {run['ops']} ops differ; {run['gradients_differing']} of {run['gradients']} "
                f"gradients differ (largest {run['largest_gradient_difference']:.3g})"
            )
            for d in run["first_differing"]:
                CONSOLE.print(f"  op {d['index']:5d}  {d['op']}  {d['shapes']}")
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps(report, indent=2))
        return report


if __name__ == "__main__":
    tyro.cli(ThreadDeterminism).main()
