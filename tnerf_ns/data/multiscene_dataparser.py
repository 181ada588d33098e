"""``tnerf-scenes``: many rendered scenes as one nerfstudio dataset, split by scene.

Reads a folder written by ``scripts/render_scenes.py`` (one sub-folder per scene with ``transforms.json``, plus
``scenes.json``). Every scene is normalised into the same canonical box: its world box is centred at the origin and
scaled so that the longest side spans ``[-scene_scale, scene_scale]``, so a tri-plane over the scene box fits every
scene. Each camera carries its global scene index (``Cameras.metadata["scene_idx"]``, the scene's position in the full
scene list, the same in every split) and, for dynamic scenes, its
normalised time. Training scenes form the ``train`` split; held-out scenes form ``val`` and ``test``, so evaluation
measures generalisation to unseen scenes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Type

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox

from tnerf_ns.scenes.render_dataset import SCENES_FILE


class SceneDatasetError(ValueError):
    """A rendered scene folder is not usable; the message names the file and the problem."""


@dataclass
class SceneRecord:
    """One scene of a multi-scene dataset, in the canonical (normalised) frame."""

    scene_idx: int
    """Global index: the position of the scene in the dataset's full scene list (the same in every split)."""
    name: str
    folder: Path
    kind: str
    dynamic: bool
    centre: np.ndarray
    """World centre of the scene box (metres)."""
    world_to_unit: float
    """Normalised length per world metre."""
    grids: List[Dict]
    """Grid files with their times (``{"file": Path, "time": float | None}``)."""
    image_indices: List[int] = field(default_factory=list)
    """Indices of this scene's images within the split."""
    times: List[Optional[float]] = field(default_factory=list)
    """Time of each of those images (None for static scenes)."""
    views_per_time: int = 0

    def to_metadata(self) -> Dict:
        return {
            "scene_idx": self.scene_idx,
            "name": self.name,
            "folder": str(self.folder),
            "kind": self.kind,
            "dynamic": self.dynamic,
            "centre": self.centre.tolist(),
            "world_to_unit": self.world_to_unit,
            "grids": [{"file": str(g["file"]), "time": g["time"]} for g in self.grids],
            "image_indices": self.image_indices,
            "times": self.times,
            "views_per_time": self.views_per_time,
        }


def _read_json(path: Path) -> Dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise SceneDatasetError(f"{path}: file not found") from err
    except json.JSONDecodeError as err:
        raise SceneDatasetError(f"{path}: invalid JSON ({err})") from err


def _inside(folder: Path, relative: str, source: Path) -> Path:
    """Resolve a path from a dataset file, refusing anything that escapes the dataset folder."""
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise SceneDatasetError(f"{source}: path {relative!r} points outside the dataset folder {folder}")
    return path


def held_out_by_hash(names: List[str], fraction: float) -> List[str]:
    """Deterministic held-out choice when no list is given: the scenes with the smallest name hashes."""
    if fraction <= 0 or len(names) < 2:
        return []
    count = max(1, int(round(fraction * len(names))))
    ranked = sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    return sorted(ranked[:count])


@dataclass
class TNeRFScenesDataParserConfig(DataParserConfig):
    """Many rendered scenes, normalised into one canonical box and split by scene."""

    _target: Type = field(default_factory=lambda: TNeRFScenes)
    data: Path = Path("data/tnerf_scenes")
    """Folder written by scripts/render_scenes.py."""
    scene_scale: float = 1.0
    """Half side of the canonical box the longest side of every scene is scaled to."""
    held_out_fraction: float = 0.2
    """Fraction of scenes held out when scenes.json does not list them."""
    max_scenes: Optional[int] = None
    """Use only the first N scenes (sorted by name)."""
    alpha_color: Optional[Literal["white", "black"]] = "white"
    """Background the RGBA images are composited onto (None keeps RGBA)."""


