#!/usr/bin/env python
"""Write synthetic scenes in exactly the NeRF-MAE pre-training format.

    python scripts/make_synthetic_scenes.py --out data/synth --num-scenes 20 --seed 0 --kind object
    python scripts/make_synthetic_scenes.py --out data/rooms --num-scenes 5 --kind room --max-res 160
    python scripts/make_synthetic_scenes.py --out data/dyn --num-scenes 6 --dynamic
    python scripts/make_synthetic_scenes.py --out data/mixed --num-scenes 200 --kind mixed --max-res 96
    python scripts/make_synthetic_scenes.py --out data/tables --num-scenes 40 --kind tabletop-mixed --max-res 64

Layout: ``OUT/features/<scene>.npz`` and ``OUT/nerfmae_split.npz`` (train/val/test scene names; val = test = the
held-out scenes). Dynamic scenes write one grid per time (``<scene>_t000.npz`` ... ``_t100.npz``), each carrying
``time`` and ``scene_group``. Existing scenes with the same settings are kept (the run resumes).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Literal

import numpy as np
import tyro
from rich.console import Console
from rich.progress import track

from tnerf_ns.scenes.nerfmae import save_scene
from tnerf_ns.scenes.synthetic import generate_scene, scene_statistics

CONSOLE = Console()


MIXES = {"mixed": ("object", "room"), "tabletop-mixed": ("object", "tabletop")}
"""Kinds that alternate two scene kinds by index."""


@dataclass
class MakeSyntheticScenes:
    """Generate NeRF-MAE-format synthetic scenes."""

    out: Path
    """Output dataset folder."""
    num_scenes: int = 10
    """Number of scenes."""
    seed: int = 0
    """Random seed (the output is deterministic for a seed)."""
    kind: Literal["object", "tabletop", "room", "mixed", "tabletop-mixed"] = "object"
    """Object-centric scenes (like the Blender set), objects on a table before a backdrop (like a capture of an
    object), rooms (like the indoor pre-training data), mixed (objects at even indices, rooms at odd ones; e.g.
    backbone pre-training data) or tabletop-mixed (objects at even indices, tabletops at odd ones; the shipped
    head's training data)."""
    dynamic: bool = False
    """Move objects between t0 and t1 and write the scene at several times."""
    times: List[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    """Normalised times written for dynamic scenes (must include 0 and 1)."""
    max_res: int = 160
    """Grid size of the longest axis (NeRF-MAE uses 160)."""
    held_out_fraction: float = 0.2
    """Fraction of scenes (the last ones) held out as val/test."""

    def main(self) -> None:
        if self.num_scenes < 1:
            raise ValueError("--num-scenes must be >= 1")
        if self.dynamic and (min(self.times) != 0.0 or max(self.times) != 1.0):
            raise ValueError("--times must include 0 and 1 for dynamic scenes")
        features = self.out / "features"
        features.mkdir(parents=True, exist_ok=True)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k != "out"}
        settings_file = self.out / "generator.json"
        if settings_file.exists() and json.loads(settings_file.read_text()) != settings:
            CONSOLE.print(f"[yellow]{settings_file}: settings changed; regenerating every scene")
            for old in features.glob("synth_*.npz"):
                old.unlink()
        settings_file.write_text(json.dumps(settings, indent=2))

        groups: List[str] = []
        stats = []
        for index in track(range(self.num_scenes), description="generating scenes", console=CONSOLE):
            name = f"synth_{index:06d}"
            groups.append(name)
            expected = (
                [features / f"{name}.npz"]
                if not self.dynamic
                else [features / f"{name}_t{round(t * 100):03d}.npz" for t in self.times]
            )
            if all(p.exists() for p in expected):
                continue
            kind = MIXES[self.kind][index % 2] if self.kind in MIXES else self.kind
            for scene in generate_scene(self.seed, index, kind, self.dynamic, self.max_res, self.times):
                save_scene(features / f"{scene.name}.npz", scene)
                stats.append(scene_statistics(scene))

        n_held = int(round(self.held_out_fraction * self.num_scenes)) if self.num_scenes > 1 else 0
        train_groups, held_groups = groups[: len(groups) - n_held], groups[len(groups) - n_held :]

        def stems(gs: List[str]) -> np.ndarray:
            if not self.dynamic:
                return np.array(gs)
            return np.array([f"{g}_t{round(t * 100):03d}" for g in gs for t in self.times])

        np.savez(
            self.out / "nerfmae_split.npz",
            train_scenes=stems(train_groups),
            val_scenes=stems(held_groups),
            test_scenes=stems(held_groups),
        )
        if stats:
            occ = np.mean([s["occupied_fraction"] for s in stats])
            culled = np.mean([s["culled_fraction"] for s in stats])
            CONSOLE.print(f"mean occupied (alpha > 0.01): {occ:.1%}, culled: {culled:.1%}")
        CONSOLE.print(
            f"[green]{self.num_scenes} {'dynamic ' if self.dynamic else ''}{self.kind} scenes in {features} "
            f"({len(train_groups)} train, {len(held_groups)} held out)"
        )


if __name__ == "__main__":
    try:
        tyro.cli(MakeSyntheticScenes).main()
    except ValueError as err:
        CONSOLE.print(f"[red]error: {err}", soft_wrap=True)
        sys.exit(2)
