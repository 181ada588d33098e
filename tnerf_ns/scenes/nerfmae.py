"""Reader (and writer) of NeRF-MAE pre-training scenes: ``features/<scene>.npz`` voxel grids of rgb + density.

Conventions (see ``shared/reference/nerfmae_format.md``):

* ``rgbsigma`` is ``(X, Y, Z, 4)`` float32 on a corner-aligned lattice over the world box (metres, z up): entry
  ``[i, j, k]`` is the world point ``world_min + (i, j, k) * pitch``.
* Channel 3 is Instant-NGP's raw log-density (``sigma = exp(raw)`` per NGP length unit) with ``-10000`` marking
  culled space; some variants store opacity (alpha) directly or a ReLU raw value.
* ``bbox_min``/``bbox_max`` are NGP coordinates in NGP (y-up, cycled) axis order; ``scale`` and ``offset`` map world
  to NGP: ``ngp = cycle(world * scale + offset)`` with ``cycle(x, y, z) = (y, z, x)``.
* NeRF-MAE's opacity: ``alpha = 1 - exp(-sigma / 100)`` (a fixed step of 0.01 NGP units).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Union

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

CONSOLE = Console(stderr=True)

CULLED = -10000.0
"""Sentinel Instant-NGP writes into culled (empty) voxels of the raw log-density channel."""
NERFMAE_STEP = 0.01
"""NGP length of the fixed step in NeRF-MAE's density-to-opacity conversion."""
MAX_RESOLUTION = 160
"""Largest grid side NeRF-MAE pads to; larger grids are cropped silently by NeRF-MAE, so they are flagged here."""
REQUIRED_KEYS = ("rgbsigma",)
GEOMETRY_KEYS = ("bbox_min", "bbox_max", "scale", "offset")

DensityKind = Literal["ngp_log", "alpha", "relu"]


class SceneFormatError(ValueError):
    """A scene file is not a usable NeRF-MAE grid; the message names the file and the problem."""


def world_to_ngp_axes(v: np.ndarray) -> np.ndarray:
    """(x, y, z) world order to NGP order (y, z, x)."""
    return np.asarray(v)[..., [1, 2, 0]]


def ngp_to_world_axes(v: np.ndarray) -> np.ndarray:
    """NGP order (y, z, x) back to world order (x, y, z)."""
    return np.asarray(v)[..., [2, 0, 1]]


def raw_to_sigma(raw: np.ndarray, kind: DensityKind) -> np.ndarray:
    """Stored channel 3 to density per NGP length unit (culled voxels -> 0)."""
    if kind == "ngp_log":
        sigma = np.exp(np.minimum(raw, 30.0))  # exp(30) ~ 1e13: far beyond opaque, avoids overflow
        return np.where(raw <= CULLED / 2, 0.0, sigma).astype(np.float32)
    if kind == "relu":
        return np.maximum(raw, 0.0).astype(np.float32)
    # stored opacity over NeRF-MAE's fixed step: invert alpha = 1 - exp(-sigma * step)
    alpha = np.clip(raw, 0.0, 1.0 - 1e-6)
    return (-np.log1p(-alpha) / NERFMAE_STEP).astype(np.float32)


def sigma_to_alpha(sigma: np.ndarray, step: float = NERFMAE_STEP) -> np.ndarray:
    """Opacity of a step of ``step`` NGP units (NeRF-MAE's ``density_to_alpha`` for step 0.01)."""
    return np.clip(1.0 - np.exp(-sigma * step), 0.0, 1.0).astype(np.float32)


