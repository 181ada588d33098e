#!/usr/bin/env python
"""Regenerate every number README shows, in one command (``make results``), and log what ran and how long.

Steps (each a subprocess; its command and wall time land in ``docs/results/RESULTS_LOG.md``):

1. the T-NeRF checkpoint the comparisons use: ``make demo``'s run (trained here when missing);
2. feed-forward versus per-scene comparisons (``scripts/compare_methods.py``) on NeRF-synthetic lego and mic at
   200x200 and on a generated scene never seen in training, rendered at 200x200; on the real captures (DTU scan24 at
   3 / 6 / 9 / 24 views, fox) from the shipped head at 60 / 180 / 600 s;
3. feed-forward quality against K on held-out scenes and in scene mode (``scripts/evaluate_source_views.py``);
4. the dynamic evaluation: held-out dynamic scenes, one ``tnerf-dynamic`` checkpoint trained with interpolation modes
   drawn at random, every mode scored at source poses and elsewhere (``scripts/evaluate_dynamic.py``);
5. the pre-trained vggt-small's held-out metrics and its T-NeRF ablation (``scripts/evaluate_vggt_small.py``,
   ``scripts/ablate_vggt_small.py``), photos without poses (``scripts/evaluate_posefree.py``) and Plan A against
   the tri-plane (``scripts/compare_representations.py``);
6. the speed benchmarks (``scripts/benchmark_all.py``, ``scripts/benchmark_render.py``, and the evaluation renders'
   chunk size, ``scripts/benchmark_eval_chunks.py``);
7. ``scripts/sync_readme.py`` copies the result files into README.md.

``--only`` runs a subset (e.g. ``--only compare-lego dynamic``); every step is skipped when ``--skip`` names it.
Re-runs are cheaper: the comparisons keep the per-scene baselines' rows made on as fast a machine
(``compare_methods.py --reuse-baselines``), and the dynamic checkpoint and its scenes are kept when the log shows the
same commands made them (``--retrain`` re-runs them), as the demo checkpoint is kept when present.
Nothing else may run on the machine meanwhile: the comparisons stop every method by wall-clock budget.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import tyro
from rich.console import Console

CONSOLE = Console(width=120)
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "nerf_synthetic"
CAPTURES = REPO.parent / "shared" / "data"


@dataclass
class MakeResults:
    """Run every evaluation and benchmark behind README's numbers."""

    work: Path = Path("results_output")
    """Scratch folder (generated data, training runs); not committed."""
    docs: Path = Path("docs/results")
    """Where the committed result files go."""
    tnerf_config: Path = Path("demo_output/runs/demo/tnerf/run/config.yml")
    """config.yml of the trained T-NeRF run the comparisons use (``make demo`` writes it; trained when missing)."""
    budgets: List[float] = field(default_factory=lambda: [60.0, 180.0])
    """Per-scene wall-clock budgets (seconds) of refinement and nerfacto."""
    eval_views: int = 16
    """Views per split for the feed-forward rows and the final budget (200x200 images)."""
    capture_budgets: List[float] = field(default_factory=lambda: [60.0, 180.0, 600.0])
    """Per-scene budgets (seconds) on the real captures (DTU scan24, fox)."""
    dynamic_scenes: int = 30
    """Dynamic scenes generated (a fifth held out: 6)."""
    dynamic_steps: int = 800
    """Training steps of the dynamic checkpoint."""
    only: List[str] = field(default_factory=list)
    """Run only these steps (names as in the log)."""
    skip: List[str] = field(default_factory=list)
    """Steps not to run."""
    note: str = ""
    """Recorded beside this run's steps in the log (e.g. that other jobs shared the machine)."""
    retrain: bool = False
    """Re-run the steps of ``kept_outputs`` even when --work holds what the same commands made before."""

    def steps(self) -> List[Tuple[str, List[str]]]:
        py, w, d = sys.executable, self.work, self.docs
        ckpt = str(self.tnerf_config.parent / "nerfstudio_models")
        budgets = [f"{b:g}" for b in self.budgets]
        compare = [py, "scripts/compare_methods.py", "--tnerf-checkpoint", ckpt, "--budgets", *budgets,
                   "--eval-views", str(self.eval_views)]  # fmt: skip
        dyn_data, dyn_scenes, dyn_runs = w / "dyn_grids", w / "dyn_scenes", w / "dyn_runs"
        return [
            ("demo", [py, "scripts/demo.py", "--publish"]),
            (
                "generated-scene",
                [
                    py,
                    "scripts/make_synthetic_scenes.py",
                    "--out",
                    str(w / "grids"),
                    "--num-scenes",
                    "1",
                    "--seed",
                    "2026",
                    "--max-res",
                    "64",
                ],
            ),  # fmt: skip
            (
                "render-generated-scene",
                [
                    py,
                    "scripts/render_scenes.py",
                    "--scenes",
                    str(w / "grids"),
                    "--out",
                    str(w / "scenes"),
                    "--views",
                    "128",
                    "--size",
                    "200x200",
                ],
            ),  # fmt: skip
            (
                "compare-lego",
                [*compare, "--data", str(SHARED / "lego"), "--scale", "0.5", "--out", str(d / "compare/lego")],
            ),
            (
                "compare-mic",
                [*compare, "--data", str(SHARED / "mic"), "--scale", "0.5", "--out", str(d / "compare/mic")],
            ),
            (
                "compare-generated",
                [
                    *compare,
                    "--data",
                    str(w / "scenes" / "synth_000000"),
                    "--scale",
                    "1.0",
                    "--out",
                    str(d / "compare/generated"),
                ],
            ),  # fmt: skip
            *self.capture_steps(),
            ("summarise-captures", [py, "scripts/summarise_captures.py", "--folder", str(d / "compare")]),
            ("capture-picture", [py, "scripts/capture_picture.py", "--out", str(d / "capture/fox-methods.jpg")]),
            (
                "glance",
                [py, "scripts/results_at_a_glance.py", "--compare", str(d / "compare"), "--out", str(d / "glance.md")],
            ),
            (
                "source-views",
                [
                    py,
                    "scripts/evaluate_source_views.py",
                    "--config",
                    str(self.tnerf_config),
                    "--label",
                    "frozen-pretrained",
                ],
            ),  # fmt: skip
            (
                "dynamic-scenes",
                [
                    py,
                    "scripts/make_synthetic_scenes.py",
                    "--out",
                    str(dyn_data),
                    "--num-scenes",
                    str(self.dynamic_scenes),
                    "--dynamic",
                    "--max-res",
                    "64",
                    "--seed",
                    "7",
                ],
            ),  # fmt: skip
            (
                "render-dynamic-scenes",
                [
                    py,
                    "scripts/render_scenes.py",
                    "--scenes",
                    str(dyn_data),
                    "--out",
                    str(dyn_scenes),
                    "--views",
                    "12",
                    "--size",
                    "64x64",
                ],
            ),  # fmt: skip
            (
                "train-dynamic",
                [
                    str(Path(py).parent / "ns-train"),
                    "tnerf-dynamic",
                    "--machine.device-type",
                    "cpu",
                    "--pipeline.model.backbone",
                    "vggt-small",
                    "--pipeline.model.interpolation-mode",
                    "random",
                    "--max-num-iterations",
                    str(self.dynamic_steps),
                    "--output-dir",
                    str(dyn_runs),
                    "--experiment-name",
                    "dyn",
                    "--timestamp",
                    "run",
                    "--steps-per-save",
                    "1000000",
                    "--steps-per-eval-image",
                    "1000000",
                    "--steps-per-eval-batch",
                    "1000000",
                    "--steps-per-eval-all-images",
                    "1000000",
                    "--vis",
                    "tensorboard",
                    "tnerf-scenes",
                    "--data",
                    str(dyn_scenes),
                ],
            ),  # fmt: skip
            (
                "dynamic",
                [
                    py,
                    "scripts/evaluate_dynamic.py",
                    "--load-config",
                    str(dyn_runs / "dyn" / "tnerf-dynamic" / "run" / "config.yml"),
                    "--out",
                    str(d / "dynamic"),
                ],
            ),  # fmt: skip
            (
                "vggt-small-scenes",
                [
                    py,
                    "scripts/make_synthetic_scenes.py",
                    "--out",
                    str(w / "vggt_grids"),
                    "--kind",
                    "mixed",
                    "--num-scenes",
                    "20",
                    "--held-out-fraction",
                    "0.8",
                    "--max-res",
                    "96",
                    "--seed",
                    "31",
                ],
            ),  # fmt: skip
            (
                "render-vggt-small-scenes",
                [
                    py,
                    "scripts/render_scenes.py",
                    "--scenes",
                    str(w / "vggt_grids"),
                    "--out",
                    str(w / "vggt_scenes"),
                    "--views",
                    "8",
                    "--sizes",
                    "140x140",
                    "112x140",
                    "98x140",
                    "140x112",
                    "--fov-range",
                    "30",
                    "90",
                    "--distance-scale",
                    "0.9",
                    "1.6",
                    "--target-jitter",
                    "0.12",
                    "--roll-deg",
                    "20",
                ],
            ),  # fmt: skip
            ("vggt-small-metrics", [py, "scripts/evaluate_vggt_small.py", "--data", str(w / "vggt_scenes")]),
            (
                "vggt-small-ablation",
                [
                    py,
                    "scripts/ablate_vggt_small.py",
                    "--out",
                    str(w / "vggt_ablation"),
                    "--num-scenes",
                    "8",
                    "--views",
                    "12",
                    "--size",
                    "64",
                    "--max-res",
                    "64",
                    "--iterations",
                    "200",
                    "--eval-views",
                    "4",
                    "--scene-images",
                    "2",
                ],
            ),  # fmt: skip
            (
                "posefree",
                [
                    py,
                    "scripts/evaluate_posefree.py",
                    "--label",
                    "vggt-small-synthetic",
                    "--weights",
                    "tnerf_ns/weights/vggt-small-synthetic.safetensors",
                    "--tnerf-config",
                    str(self.tnerf_config),
                    "--scenes",
                    str(w / "posefree_scenes"),
                ],
            ),  # fmt: skip
            (
                "plan-a",
                [py, "scripts/compare_representations.py", "--out", str(d / "plan_a"), "--work", str(w / "plan_a")],
            ),  # fmt: skip
            ("bench", [py, "scripts/benchmark_all.py", "--out", str(d / "benchmarks.md")]),
            ("bench-render", [py, "scripts/benchmark_render.py", "--out", str(d / "render_speed.md")]),
            ("bench-eval-chunks", [py, "scripts/benchmark_eval_chunks.py", "--out", str(d / "eval_chunks.md")]),
            ("sync-readme", [py, "scripts/sync_readme.py"]),
        ]

    def capture_steps(self) -> List[Tuple[str, List[str]]]:
        """Refinement against nerfacto on the real captures at 60 / 180 / 600 s (issue 29): DTU scan24 with its 3 / 6 / 9
        protocol inputs and the 24-view file, fox with all its train views at half resolution; T-NeRF from the shipped
        head, encoding the protocol's inputs (the 24-view file and fox: 8 of them, farthest-point)."""
        py, d = sys.executable, self.docs
        common = [py, "scripts/compare_methods.py", "--budgets", *[f"{b:g}" for b in self.capture_budgets],
                  "--eval-views", "8", "--intermediate-views", "4", "--occupancy-step", "0.015625"]  # fmt: skip
        dtu = [
            (f"compare-dtu-{n}views", CAPTURES / "dtu/scan24" / f"transforms_{n}views.json", 1.0, n) for n in (3, 9, 6)
        ]
        dtu.append(("compare-dtu-24views", CAPTURES / "dtu/scan24" / "transforms.json", 1.0, 8))
        fox = ("compare-fox", CAPTURES / "captures/fox", 0.5, 8)
        steps = []
        for name, data, scale, k in (dtu[0], fox, *dtu[1:]):
            out = d / "compare" / name.removeprefix("compare-")
            args = ["--data", data, "--scale", f"{scale:g}", "--source-views", k, "--refine-views", k, "--out", out]
            steps.append((name, [*common, *map(str, args)]))
        return steps

    def kept_outputs(self) -> Dict[str, Path]:
        """Steps whose output (in --work) a re-run keeps when the log shows the same command made it: the dynamic
        checkpoint (its last step's file: an interrupted run has none) and its scenes, the longest training here after
        the demo's (kept the same way)."""
        dyn = self.work / "dyn_runs" / "dyn" / "tnerf-dynamic" / "run"
        return {
            "dynamic-scenes": self.work / "dyn_grids",
            "render-dynamic-scenes": self.work / "dyn_scenes",
            "train-dynamic": dyn / "nerfstudio_models" / f"step-{self.dynamic_steps - 1:09d}.ckpt",
        }

    def is_kept(self, name: str, command: str) -> bool:
        """True when ``name``'s output exists and the log's command for it is ``command`` (unless --retrain)."""
        output, store = self.kept_outputs().get(name), REPO / self.docs / "RESULTS_LOG.json"
        if self.retrain or output is None or not (REPO / output).exists():
            return False
        if (REPO / output).is_dir() and not any((REPO / output).iterdir()):
            return False
        logged = json.loads(store.read_text()).get(name, {}) if store.is_file() else {}
        return logged.get("command") == command and not logged.get("failed", False)

    def wanted(self, name: str) -> bool:
        if name in self.skip:
            return False
        if name == "demo" and not self.only:
            return not (REPO / self.tnerf_config).is_file()  # train the checkpoint only when there is none
        return not self.only or name in self.only or name == "sync-readme"

    def main(self) -> None:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        (REPO / self.work).mkdir(parents=True, exist_ok=True)
        log: Dict[str, Tuple[str, float]] = {}
        total = time.perf_counter()
        for name, args in self.steps():
            if not self.wanted(name):
                continue
            if name == "render-generated-scene":
                shutil.rmtree(REPO / self.work / "scenes", ignore_errors=True)
            if name == "sync-readme":  # README includes the log: write it first, and leave this step out of it
                self.write_log(log, time.perf_counter() - total)
                if subprocess.run([str(a) for a in args], cwd=REPO, env=env, check=False).returncode != 0:
                    sys.exit("make results: copying the result files into README.md failed (scripts/sync_readme.py)")
                continue
            CONSOLE.rule(f"[bold]{name}")
            command = " ".join(str(a) for a in args).replace(sys.executable, "python")
            command = command.replace(f"{Path(sys.executable).parent}{os.sep}", "")  # ns-train from the venv
            if self.is_kept(name, command):
                CONSOLE.print(f"[green]kept: {self.kept_outputs()[name]} was made by this command (--retrain re-runs)")
                continue
            CONSOLE.print(command, soft_wrap=True)
            start = time.perf_counter()
            proc = subprocess.run([str(a) for a in args], cwd=REPO, env=env, check=False)
            log[name] = (command, time.perf_counter() - start)
            if proc.returncode != 0:
                self.write_log(log, time.perf_counter() - total, failed=name)
                sys.exit(
                    f"make results: step {name} failed (exit {proc.returncode}); log in {self.docs}/RESULTS_LOG.md"
                )
        if "sync-readme" in self.skip:
            self.write_log(log, time.perf_counter() - total)

    def write_log(self, log: Dict[str, Tuple[str, float]], total: float, failed: str = "") -> None:
        """RESULTS_LOG.json keeps every step's latest command and wall time (runs of a few steps update theirs);
        RESULTS_LOG.md tabulates it."""
        store = REPO / self.docs / "RESULTS_LOG.json"
        entries = json.loads(store.read_text()) if store.is_file() else {}
        entries.pop("sync-readme", None)  # not logged (see main)
        day = time.strftime("%Y-%m-%d")
        for name, (cmd, sec) in log.items():
            entries[name] = {"command": cmd, "seconds": round(sec, 1), "date": day, "failed": name == failed,
                             "note": self.note}  # fmt: skip
        order = [name for name, _ in self.steps()]
        entries = {k: entries[k] for k in sorted(entries, key=lambda k: order.index(k) if k in order else len(order))}
        store.write_text(json.dumps(entries, indent=2) + "\n")
        lines = ["## Results log", "", f"Machine: {os.cpu_count()} CPU threads, no GPU. Last run {day}: "
                 f"{total / 60:.1f} min" + (f", **stopped at {failed}**" if failed else "") + "; all steps: "
                 f"{sum(e['seconds'] for e in entries.values()) / 60:.0f} min.", "",
                 "| step | wall time | date | note | command |", "|---|---:|---|---|---|"]  # fmt: skip
        lines += [f"| {k} | {e['seconds'] / 60:.1f} min{' (failed)' if e['failed'] else ''} | {e['date']} | "
                  f"{e.get('note', '')} | `{e['command']}` |" for k, e in entries.items()]  # fmt: skip
        (REPO / self.docs / "RESULTS_LOG.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    tyro.cli(MakeResults).main()
