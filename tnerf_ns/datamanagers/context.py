"""Scene context: which photos a T-NeRF prediction is made from, for any camera.

The context provider answers "which scene, and which source views" for a training batch, an evaluation image, a
viewer camera or an ``ns-render`` camera alike, from a camera alone: cameras of multi-scene datasets carry a global
``scene_idx``; cameras without one (viewer, camera paths, single-scene datasets) use the default scene. Source views
are chosen deterministically, spread over the scene's cameras (farthest-point sampling of camera centres), and are
never evaluation targets. Source photos with lens distortion are undistorted to pinhole images of the same intrinsics
(:mod:`tnerf_ns.data.lens`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from jaxtyping import Float, Int
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datasets.base_dataset import InputDataset
from torch import Tensor

from tnerf_ns.data.dataset import TNeRFDataset
from tnerf_ns.data.lens import has_distortion, undistorted_view
from tnerf_ns.data.scene_points import ScenePointSampler
from tnerf_ns.encoding.cache import LRUCache
from tnerf_ns.scene_context import SceneContext

__all__ = ["ContextProvider", "SceneContext", "SceneEntry", "TNeRFDataset", "farthest_point_views"]


def common_size(ds: InputDataset, indices: Sequence[int]) -> Tuple[int, int]:
    """(h, w) every source view of a context is brought to: the first's. Photos of one scene may differ in size
    (``tnerf-photos`` folders, mixed cameras); the others are resized and their intrinsics scaled with them."""
    return int(ds.cameras.height[indices[0], 0]), int(ds.cameras.width[indices[0], 0])


def resize_view(view: Float[Tensor, "h w c"], size: Tuple[int, int], mode: str) -> Float[Tensor, "hh ww c"]:
    """``view`` at ``size`` (unchanged when it already is): bilinear with antialiasing for images, nearest for depth."""
    if tuple(view.shape[:2]) == tuple(size):
        return view
    chw = view.permute(2, 0, 1)[None].float()
    smooth = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
    return torch.nn.functional.interpolate(chw, size=size, mode=mode, **smooth)[0].permute(1, 2, 0)


def stack_padded(
    rgba: List[Tensor], depth: List[Optional[Tensor]]
) -> Tuple[Tensor, Optional[Tensor], Int[Tensor, "n 2"]]:
    """Images [n, h, w, c] (and depths [n, h, w] when every view has one) stacked, and each view's (h, w). Photos of
    several sizes (a phone's portrait and landscape shots) are padded with zeros to the largest."""
    sizes = torch.tensor([r.shape[:2] for r in rgba])
    has_depth = all(d is not None for d in depth)
    if len(torch.unique(sizes, dim=0)) == 1:
        return torch.stack(rgba), torch.stack(depth) if has_depth else None, sizes
    h, w = sizes.max(dim=0).values.tolist()
    images = rgba[0].new_zeros(len(rgba), h, w, rgba[0].shape[-1])
    depths = torch.zeros(len(rgba), h, w) if has_depth else None
    for n, (r, d) in enumerate(zip(rgba, depth)):
        images[n, : r.shape[0], : r.shape[1]] = r
        if depths is not None:
            depths[n, : d.shape[0], : d.shape[1]] = d
    return images, depths, sizes


def not_pinhole(cameras: Cameras) -> Optional[str]:
    """Why the source views' pinhole intrinsics (fx, fy, cx, cy: all the backbone and the lifting use) misdescribe
    ``cameras``, or None."""
    if bool((cameras.camera_type != CameraType.PERSPECTIVE.value).any()):
        return "non-pinhole cameras (fisheye, equirectangular, ...)"
    if has_distortion(cameras.distortion_params):
        return "lens distortion parameters"
    return None


def farthest_point_views(centres: np.ndarray, k: int, start: int = 0) -> List[int]:
    """``k`` indices spread over camera centres (farthest-point sampling from camera ``start``); deterministic."""
    n = len(centres)
    if k >= n:
        return list(range(n))
    chosen = [start % n]
    dist = np.linalg.norm(centres - centres[chosen[0]], axis=-1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(centres - centres[nxt], axis=-1))
    return sorted(chosen)


def source_set_pool(centres: np.ndarray, k_range: Tuple[int, int], num_sets: int) -> List[List[int]]:
    """A finite pool of source sets for training: ``num_sets`` sets whose sizes K cycle over ``k_range`` (at most
    all views but one, so a target remains), each spread over the cameras from a different first camera. Finite and
    deterministic, so a frozen backbone's outputs per set stay cacheable."""
    n = len(centres)
    hi = max(1, min(k_range[1], n - 1))
    lo = max(1, min(k_range[0], hi))
    sizes = list(range(lo, hi + 1))
    pool: List[List[int]] = []
    for j in range(num_sets):
        views = farthest_point_views(centres, sizes[j % len(sizes)], start=(j * n) // max(num_sets, 1))
        if views not in pool:
            pool.append(views)
    return pool


@dataclass
class SceneEntry:
    """One scene the provider can serve."""

    scene_idx: int
    """Global scene index (as in ``Cameras.metadata["scene_idx"]``)."""
    name: str
    dataset: TNeRFDataset
    """Dataset holding the scene's images (source views and targets)."""
    image_indices: List[int]
    """The scene's images in ``dataset``."""
    source_indices: List[int]
    """Source views of evaluation, rendering and the viewer (subset of ``image_indices``)."""
    grids: List[Dict] = field(default_factory=list)
    """Ground-truth grids (``file``, ``time``) for 3-D losses; empty when unknown."""
    centre: Optional[np.ndarray] = None
    world_to_unit: float = 1.0
    times: List[Optional[float]] = field(default_factory=list)
    """Time of each image (dynamic scenes)."""
    source_pool: List[List[int]] = field(default_factory=list)
    """Training source sets (of t0 images); empty: ``source_indices`` only."""

    def sources(self, source_set: Optional[int] = None) -> List[int]:
        """The t0 source views of a training set of the pool, or the evaluation sources (None)."""
        if source_set is None or not self.source_pool:
            return list(self.source_indices)
        return list(self.source_pool[source_set % len(self.source_pool)])

    @property
    def dynamic(self) -> bool:
        return any(t is not None for t in self.times) and len(self.time_values) > 1

    @property
    def time_values(self) -> List[float]:
        return sorted({float(t) for t in self.times if t is not None})

    def images_at(self, time: float) -> List[int]:
        """The scene's images at one time, in view order (every time state uses the same cameras)."""
        return [i for i, t in zip(self.image_indices, self.times) if t is not None and abs(float(t) - time) < 1e-6]

    def sources_at(self, time: float, source_set: Optional[int] = None) -> List[int]:
        """The source cameras' images at ``time`` (same view positions as the t0 sources)."""
        sources = self.sources(source_set)
        if not self.dynamic:
            return sources
        first = self.images_at(self.time_values[0])
        positions = [first.index(i) for i in sources]
        at = self.images_at(time)
        return [at[p] for p in positions]

    def inputs(self, source_set: Optional[int] = None) -> List[int]:
        """Images given to the model: the sources (and, for dynamic scenes, their t1 counterparts)."""
        if not self.dynamic:
            return self.sources(source_set)
        return self.sources_at(self.time_values[0], source_set) + self.sources_at(self.time_values[-1], source_set)

    @property
    def input_indices(self) -> List[int]:
        """The evaluation inputs (never scored)."""
        return self.inputs()

    def targets(self, source_set: Optional[int] = None) -> List[int]:
        inputs = set(self.inputs(source_set))
        return [i for i in self.image_indices if i not in inputs] or list(self.image_indices)

    @property
    def target_indices(self) -> List[int]:
        return self.targets()

    def targets_at(self, time: float, source_set: Optional[int] = None) -> List[int]:
        inputs = set(self.inputs(source_set))
        return [i for i in self.images_at(time) if i not in inputs] or self.images_at(time)


class ContextProvider:
    """Serves scene contexts for scene indices, ray batches and cameras (a
    :class:`~tnerf_ns.scene_context.ContextSource`), with small LRU caches of images and grids."""

    def __init__(
        self,
        scenes: Sequence[SceneEntry],
        default_scene: Optional[int] = None,
        background: Optional[Tensor] = None,
        cache_size: int = 32,
        undistort: bool = True,
    ) -> None:
        """``undistort``: source photos with lens distortion become pinhole images of the same intrinsics before the
        backbone (False reads them as pinhole, as before)."""
        if not scenes:
            raise ValueError("the context provider needs at least one scene")
        self.scenes: Dict[int, SceneEntry] = {s.scene_idx: s for s in scenes}
        self.default_scene = default_scene if default_scene is not None else scenes[0].scene_idx
        self.background = torch.ones(3) if background is None else background.cpu()
        self.cache_size = cache_size
        self.undistort = undistort
        self._contexts: LRUCache[SceneContext] = LRUCache(cache_size)
        self._samplers: LRUCache[ScenePointSampler] = LRUCache(cache_size)

    @staticmethod
    def choose_sources(dataset: InputDataset, indices: Sequence[int], k: int) -> List[int]:
        centres = dataset.cameras.camera_to_worlds[list(indices), :, 3].numpy()
        return [indices[i] for i in farthest_point_views(centres, k)]

    @staticmethod
    def source_pool(
        dataset: InputDataset, indices: Sequence[int], k_range: Tuple[int, int], num_sets: int
    ) -> List[List[int]]:
        centres = dataset.cameras.camera_to_worlds[list(indices), :, 3].numpy()
        return [[indices[i] for i in views] for views in source_set_pool(centres, k_range, num_sets)]

    def scene_for_camera(self, camera: Cameras) -> int:
        meta = camera.metadata or {}
        if "scene_idx" in meta:
            idx = int(meta["scene_idx"].reshape(-1)[0])
            if idx in self.scenes:
                return idx
        return self.default_scene

    @staticmethod
    def time_of(times: Optional[Tensor], default: Optional[float]) -> Optional[float]:
        """The prediction time of rays/cameras: their own (clamped to [0, 1]), else ``default`` (None: static)."""
        if default is None:
            return None
        if times is None or times.numel() == 0:
            return default
        return float(times.reshape(-1)[0].clamp(0, 1))

    def context_for_rays(self, ray_bundle: RayBundle, time: Optional[float] = None) -> SceneContext:
        """The context of a ray batch: its ``scene_idx`` metadata (else the default scene), at its time."""
        scene = self.default_scene
        if ray_bundle.metadata and "scene_idx" in ray_bundle.metadata:
            scene = int(ray_bundle.metadata["scene_idx"].reshape(-1)[0])
        return self.context(scene, time=self.time_of(ray_bundle.times, time))

    def context_for_camera(self, camera: Cameras, time: Optional[float] = None) -> SceneContext:
        """The context an evaluation, viewer or ``ns-render`` camera sees, at its time."""
        return self.context(self.scene_for_camera(camera), time=self.time_of(camera.times, time))

    def entry(self, scene_idx: int) -> SceneEntry:
        if scene_idx not in self.scenes:
            raise KeyError(f"scene {scene_idx} is not available (known: {sorted(self.scenes)[:10]} ...)")
        return self.scenes[scene_idx]

    def _view(self, ds: TNeRFDataset, index: int, view: Tensor, size: Tuple[int, int], mode: str) -> Tensor:
        """A source view (image or depth [h, w, c]) as the backbone reads it: undistorted at its own resolution (so
        the camera's intrinsics apply unscaled), then resized to the context's ``size``."""
        if self.undistort:
            view = undistorted_view(view, ds.cameras, index, mode)
        return resize_view(view, size, mode)

    def _rgba(self, ds: TNeRFDataset, indices: Sequence[int], size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Source images [k, 3, h, w] on the background, and alpha [k, h, w], at the context's ``size``."""
        rgba = torch.stack([self._view(ds, i, ds.get_rgba(i), size, "bilinear") for i in indices])  # [k, h, w, 4]
        alpha = rgba[..., 3]
        images = rgba[..., :3] * alpha[..., None] + self.background * (1 - alpha[..., None])
        return images.permute(0, 3, 1, 2).contiguous(), alpha

    def _load(self, entry: SceneEntry, time: Optional[float], source_set: Optional[int]) -> SceneContext:
        ds = entry.dataset
        dynamic = entry.dynamic
        t0_sources = entry.sources_at(entry.time_values[0], source_set) if dynamic else entry.sources(source_set)
        size = common_size(ds, t0_sources)  # every image, alpha and depth of the context, and its intrinsics
        images, alpha = self._rgba(ds, t0_sources, size)
        images_t1 = None
        if dynamic:
            images_t1, _ = self._rgba(ds, entry.sources_at(entry.time_values[-1], source_set), size)
            time = entry.time_values[0] if time is None else float(time)
            truth = entry.sources_at(min(entry.time_values, key=lambda v: abs(v - time)), source_set)
            if truth != t0_sources:
                _, alpha = self._rgba(ds, truth, size)
        else:
            truth, time = t0_sources, None
        cams = ds.cameras
        idx = torch.tensor(t0_sources)
        sx, sy = size[1] / cams.width[idx, 0].float(), size[0] / cams.height[idx, 0].float()  # 1 unless resized
        intr = torch.zeros(len(idx), 3, 3)
        intr[:, 0, 0], intr[:, 1, 1] = cams.fx[idx, 0] * sx, cams.fy[idx, 0] * sy
        intr[:, 0, 2], intr[:, 1, 2], intr[:, 2, 2] = cams.cx[idx, 0] * sx, cams.cy[idx, 0] * sy, 1.0
        depths = [ds.get_depth(i) for i in truth]
        has_depth = all(d is not None for d in depths)
        depth = None
        if has_depth:
            depth = torch.stack(
                [self._view(ds, i, d[..., None], size, "nearest")[..., 0] for i, d in zip(truth, depths)]
            )
        # undistorted sources are other pixels than the same views read as pinhole: keep their cached outputs apart
        params = cams.distortion_params
        undistorted = self.undistort and params is not None and has_distortion(params[entry.inputs(source_set)])
        return SceneContext(
            key=(
                entry.name,
                tuple(entry.inputs(source_set)),
                str(Path(ds.image_filenames[0]).parent),
                tuple(images.shape),
            )
            + (("undistorted",) if undistorted else ()),
            scene_idx=entry.scene_idx,
            name=entry.name,
            images=images,
            alpha=alpha,
            c2w=cams.camera_to_worlds[idx].clone(),
            intrinsics=intr,
            depth=depth,
            images_t1=images_t1,
            time=time,
        )

    def context(
        self,
        scene_idx: int,
        num_points: int = 0,
        generator: Optional[torch.Generator] = None,
        time: Optional[float] = None,
        source_set: Optional[int] = None,
        **point_kwargs,
    ) -> SceneContext:
        """The scene's source views (cached) and, when asked, fresh 3-D query points with ground truth.

        ``time`` (dynamic scenes; ignored otherwise) is the prediction time in [0, 1]; ``source_set`` picks a training
        set of the scene's pool (None: the deterministic evaluation sources).
        """
        entry = self.entry(scene_idx)
        if source_set is not None and entry.source_pool:
            source_set %= len(entry.source_pool)
        else:
            source_set = None
        key = (scene_idx, None if not entry.dynamic or time is None else round(float(time), 6), source_set)
        ctx = self._contexts.get_or_compute(key, lambda: self._load(entry, time, source_set))
        if num_points <= 0 or not entry.grids:
            return ctx
        grid = entry.grids[0]
        if ctx.time is not None:  # the grid of the state nearest to the prediction time
            grid = min(entry.grids, key=lambda g: abs(float(g.get("time") or 0.0) - ctx.time))
        sampler = self.point_sampler(entry, grid["file"])
        points = sampler.sample(num_points, generator=generator, **point_kwargs)
        return replace(ctx, points=points)

    def point_sampler(self, entry: SceneEntry, grid_file) -> ScenePointSampler:
        return self._samplers.get_or_compute(
            str(grid_file), lambda: ScenePointSampler(grid_file, entry.centre, entry.world_to_unit)
        )