@dataclass
class NerfMAEScene:
    """One NeRF-MAE scene grid, validated."""

    name: str
    """Scene id (the file stem)."""
    path: Optional[Path]
    """File it was read from."""
    rgb: np.ndarray
    """Colour, float32 ``(X, Y, Z, 3)`` in [0, 1] (sRGB, not premultiplied)."""
    raw_density: np.ndarray
    """Channel 3 exactly as stored, float32 ``(X, Y, Z)``."""
    density_kind: DensityKind
    """How channel 3 is encoded: NGP raw log-density, opacity, or ReLU raw."""
    bbox_min: np.ndarray
    """Box corner in NGP coordinates and NGP axis order (y, z, x)."""
    bbox_max: np.ndarray
    """Box corner in NGP coordinates and NGP axis order."""
    scale: float
    """World metres to NGP units."""
    offset: np.ndarray
    """World-order offset of the world-to-NGP map."""
    resolution: Optional[np.ndarray] = None
    """Grid size as stored (NGP order); informational, ``rgb.shape`` is authoritative."""
    extras: Dict[str, np.ndarray] = field(default_factory=dict)
    """Other keys of the file (e.g. ``room_bbox_world``, ``time``)."""

    @property
    def grid_shape(self) -> Tuple[int, int, int]:
        return tuple(self.rgb.shape[:3])  # type: ignore[return-value]

    @property
    def sigma(self) -> np.ndarray:
        """Density per NGP length unit, ``(X, Y, Z)``, culled voxels 0."""
        return raw_to_sigma(self.raw_density, self.density_kind)

    @property
    def opacity(self) -> np.ndarray:
        """NeRF-MAE's per-voxel opacity ``1 - exp(-sigma / 100)``."""
        return sigma_to_alpha(self.sigma)

    @property
    def world_box(self) -> np.ndarray:
        """``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` in world metres (z up)."""
        lo = (ngp_to_world_axes(self.bbox_min) - self.offset) / self.scale
        hi = (ngp_to_world_axes(self.bbox_max) - self.offset) / self.scale
        return np.stack([np.minimum(lo, hi), np.maximum(lo, hi)]).astype(np.float64)

    @property
    def pitch(self) -> np.ndarray:
        """World spacing of the lattice along x, y, z."""
        box = self.world_box
        return (box[1] - box[0]) / np.maximum(np.asarray(self.grid_shape) - 1, 1)

    def time(self) -> Optional[float]:
        """Normalised time of a dynamic-scene state, if the file carries one."""
        return float(self.extras["time"]) if "time" in self.extras else None


def classify_density(raw: np.ndarray, has_ddp_flag: bool) -> DensityKind:
    """Decide how channel 3 is encoded (reference §1.9)."""
    if has_ddp_flag:
        return "relu"
    lo, hi = float(raw.min()), float(raw.max())
    if lo >= 0.0 and hi <= 1.0:
        return "alpha"
    return "ngp_log"


def _fail(path: Union[str, Path], problem: str) -> SceneFormatError:
    return SceneFormatError(f"{path}: {problem}")


