#!/usr/bin/env python
"""Render NeRF-MAE grids (real or synthetic) into nerfstudio / Blender-format datasets, one folder per scene.

    python scripts/render_scenes.py --scenes data/synth --out data/synth_rendered --views 24 --size 128x128
    # varied cameras (backbone pre-training data): per-scene field of view and aspect ratio, per-view distance,
    # roll and off-centre look-at points
    python scripts/render_scenes.py --scenes data/mixed --out data/mixed_rendered --views 12 \
        --sizes 140x140 112x140 98x140 140x112 --fov-range 30 90 --distance-scale 0.9 1.6 --target-jitter 0.12 \
        --roll-deg 20

Interrupted runs leave no half-written scene (folders are renamed into place when complete) and resume: finished
scenes rendered with the same settings are kept. ``OUT/scenes.json`` lists the scenes and the held-out ones (from
``nerfmae_split.npz``'s test split when present). Any nerfstudio method can train on one scene folder, e.g.
``ns-train nerfacto nerfstudio-data --data OUT/synth_000000 --orientation-method none --center-method none
--auto-scale-poses False``.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tnerf_ns.scenes.nerfmae import SceneFormatError, index_dataset
from tnerf_ns.scenes.render_dataset import RenderSettings, group_scenes, render_scene_folder, write_scenes_index

CONSOLE = Console()


def parse_size(size: str) -> tuple:
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError as err:
        raise ValueError(f"--size must look like HxW (e.g. 128x128), got {size!r}") from err
    if h < 1 or w < 1:
        raise ValueError(f"--size must be positive, got {size!r}")
    return h, w


@dataclass
class RenderScenes:
    """Render scene grids into per-scene datasets."""

    scenes: Path
    """NeRF-MAE dataset folder (``features/*.npz``, optional ``nerfmae_split.npz``)."""
    out: Path
    """Output folder (one sub-folder per scene)."""
    views: int = 24
    """Views per scene (per time state for dynamic scenes)."""
    size: str = "128x128"
    """Image size HxW."""
    seed: int = 0
    """Seed of the camera placement."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Torch device of the renderer."""
    limit: Optional[int] = None
    """Render only the first N scenes."""
    sizes: List[str] = dataclasses.field(default_factory=list)
    """Per-scene image sizes HxW to draw from (several aspect ratios); empty: ``--size``."""
    fov_range: Optional[Tuple[float, float]] = None
    """Per-scene horizontal field of view range in degrees (objects and rooms); default: 45 (objects), 75 (rooms)."""
    distance_scale: Tuple[float, float] = (1.0, 1.0)
    """Per-view factor range on the object orbit radius."""
    target_jitter: float = 0.0
    """Per-view look-at offset, relative to the orbit radius (objects) or the room's half extent (rooms)."""
    roll_deg: float = 0.0
    """Per-view camera roll, uniform in [-roll_deg, roll_deg]."""

    def main(self) -> None:
        height, width = parse_size(self.size)
        if self.fov_range is not None and not 0 < self.fov_range[0] <= self.fov_range[1] < 180:
            raise ValueError(f"--fov-range must satisfy 0 < min <= max < 180, got {self.fov_range}")
        settings = RenderSettings(
            views=self.views, height=height, width=width, seed=self.seed, fov_range_deg=self.fov_range,
            sizes=tuple(parse_size(s) for s in self.sizes), distance_scale=tuple(self.distance_scale),
            target_jitter=self.target_jitter, roll_deg=self.roll_deg,
        )  # fmt: skip
        index = index_dataset(self.scenes)
        groups = group_scenes(index)
        if self.limit is not None:
            groups = dict(list(groups.items())[: self.limit])
        if not groups:
            raise SceneFormatError(f"{self.scenes}: no valid scenes to render")
        held_files = set(index.split.get("test", []))
        held = [g for g, paths in groups.items() if any(p.stem in held_files for p in paths)]
        self.out.mkdir(parents=True, exist_ok=True)
        total = sum(len(p) for p in groups.values()) * self.views
        counts = {"rendered": 0, "kept": 0, "re-rendered": 0}
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=CONSOLE
        ) as bar:
            task = bar.add_task("rendering views", total=total)
            for name, paths in groups.items():
                bar.update(task, description=f"rendering {name}")
                status = render_scene_folder(
                    paths, self.out / name, settings, self.device, progress=lambda: bar.advance(task)
                )
                if status == "kept":
                    bar.advance(task, len(paths) * self.views)
                counts[status] += 1
        write_scenes_index(self.out, list(groups), held)
        CONSOLE.print(
            f"[green]{len(groups)} scenes in {self.out}[/green] ({counts['rendered']} rendered, {counts['kept']} kept, "
            f"{counts['re-rendered']} re-rendered; {len(held)} held out)"
        )


if __name__ == "__main__":
    try:
        tyro.cli(RenderScenes).main()
    except (ValueError, SceneFormatError) as err:
        CONSOLE.print(f"[red]error: {err}", soft_wrap=True)
        sys.exit(2)