@dataclass
class TNeRFScenes(DataParser):
    """Parser of multi-scene rendered datasets."""

    config: TNeRFScenesDataParserConfig

    def __init__(self, config: TNeRFScenesDataParserConfig) -> None:
        super().__init__(config)
        # nerfstudio reads includes_time before asking for outputs, so decide it from the files now
        root = Path(config.data)
        self.includes_time = False
        if root.is_dir():
            for name in self._scene_names(root)[0]:
                meta = root / name / "transforms.json"
                if meta.is_file() and _read_json(meta).get("tnerf", {}).get("dynamic", False):
                    self.includes_time = True
                    break

    def _scene_names(self, root: Path) -> tuple:
        index_file = root / SCENES_FILE
        if index_file.exists():
            index = _read_json(index_file)
            names = [str(n) for n in index.get("scenes", [])]
            held = [str(n) for n in index.get("held_out", [])]
        else:
            names = sorted(p.name for p in root.iterdir() if (p / "transforms.json").is_file())
            held = []
        if self.config.max_scenes is not None:
            names = names[: self.config.max_scenes]
            held = [h for h in held if h in names]
        if not names:
            raise SceneDatasetError(f"{root}: no rendered scenes (expected <scene>/transforms.json or {SCENES_FILE})")
        if not held:
            held = held_out_by_hash(names, self.config.held_out_fraction)
        if len(held) >= len(names) and len(names) > 1:
            raise SceneDatasetError(f"{index_file}: every scene is held out; nothing left to train on")
        return names, held

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        root = Path(self.config.data)
        if not root.is_dir():
            raise SceneDatasetError(f"{root}: dataset folder not found (render scenes with scripts/render_scenes.py)")
        names, held = self._scene_names(root)
        if split == "train":
            chosen = [n for n in names if n not in held] or names
        else:
            chosen = held or names  # a single-scene dataset evaluates on its own scene
        filenames: List[Path] = []
        depth_files: List[Optional[Path]] = []
        depth_scales: List[float] = []
        c2ws, intrinsics, scene_ids, times = [], [], [], []
        scenes: List[SceneRecord] = []
        any_dynamic = False
        for name in chosen:
            scene_id = names.index(name)
            folder = _inside(root, name, root / SCENES_FILE)
            meta_file = folder / "transforms.json"
            meta = _read_json(meta_file)
            info = meta.get("tnerf", {})
            try:
                box = np.asarray(info.get("world_box", meta.get("room_bbox")), dtype=np.float64).reshape(2, 3)
                frames = meta["frames"]
            except (KeyError, TypeError, ValueError) as err:
                raise SceneDatasetError(f"{meta_file}: missing or malformed camera fields ({err})") from err
            if (box[1] - box[0]).min() <= 0:
                raise SceneDatasetError(f"{meta_file}: empty scene box {box.tolist()}")
            if not isinstance(frames, list) or not frames:
                raise SceneDatasetError(f"{meta_file}: 'frames' must be a non-empty list")
            centre = box.mean(0)
            to_unit = 2.0 * self.config.scene_scale / float((box[1] - box[0]).max())
            dynamic = bool(info.get("dynamic", False))
            any_dynamic |= dynamic
            grids = [
                {"file": _inside(folder, g["file"], meta_file), "time": g.get("time")} for g in info.get("grids", [])
            ]
            record = SceneRecord(
                scene_idx=scene_id, name=name, folder=folder, kind=str(info.get("kind", "room")), dynamic=dynamic, centre=centre,
                world_to_unit=to_unit, grids=grids, views_per_time=int(info.get("views_per_time", len(frames))),
            )  # fmt: skip
            for frame in frames:
                try:
                    image = _inside(folder, str(frame["file_path"]), meta_file)
                    c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)[:3]
                except (KeyError, TypeError, ValueError) as err:
                    raise SceneDatasetError(f"{meta_file}: malformed frame {str(frame)[:80]} ({err!r})") from err
                try:  # nerfstudio's convention: a frame's own intrinsics (photos of several sizes) override the file's
                    camera = [float(frame.get(k, meta.get(k))) for k in ("fl_x", "fl_y", "cx", "cy")]
                    camera += [int(frame.get(k, meta.get(k))) for k in ("w", "h")]
                except (TypeError, ValueError, OverflowError) as err:
                    raise SceneDatasetError(f"{meta_file}: missing or malformed camera fields (fl_x, fl_y, cx, cy, w, h) "
                                            f"for {frame['file_path']} ({err})") from err  # fmt: skip
                if c2w.shape != (3, 4) or not np.isfinite(c2w).all():
                    raise SceneDatasetError(f"{meta_file}: bad transform_matrix for {frame['file_path']}")
                c2w = c2w.copy()
                c2w[:, 3] = (c2w[:, 3] - centre) * to_unit
                record.image_indices.append(len(filenames))
                record.times.append(frame.get("time") if dynamic else None)
                filenames.append(image)
                depth = frame.get("depth_file_path")
                depth_files.append(_inside(folder, depth, meta_file) if depth else None)
                depth_scales.append(to_unit)
                c2ws.append(c2w)
                intrinsics.append(tuple(camera))
                scene_ids.append(scene_id)
                times.append(float(frame.get("time", 0.0)) if dynamic else 0.0)
            scenes.append(record)

        intr = torch.tensor(intrinsics, dtype=torch.float32)
        cameras = Cameras(
            camera_to_worlds=torch.from_numpy(np.stack(c2ws)).float(),
            fx=intr[:, 0:1], fy=intr[:, 1:2], cx=intr[:, 2:3], cy=intr[:, 3:4],
            width=intr[:, 4:5].long(), height=intr[:, 5:6].long(),
            camera_type=CameraType.PERSPECTIVE,
            times=torch.tensor(times, dtype=torch.float32)[:, None] if any_dynamic else None,
            metadata={"scene_idx": torch.tensor(scene_ids, dtype=torch.long)[:, None]},
        )  # fmt: skip
        s = self.config.scene_scale
        alpha = {"white": torch.ones(3), "black": torch.zeros(3), None: None}[self.config.alpha_color]
        return DataparserOutputs(
            image_filenames=filenames,
            cameras=cameras,
            alpha_color=alpha,
            scene_box=SceneBox(aabb=torch.tensor([[-s, -s, -s], [s, s, s]], dtype=torch.float32)),
            metadata={
                "scenes": [r.to_metadata() for r in scenes],
                "depth_filenames": depth_files if all(d is not None for d in depth_files) else None,
                "depth_scales": depth_scales,
                "depth_unit_scale_factor": 1.0,
                "split": split,
            },
        )