def load_scene(path: Union[str, Path]) -> NerfMAEScene:
    """Read and validate one ``.npz`` scene; any problem raises :class:`SceneFormatError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise _fail(path, f"not a readable .npz archive ({type(err).__name__}: {err})") from err
    except Exception as err:  # numpy raises assorted errors on damaged members (e.g. zlib errors)
        raise _fail(path, f"damaged .npz member ({type(err).__name__}: {err})") from err
    return scene_from_arrays(data, name=path.stem, path=path)


def scene_from_arrays(data: Dict[str, np.ndarray], name: str, path: Optional[Path] = None) -> NerfMAEScene:
    """Validate a dict of arrays (the content of an npz file) into a scene."""
    where = path if path is not None else name
    missing = [k for k in REQUIRED_KEYS + GEOMETRY_KEYS if k not in data]
    if missing:
        raise _fail(where, f"missing keys {missing} (has {sorted(data)})")
    grid = np.asarray(data["rgbsigma"])
    if grid.dtype.kind not in "fiu":
        raise _fail(where, f"rgbsigma has non-numeric dtype {grid.dtype}")
    if grid.ndim == 2 and grid.shape[-1] == 4 and "resolution" in data:
        grid = _unflatten(grid, np.asarray(data["resolution"]), where)
    if grid.ndim != 4:
        raise _fail(where, f"rgbsigma must be 4-D (X, Y, Z, 4), got shape {grid.shape}")
    if grid.shape[-1] != 4:
        raise _fail(where, f"rgbsigma must have 4 channels (R, G, B, density), got {grid.shape[-1]}")
    if min(grid.shape[:3]) < 2:
        raise _fail(where, f"empty or degenerate grid of shape {grid.shape[:3]} (each axis needs >= 2 samples)")
    if max(grid.shape[:3]) > MAX_RESOLUTION:
        CONSOLE.print(f"[yellow]{where}: grid {grid.shape[:3]} exceeds {MAX_RESOLUTION} per axis (NeRF-MAE would crop)")
    if grid.dtype == np.uint8:
        grid = grid.astype(np.float32) / 255.0
    grid = grid.astype(np.float32, copy=False)
    rgb, raw = grid[..., :3], grid[..., 3]
    if not np.isfinite(rgb).all():
        raise _fail(where, f"rgb has {int((~np.isfinite(rgb)).sum())} non-finite values")
    if not np.isfinite(raw).all():
        raise _fail(where, f"density has {int((~np.isfinite(raw)).sum())} non-finite values (NaN/Inf)")
    if rgb.min() < -1e-3 or rgb.max() > 1 + 1e-3:
        raise _fail(where, f"rgb outside [0, 1] (range {rgb.min():.3g} .. {rgb.max():.3g})")
    kind = classify_density(raw, bool(data.get("from_ddp_nerf", False)))

    def vec3(key: str) -> np.ndarray:
        v = np.asarray(data[key], dtype=np.float64).reshape(-1)
        if v.shape != (3,) or not np.isfinite(v).all():
            raise _fail(where, f"{key} must be 3 finite numbers, got {np.asarray(data[key]).tolist()}")
        return v

    bbox_min, bbox_max, offset = vec3("bbox_min"), vec3("bbox_max"), vec3("offset")
    scale_arr = np.asarray(data["scale"], dtype=np.float64).reshape(-1)
    if scale_arr.size != 1 or not np.isfinite(scale_arr).all() or scale_arr[0] <= 0:
        raise _fail(where, f"scale must be one positive number, got {scale_arr.tolist()}")
    scene = NerfMAEScene(
        name=name,
        path=path,
        rgb=np.clip(rgb, 0.0, 1.0),
        raw_density=raw,
        density_kind=kind,
        bbox_min=bbox_min,
        bbox_max=bbox_max,
        scale=float(scale_arr[0]),
        offset=offset,
        resolution=np.asarray(data["resolution"]) if "resolution" in data else None,
        extras={k: np.asarray(v) for k, v in data.items() if k not in {"rgbsigma", "resolution", *GEOMETRY_KEYS}},
    )
    _check_box(scene, where)
    return scene


def _unflatten(flat: np.ndarray, resolution: np.ndarray, where) -> np.ndarray:
    """Raw fork output ``(N, 4)`` x-fastest in NGP axes -> ``(X, Y, Z, 4)`` world axes (reference §1.9)."""
    res = resolution.astype(np.int64).reshape(-1)
    if res.shape != (3,) or int(np.prod(res)) != flat.shape[0]:
        raise _fail(where, f"flat rgbsigma of {flat.shape[0]} rows does not match resolution {res.tolist()}")
    grid = flat.reshape(res[2], res[1], res[0], 4).transpose(2, 1, 0, 3)
    return grid.transpose(2, 0, 1, 3)


def _check_box(scene: NerfMAEScene, where) -> None:
    box = scene.world_box
    ext = box[1] - box[0]
    if (ext <= 0).any():
        raise _fail(where, f"bounding box is empty or inverted (world extent {ext.tolist()})")
    if ext.max() > 1e4 or ext.min() < 1e-6:
        raise _fail(where, f"bounding box extent {ext.tolist()} m is absurd")
    pitch = ext / (np.asarray(scene.grid_shape) - 1)
    if pitch.max() / pitch.min() > 1.5:
        raise _fail(
            where,
            f"bounding box {ext.round(4).tolist()} is inconsistent with grid {scene.grid_shape}: voxel pitch "
            f"{pitch.round(5).tolist()} is not isotropic",
        )


def save_scene(path: Union[str, Path], scene: NerfMAEScene) -> None:
    """Write a scene in NeRF-MAE's format (``np.savez_compressed``), atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = np.concatenate([scene.rgb, scene.raw_density[..., None]], axis=-1).astype(np.float32)
    x, y, z = scene.grid_shape
    arrays = {
        "rgbsigma": grid,
        "resolution": np.asarray([y, z, x], dtype=np.int64),  # NGP order (L, H, W)
        "bbox_min": scene.bbox_min.astype(np.float32),
        "bbox_max": scene.bbox_max.astype(np.float32),
        "scale": np.float64(scene.scale),
        "offset": scene.offset.astype(np.float32),
        "from_mitsuba": np.bool_(False),
    }
    arrays.update(scene.extras)
    tmp = path.with_name(f".{path.stem}.partial.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


@dataclass
class SceneIndex:
    """Scenes of a dataset folder that passed validation, with the split and the rejects."""

    root: Path
    names: List[str]
    paths: Dict[str, Path]
    split: Dict[str, List[str]]
    rejected: Dict[str, str]


def find_features_dir(root: Path) -> Path:
    """``root/features`` (the NeRF-MAE layout) or ``root`` itself when it holds the npz files directly."""
    for candidate in (root / "features", root / "pretrain" / "features", root):
        if candidate.is_dir() and any(candidate.glob("*.npz")):
            return candidate
    raise SceneFormatError(f"{root}: no NeRF-MAE scenes (expected features/*.npz)")


def index_dataset(root: Union[str, Path], validate: bool = True, progress: bool = True) -> SceneIndex:
    """Enumerate a NeRF-MAE dataset folder (``features/*.npz`` plus ``nerfmae_split.npz`` when present).

    Every scene is validated (with a progress bar); a bad scene is reported and skipped, never silently and never
    aborting the run.
    """
    root = Path(root)
    features = find_features_dir(root)
    paths = {p.stem: p for p in sorted(features.glob("*.npz")) if not p.name.startswith(".")}
    split_file = next(
        (p for p in (root / "nerfmae_split.npz", features.parent / "nerfmae_split.npz") if p.is_file()), None
    )
    rejected: Dict[str, str] = {}
    if validate:
        with Progress(
            TextColumn("checking scenes"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=CONSOLE, disable=not progress, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("scenes", total=len(paths))
            for name, p in paths.items():
                try:
                    load_scene(p)
                except SceneFormatError as err:
                    rejected[name] = str(err)
                    CONSOLE.print(f"[red]skipping bad scene[/red] {err}")
                bar.advance(task)
    names = [n for n in paths if n not in rejected]
    split: Dict[str, List[str]] = {}
    if split_file is not None:
        try:
            with np.load(split_file, allow_pickle=False) as s:
                for key in ("train_scenes", "val_scenes", "test_scenes"):
                    if key in s.files:
                        split[key.removesuffix("_scenes")] = [str(n) for n in s[key] if str(n) in names]
        except Exception as err:
            CONSOLE.print(f"[yellow]{split_file}: unreadable split file ({err}); using all scenes for every split")
    if rejected:
        CONSOLE.print(f"[yellow]{len(rejected)} of {len(paths)} scenes rejected in {features}")
    return SceneIndex(root=root, names=names, paths={n: paths[n] for n in names}, split=split, rejected=rejected)
