#!/usr/bin/env python
"""Render NeRF-MAE grids (real or synthetic) into nerfstudio / Blender-format datasets, one folder per scene.

    python scripts/render_scenes.py --scenes data/synth --out data/synth_rendered --views 24 --size 128x128

Interrupted runs leave no half-written scene (folders are renamed into place when complete) and resume: finished
scenes rendered with the same settings are kept. ``OUT/scenes.json`` lists the scenes and the held-out ones (from
``nerfmae_split.npz``'s test split when present). Any nerfstudio method can train on one scene folder, e.g.
``ns-train nerfacto nerfstudio-data --data OUT/synth_000000 --orientation-method none --center-method none
--auto-scale-poses False``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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

    def main(self) -> None:
        height, width = parse_size(self.size)
        settings = RenderSettings(views=self.views, height=height, width=width, seed=self.seed)
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
