"""Render scene grids into nerfstudio / Blender-format datasets (images, depth, cameras), atomically and resumably.

Per scene (a static grid, or the time states of a dynamic scene) the output folder holds::

    images/<frame>.png       RGBA (straight alpha: opacity of the grid along the ray)
    depth/<frame>.npy        z-depth in world metres, 0 where the ray hits nothing
    grids/<state>.npz        copies of the source NeRF-MAE grids (ground truth for 3-D losses)
    transforms.json          nerfstudio format (intrinsics, camera-to-world OpenGL, per-frame time and depth)
    transforms_{train,val,test}.json   Blender format (camera_angle_x), every 8th view held out

The folder appears under its final name only once complete; a finished scene with the same settings is skipped, one
with other settings is re-rendered.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from tnerf_ns.scenes.camera_rigs import PinholeIntrinsics, RigVariation, orbit_poses, room_poses
from tnerf_ns.scenes.grid_renderer import GridVolume, numpy_image, render_view
from tnerf_ns.scenes.nerfmae import NerfMAEScene, SceneIndex, load_scene
from tnerf_ns.scenes.synthetic import OBJECT_KINDS

FORMAT_VERSION = 1
SCENES_FILE = "scenes.json"
"""Root-level index of a rendered dataset: scene folders and the train / held-out split."""
VARIATION_FIELDS = ("fov_range_deg", "sizes", "distance_scale", "target_jitter", "roll_deg")
"""Settings that vary the rigs (pre-training data); left out of a render's record while at their defaults."""


@dataclass
class RenderSettings:
    """How a scene is rendered (a finished scene is reused only when these match)."""

    views: int = 24
    """Camera views per time state."""
    height: int = 128
    width: int = 128
    fov_object_deg: float = 45.0
    """Horizontal field of view for object scenes."""
    fov_room_deg: float = 75.0
    """Horizontal field of view for room scenes."""
    orbit_radius: float = 1.15
    """Orbit radius of object scenes, relative to the distance at which the objects' bounding sphere fills the view."""
    step_voxels: float = 0.5
    """Ray-marching step, in voxels."""
    seed: int = 0
    """Seed of the camera placement."""
    test_every: int = 8
    """Every n-th view goes to the Blender val/test files."""
    # Variation for backbone pre-training data (defaults: off, the fixed rigs above).
    fov_range_deg: Optional[Tuple[float, float]] = None
    """Per-scene horizontal field of view drawn uniformly from this range (objects and rooms); None: the fixed ones."""
    sizes: Tuple[Tuple[int, int], ...] = ()
    """Per-scene image size (H, W) drawn from these (several aspect ratios); empty: ``height`` x ``width``."""
    distance_scale: Tuple[float, float] = (1.0, 1.0)
    """Per-view factor on the object orbit radius."""
    target_jitter: float = 0.0
    """Per-view look-at offset (relative to the orbit radius, or the room's half extent)."""
    roll_deg: float = 0.0
    """Per-view roll, uniform in [-roll_deg, roll_deg]."""

    @property
    def variation(self) -> RigVariation:
        return RigVariation(tuple(self.distance_scale), self.target_jitter, self.roll_deg)

    def record(self) -> dict:
        """The settings that identify a render (variation fields at their defaults are left out, so scenes rendered
        before they existed are still recognised)."""
        defaults = RenderSettings()
        record = asdict(self)
        for name in VARIATION_FIELDS:
            if getattr(self, name) == getattr(defaults, name):
                record.pop(name)
        return json.loads(json.dumps(record))  # tuples as lists, as read back from transforms.json


def recorded_world_box(folder: Path) -> Optional[np.ndarray]:
    """The [2, 3] world box (min, max corners) a folder written here records in ``transforms.json`` under ``tnerf``;
    None for other folders (NeRF-synthetic, photos), which do not record one."""
    meta_file = Path(folder) / "transforms.json"
    if not meta_file.is_file():
        return None
    box = json.loads(meta_file.read_text()).get("tnerf", {}).get("world_box")
    return None if box is None else np.asarray(box, dtype=np.float64).reshape(2, 3)


def scene_kind(scene: NerfMAEScene) -> str:
    """``object``, ``tabletop`` or ``room`` (real NeRF-MAE scenes are rooms)."""
    return str(scene.extras.get("scene_kind", "room"))


