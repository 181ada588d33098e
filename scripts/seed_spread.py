#!/usr/bin/env python
"""The demo-size training repeated over seeds and thread counts: how much of a result is the method and how much the
run (issue 28, item 3).

    python scripts/seed_spread.py --seeds 42 43 44 --threads 2                 # mean and range over 3 seeds
    python scripts/seed_spread.py --seeds 42 --threads 1 2                     # the same seed on 1 and 2 threads
    python scripts/seed_spread.py --seeds 42 --threads 1 2 --tag thread-invariant \
        --train-args="--pipeline.thread-invariant-numerics True" --out docs/results/reproducibility/thread-invariant

Each (seed, threads) runs ``make demo``'s ``ns-train`` command (its data in ``--demo``, made by ``make demo``) with
``--machine.seed`` and ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, then ``scripts/evaluate_source_views.py`` (held-out
scenes, lego and mic in scene mode, K = 2 / 4 / 8) into ``--out/seed-<s>-threads-<t>.json``. Finished runs and
evaluations are kept: run the command again after an interruption and it goes on. ``--out/spread.md`` tabulates, per
data set and K, the mean and range (max - min) over the seeds at each thread count, and the largest difference
between thread counts at the same seed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import tyro
from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
CONSOLE = Console(width=120)


@dataclass
class SeedSpread:
    """Demo-size trainings over seeds and thread counts, evaluated alike."""

    seeds: List[int] = field(default_factory=lambda: [42, 43, 44])
    """--machine.seed values."""
    threads: List[int] = field(default_factory=lambda: [2])
    """Torch/OpenMP thread counts."""
    demo: Path = REPO / "demo_output"
    """``make demo``'s output folder (its scenes are the training data)."""
    iterations: int = 1200
    """Training steps (the demo's)."""
    rays_per_batch: int = 512
    """Target rays per step (the demo's)."""
    out: Path = REPO / "docs/results/reproducibility"
    """Results folder."""
    train_args: str = ""
    """More ``ns-train`` flags (before the data parser), one string: ``--train-args="--pipeline.thread-invariant-numerics
    True"``."""
    tag: str = ""
    """Name of this variant's runs folder under ``--demo``/spread (runs with other --train-args need their own)."""

    def train(self, seed: int, threads: int) -> Tuple[Path, float]:
        runs = self.demo / "spread" / self.tag  # no tag: the folder itself
        name = f"seed-{seed}-threads-{threads}"
        config = runs / name / "tnerf" / "run" / "config.yml"
        done = config.parent / "nerfstudio_models" / f"step-{self.iterations - 1:09d}.ckpt"
        if done.is_file():
            return config, float("nan")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        command = [str(Path(sys.executable).parent / "ns-train"), "tnerf", "--machine.device-type", "cpu",
                   "--machine.seed", str(seed), "--pipeline.model.backbone", "vggt-small", "--max-num-iterations",
                   str(self.iterations), "--output-dir", str(runs), "--experiment-name", name, "--timestamp", "run",
                   "--steps-per-save", "500", "--steps-per-eval-image", "500", "--steps-per-eval-batch", "250",
                   "--pipeline.datamanager.train-num-rays-per-batch", str(self.rays_per_batch), "--vis", "tensorboard",
                   *shlex.split(self.train_args), "tnerf-scenes", "--data", str(self.demo / "scenes")]  # fmt: skip
        CONSOLE.rule(f"[bold]train {name}")
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=env, check=True)
        return config, time.perf_counter() - start

    def main(self) -> None:
        if not (self.demo / "scenes").is_dir():
            raise SystemExit(f"{self.demo / 'scenes'}: no demo data; run `make demo` first")
        self.out.mkdir(parents=True, exist_ok=True)
        for seed in self.seeds:
            for threads in self.threads:
                label = f"seed-{seed}-threads-{threads}"
                if (self.out / f"{label}.json").is_file():
                    continue
                config, seconds = self.train(seed, threads)
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                subprocess.run([sys.executable, "scripts/evaluate_source_views.py", "--config", str(config), "--label",
                                label, "--out", str(self.out)], cwd=REPO, env=env, check=True)  # fmt: skip
                result = json.loads((self.out / f"{label}.json").read_text())
                result["train_seconds"] = seconds
                (self.out / f"{label}.json").write_text(json.dumps(result, indent=2))
        write_spread(self.out)


def write_spread(folder: Path) -> None:
    """``spread.md`` from every ``seed-<s>-threads-<t>.json`` of the folder."""
    psnr: Dict[Tuple[str, str], Dict[Tuple[int, int], float]] = defaultdict(dict)
    for path in folder.glob("seed-*-threads-*.json"):
        _, seed, _, threads = path.stem.split("-")
        for data, rows in json.loads(path.read_text()).items():
            if isinstance(rows, dict):
                for k, r in rows.items():
                    psnr[(data, k)][(int(seed), int(threads))] = r["psnr"]
    thread_counts = sorted({t for values in psnr.values() for _, t in values})
    lines = [
        "| data | K | "
        + " | ".join(f"{t} thread(s): mean / range over seeds (n)" for t in thread_counts)
        + " | largest 1-vs-2-thread difference, same seed |",
        "|---|---:|" + "---:|" * (len(thread_counts) + 1),
    ]
    for (data, k), values in sorted(psnr.items()):
        cells = []
        for t in thread_counts:
            at = [v for (s, tt), v in values.items() if tt == t]
            cells.append(f"{sum(at) / len(at):.2f} / {max(at) - min(at):.2f} ({len(at)})" if at else "-")
        pairs = [abs(values[(s, 1)] - values[(s, 2)]) for s, t in values if t == 1 and (s, 2) in values]
        name = "held-out scenes" if data == "held_out" else f"{data} (scene mode)"
        lines.append(f"| {name} | {k[2:]} | " + " | ".join(cells) + f" | {max(pairs):.2f} |" if pairs else
                     f"| {name} | {k[2:]} | " + " | ".join(cells) + " | - |")  # fmt: skip
    (folder / "spread.md").write_text("\n".join(lines) + "\n")
    CONSOLE.print("\n".join(lines))


if __name__ == "__main__":
    tyro.cli(SeedSpread).main()
