"""Rendered scenes as VGGT pre-training samples: images, z-depth and cameras held in memory, batches of 2-8 views.

A rendered dataset is ``scripts/render_scenes.py``'s output (``scenes.json`` + one nerfstudio folder per scene). A
batch shares its view count and image size (VGGT's batches do); its scenes, views and first camera are random.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from tnerf_ns.geometry import opengl_c2w_to_opencv_w2c


class PretrainDataError(ValueError):
    """A rendered dataset could not be read; the message names the file."""


@dataclass
class RenderedScene:
    """One scene's views: images [V, 3, H, W] uint8 (on white), depth [V, H, W] fp16, OpenCV camera-from-world
    extrinsics [V, 3, 4] and pixel intrinsics [3, 3]."""

    name: str
    kind: str
    images: Tensor
    depth: Tensor
    extrinsics: Tensor
    intrinsics: Tensor

    @property
    def size(self) -> Tuple[int, int]:
        return tuple(self.images.shape[-2:])


def load_rendered_scene(folder: Path) -> RenderedScene:
    """Read one rendered scene folder (straight-alpha RGBA composited on white; depth 0 = no surface)."""
    meta_path = folder / "transforms.json"
    try:
        meta = json.loads(meta_path.read_text())
        frames = meta["frames"]
        intr = torch.tensor([[meta["fl_x"], 0, meta["cx"]], [0, meta["fl_y"], meta["cy"]], [0, 0, 1]])
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise PretrainDataError(f"{meta_path}: not a rendered scene ({err})") from err
    images, depths, c2w = [], [], []
    for frame in frames:
        rgba = np.asarray(Image.open(folder / frame["file_path"]).convert("RGBA"), dtype=np.float32) / 255.0
        rgb = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
        images.append(torch.from_numpy(np.round(rgb * 255).astype(np.uint8)).permute(2, 0, 1))
        depth_path = folder / frame["depth_file_path"]
        depth = np.load(depth_path)
        if depth.shape != rgba.shape[:2]:
            raise PretrainDataError(f"{depth_path}: depth {depth.shape} does not match its image {rgba.shape[:2]}")
        depths.append(torch.from_numpy(depth.astype(np.float16)))
        c2w.append(torch.tensor(frame["transform_matrix"], dtype=torch.float32)[:3])
    return RenderedScene(
        name=folder.name,
        kind=str(meta.get("tnerf", {}).get("kind", "room")),
        images=torch.stack(images),
        depth=torch.stack(depths),
        extrinsics=opengl_c2w_to_opencv_w2c(torch.stack(c2w)),
        intrinsics=intr.float(),
    )


def load_split(root: Path, held_out: bool, limit: Optional[int] = None) -> List[RenderedScene]:
    """The training (``held_out=False``) or held-out scenes of a rendered dataset."""
    index_path = Path(root) / "scenes.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PretrainDataError(f"{index_path}: no readable scene index ({err}); render with render_scenes.py") from err
    held = set(index.get("held_out", []))
    names = [n for n in index["scenes"] if (n in held) == held_out][:limit]
    if not names:
        raise PretrainDataError(f"{index_path}: no {'held-out' if held_out else 'training'} scenes")
    return [load_rendered_scene(Path(root) / n) for n in names]


def collate(scenes: Sequence[RenderedScene], views: Sequence[Sequence[int]]) -> Dict[str, Float[Tensor, "..."]]:
    """Stack chosen views of same-size scenes: ``images`` [b, s, 3, H, W] in [0, 1], ``depth`` [b, s, H, W] (world
    units), ``extrinsics`` [b, s, 3, 4], ``intrinsics`` [b, s, 3, 3], ``mask`` (depth > 0)."""
    idx = [torch.as_tensor(list(v)) for v in views]
    depth = torch.stack([sc.depth[i].float() for sc, i in zip(scenes, idx)])
    return {
        "images": torch.stack([sc.images[i].float() / 255.0 for sc, i in zip(scenes, idx)]),
        "depth": depth,
        "mask": depth > 0,
        "extrinsics": torch.stack([sc.extrinsics[i] for sc, i in zip(scenes, idx)]),
        "intrinsics": torch.stack([sc.intrinsics.expand(len(i), 3, 3) for sc, i in zip(scenes, idx)]),
    }


class BatchSampler:
    """Random batches: an image size (weighted by its scene count), a view count in [min, max] and as many scenes
    as fit ``max_frames`` (at least one)."""

    def __init__(
        self, scenes: Sequence[RenderedScene], min_views: int = 2, max_views: int = 8, max_frames: int = 8
    ) -> None:
        self.scenes = list(scenes)
        self.groups: Dict[Tuple[int, int], List[int]] = {}
        for i, sc in enumerate(self.scenes):
            self.groups.setdefault(sc.size, []).append(i)
        self.sizes = sorted(self.groups)
        self.min_views, self.max_views, self.max_frames = min_views, max_views, max_frames
        available = min(len(sc.images) for sc in self.scenes)
        if available < min_views:
            raise PretrainDataError(f"scenes have {available} views, fewer than min_views={min_views}")
        self.max_views = min(max_views, available)

    def sample(self, generator: torch.Generator) -> Dict[str, Tensor]:
        counts = torch.tensor([len(self.groups[s]) for s in self.sizes], dtype=torch.float)
        group = self.groups[self.sizes[int(torch.multinomial(counts, 1, generator=generator))]]
        s = int(torch.randint(self.min_views, self.max_views + 1, (1,), generator=generator))
        b = max(1, self.max_frames // s)
        picks = torch.randint(len(group), (b,), generator=generator).tolist()
        scenes = [self.scenes[group[i]] for i in picks]
        views = [torch.randperm(len(sc.images), generator=generator)[:s].tolist() for sc in scenes]
        return collate(scenes, views)


def fixed_samples(
    scenes: Sequence[RenderedScene], views: int = 4, per_scene: int = 1, seed: int = 0
) -> List[Dict[str, Tensor]]:
    """Deterministic single-scene samples (validation and evaluation): ``per_scene`` view subsets of each scene."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for sc in scenes:
        for _ in range(per_scene):
            out.append(collate([sc], [torch.randperm(len(sc.images), generator=generator)[:views].tolist()]))
    return out