def group_scenes(index: SceneIndex) -> Dict[str, List[Path]]:
    """Scene files grouped into scenes: a dynamic scene's time states share ``scene_group``; sorted by time."""
    groups: Dict[str, List[tuple]] = {}
    for name, path in index.paths.items():
        with np.load(path, allow_pickle=False) as npz:
            group = str(npz["scene_group"]) if "scene_group" in npz.files else name
            time = float(npz["time"]) if "time" in npz.files else 0.0
        groups.setdefault(group, []).append((time, path))
    return {g: [p for _, p in sorted(items)] for g, items in sorted(groups.items())}


def cameras_for(scene: NerfMAEScene, settings: RenderSettings, seed: int) -> tuple:
    """OpenGL camera-to-world poses [views, 3, 4] and the scene's intrinsics."""
    box = scene.world_box
    rng = np.random.default_rng([seed, 2])  # per-scene field of view and size (unused by the fixed rigs)
    height, width = settings.height, settings.width
    if settings.sizes:
        height, width = settings.sizes[int(rng.integers(len(settings.sizes)))]
    fov_object, fov_room = settings.fov_object_deg, settings.fov_room_deg
    if settings.fov_range_deg is not None:
        fov_object = fov_room = float(rng.uniform(*settings.fov_range_deg))
    variation = settings.variation
    if scene_kind(scene) in OBJECT_KINDS:
        # frame the matter, not the box: aim at the occupied voxels' centroid, back off to fit their bounding sphere
        if "subject_box" in scene.extras:  # tabletop: the things on the table, not the table
            subject = np.asarray(scene.extras["subject_box"], np.float64)
            target, r_obj = subject.mean(0), max(float(np.linalg.norm(subject[1] - subject[0])) / 2, 1e-3)
        else:
            occupied = np.argwhere(scene.opacity > 0.01)
            pts = box[0] + occupied * scene.pitch if len(occupied) else box.mean(0, keepdims=True)
            target = pts.mean(0)
            r_obj = max(float(np.linalg.norm(pts - target, axis=-1).max()), 1e-3)
        radius = settings.orbit_radius * r_obj / math.sin(math.radians(fov_object) / 2)
        poses = orbit_poses(settings.views, target, radius, (5.0, 65.0), seed=seed, variation=variation)
        intr = PinholeIntrinsics.from_fov(height, width, fov_object)
    else:
        volume = GridVolume.from_scene(scene)
        offsets = torch.stack(torch.meshgrid(*[torch.linspace(-0.35, 0.35, 3)] * 3, indexing="ij"), -1).reshape(-1, 3)

        def is_free(eye: np.ndarray) -> bool:  # no solid matter within ~35 cm of the camera
            _, sigma = volume.sample(torch.from_numpy(eye).float() + offsets)
            return bool((sigma * volume.scale * volume.pitch < 0.01).all())

        poses = room_poses(settings.views, box, seed=seed, is_free=is_free, variation=variation)
        intr = PinholeIntrinsics.from_fov(height, width, fov_room)
    return poses, intr


def _frame_dict(file_path: str, c2w: np.ndarray, time: Optional[float], depth_path: str) -> dict:
    frame = {
        "file_path": file_path,
        "depth_file_path": depth_path,
        "transform_matrix": np.vstack([c2w, [0, 0, 0, 1]]).tolist(),
    }
    if time is not None:
        frame["time"] = time
    return frame


def render_scene_folder(
    grid_paths: Sequence[Path],
    out_dir: Path,
    settings: RenderSettings,
    device: torch.device | str = "cpu",
    progress=None,
) -> str:
    """Render one scene (all its time states) into ``out_dir``; returns "rendered", "kept" or "re-rendered"."""
    out_dir = Path(out_dir)
    record = {
        "format": FORMAT_VERSION,
        "settings": settings.record(),
        # what produced the scene: settings and the exact grid files (a regenerated grid makes the scene stale)
        "grids": [[str(Path(p).resolve()), Path(p).stat().st_size, Path(p).stat().st_mtime_ns] for p in grid_paths],
    }
    status = "rendered"
    done = out_dir / "transforms.json"
    if done.exists():
        try:
            if json.loads(done.read_text()).get("tnerf", {}).get("render") == record:
                return "kept"
        except json.JSONDecodeError:
            pass
        status = "re-rendered"
    partial = out_dir.with_name(f".partial-{out_dir.name}")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    (partial / "depth").mkdir()
    (partial / "grids").mkdir()

    scenes = [load_scene(p) for p in grid_paths]
    dynamic = len(scenes) > 1 or scenes[0].time() is not None
    seed = settings.seed * 7919 + sum(map(ord, out_dir.name))
    poses, intr = cameras_for(scenes[0], settings, seed)
    frames, grids = [], []
    for scene, src in zip(scenes, grid_paths):
        time = scene.time() if dynamic else None
        prefix = f"t{round(time * 100):03d}_" if dynamic else ""
        grid_name = f"grids/{prefix.rstrip('_') or 'grid'}.npz"
        shutil.copyfile(src, partial / grid_name)
        grids.append({"file": grid_name, "time": time, "name": scene.name})
        volume = GridVolume.from_scene(scene, device)
        step = settings.step_voxels * volume.pitch
        for i, c2w in enumerate(poses):
            out = render_view(
                volume, torch.from_numpy(c2w).float(), intr.fx, intr.fy, intr.cx, intr.cy, intr.height, intr.width,
                step=step,
            )  # fmt: skip
            opacity = out["opacity"].clamp(0, 1)
            # straight alpha: un-premultiply the colour composited over black
            premult = out["rgb"] - (1.0 - opacity)[..., None]  # default background is white
            colour = torch.where(opacity[..., None] > 1e-4, premult / opacity.clamp_min(1e-4)[..., None], 0.0)
            rgba = torch.cat([colour.clamp(0, 1), opacity[..., None]], dim=-1)
            stem = f"{prefix}frame_{i:05d}"
            Image.fromarray(numpy_image(rgba), "RGBA").save(partial / "images" / f"{stem}.png")
            depth = torch.where(opacity > 0.5, out["depth"], 0.0).cpu().numpy().astype(np.float32)
            np.save(partial / "depth" / f"{stem}.npy", depth)
            frames.append(_frame_dict(f"images/{stem}.png", c2w, time, f"depth/{stem}.npy"))
            if progress is not None:
                progress()

    box = scenes[0].world_box
    meta = {
        "camera_model": "OPENCV",
        "fl_x": intr.fx, "fl_y": intr.fy, "cx": intr.cx, "cy": intr.cy, "w": intr.width, "h": intr.height,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "camera_angle_x": 2 * math.atan(intr.width / (2 * intr.fx)),
        "camera_angle_y": 2 * math.atan(intr.height / (2 * intr.fy)),
        "scale": scenes[0].scale, "offset": scenes[0].offset.tolist(), "room_bbox": box.tolist(),
        "frames": frames,
        "tnerf": {
            "scene": out_dir.name, "kind": scene_kind(scenes[0]), "dynamic": dynamic, "world_box": box.tolist(),
            "views_per_time": settings.views, "grids": grids, "depth_unit": "metres (z-depth)", "render": record,
        },
    }  # fmt: skip
    for split in ("train", "val", "test"):
        keep = [
            f for i, f in enumerate(frames)
            if ((i % settings.views) % settings.test_every == 0) == (split != "train")
        ]  # fmt: skip
        blender = {"camera_angle_x": meta["camera_angle_x"], "frames": [
            {**f, "file_path": "./" + f["file_path"].removesuffix(".png")} for f in keep
        ]}  # fmt: skip
        (partial / f"transforms_{split}.json").write_text(json.dumps(blender, indent=1))
    (partial / "transforms.json").write_text(json.dumps(meta, indent=1))  # written last: marks completion
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return status


def write_scenes_index(out_root: Path, scene_names: Sequence[str], held_out: Sequence[str]) -> None:
    """Root-level list of scenes and the held-out (eval/test) ones, written atomically."""
    index = {
        "format": FORMAT_VERSION,
        "scenes": list(scene_names),
        "held_out": [s for s in scene_names if s in held_out],
    }
    tmp = out_root / f".{SCENES_FILE}.partial"
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(out_root / SCENES_FILE)
