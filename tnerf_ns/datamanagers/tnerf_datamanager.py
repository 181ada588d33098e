"""Data manager for T-NeRF: one scene per step, its source views, target rays of other views, 3-D query points.

Works on the multi-scene ``tnerf-scenes`` data (train scenes / held-out scenes) and on any single-scene nerfstudio
dataset (scene mode: the whole dataset is one scene; source views come from its train split). Source views are
removed from the evaluation images, so ``ns-eval`` never scores a view the model was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type, Union

import numpy as np
import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.configs.dataparser_configs import AnnotatedDataParserUnion
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.utils.dataloaders import FixedIndicesEvalDataloader, RandIndicesEvalDataloader
from nerfstudio.model_components.ray_generators import RayGenerator
from nerfstudio.utils.rich_utils import CONSOLE

from tnerf_ns.compat import frame_the_scene_in_the_viewer
from tnerf_ns.data.dataset import TNeRFDataset, subset_outputs
from tnerf_ns.data.image_check import ImageCheckError, damaged_images
from tnerf_ns.data.lens import check_camera_model, has_distortion
from tnerf_ns.data.multiscene_dataparser import TNeRFScenesDataParserConfig
from tnerf_ns.datamanagers.context import ContextProvider, SceneEntry, stack_padded
from tnerf_ns.datamanagers.ray_targets import draw_time, pick_target_images
from tnerf_ns.datamanagers.tool_view import ToolView, viewer_pose
from tnerf_ns.encoding.cache import LRUCache
from tnerf_ns.placement import PlacementConfig, box_is_about_object, placed_box


@dataclass
class TNeRFDataManagerConfig(VanillaDataManagerConfig):
    """One scene per step: K source views, target rays of other views, and 3-D query points."""

    _target: Type = field(default_factory=lambda: TNeRFDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=TNeRFScenesDataParserConfig)
    """Multi-scene data (tnerf-scenes) or any single-scene nerfstudio dataparser (scene mode)."""
    seed: Optional[int] = None
    """Seed of the batches (scenes, source sets, rays, query points). None: ns-train's --machine.seed (0 outside
    ns-train)."""
    train_num_rays_per_batch: int = 1024
    """Target rays per step (all from one scene)."""
    eval_num_rays_per_batch: int = 1024
    """Target rays per evaluation batch."""
    num_source_views: int = 4
    """Source views (K) of evaluation, rendering and the viewer: deterministic, spread over each scene's cameras
    (farthest-point sampling)."""
    train_source_views: Tuple[int, int] = (2, 8)
    """Range of K during training: each training scene gets a pool of source sets whose sizes cycle over it, so the
    model learns to use fewer and more views."""
    input_view_ray_share: float = 0.25
    """Share of each training batch's target rays drawn from the step's source views (the input views, where a hole
    in the density shows as wrong colour); the rest from the scene's other views. Multi-scene (head) training only:
    scene-mode refinement keeps to the capture's views outside the source set, as in the measured comparisons."""
    source_sets_per_scene: int = 8
    """Source sets in each training scene's pool (finite, so a frozen backbone's outputs stay cacheable)."""
    num_query_points: int = 2048
    """3-D query points with ground truth per step (scenes with grids only; 0 disables)."""
    point_fractions: Tuple[float, float, float] = (0.4, 0.3, 0.3)
    """Shares of occupied, near-surface and empty points."""
    scene_cache_size: int = 32
    """Scenes whose images, contexts and grids stay in memory."""
    default_scene: Optional[str] = None
    """Scene shown for cameras without a scene index (viewer, camera paths); default: the first held-out scene."""
    eval_intermediate_times_only: bool = True
    """Dynamic scenes: evaluate only views strictly between t0 and t1 (the interpolated moments)."""
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    """Where the tri-plane's box lives in scene mode (captures: placed from the cameras; see tnerf_ns.placement)."""
    undistort_sources: bool = True
    """Source photos with OpenCV lens distortion are undistorted to pinhole images with the same intrinsics before the
    backbone; False reads them as pinhole (for measuring what undistortion buys)."""


class TNeRFDataManager(VanillaDataManager[TNeRFDataset]):
    """See :class:`TNeRFDataManagerConfig`."""

    config: TNeRFDataManagerConfig

    def __init__(
        self,
        config: TNeRFDataManagerConfig,
        device: Union[torch.device, str] = "cpu",
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        **kwargs,
    ) -> None:
        self.world_size_ = world_size
        self.local_rank_ = local_rank
        self.run_seed = config.seed or 0
        self.generator = torch.Generator().manual_seed(self.run_seed + 1234 + local_rank)
        self.tool_view: Optional[ToolView] = None  # set by setup_train outside training
        frame_the_scene_in_the_viewer()  # the viewer starts at viewer_camera() (a no-op without a viewer)
        super().__init__(config, device, test_mode, world_size, local_rank, **kwargs)

    # ------------------------------------------------------------------ datasets and scenes
    def create_train_dataset(self) -> TNeRFDataset:
        return TNeRFDataset(self.train_dataparser_outputs, scale_factor=self.config.camera_res_scale_factor)

    def create_eval_dataset(self) -> TNeRFDataset:
        outputs = self.dataparser.get_dataparser_outputs(split=self.test_split)
        self.eval_context_dataset = TNeRFDataset(outputs, scale_factor=self.config.camera_res_scale_factor)
        self._build_scenes()
        # evaluation images are the eval split minus every view given to the model (and, for dynamic scenes, only the
        # intermediate times unless asked otherwise)
        excluded = set(self.unusable_eval_images)
        for scene in self.eval_scenes:
            if scene.dataset is not self.eval_context_dataset:
                continue
            excluded.update(scene.input_indices)
            if scene.dynamic and self.config.eval_intermediate_times_only:
                lo, hi = scene.time_values[0], scene.time_values[-1]
                excluded.update(scene.images_at(lo) + scene.images_at(hi))
        keep = [i for i in range(len(outputs.image_filenames)) if i not in excluded]
        if not keep:
            keep = list(range(len(outputs.image_filenames)))
        self.eval_target_indices = keep
        return TNeRFDataset(subset_outputs(outputs, keep), scale_factor=self.config.camera_res_scale_factor)

    def _pool(self, dataset: TNeRFDataset, candidates: List[int], training: bool) -> List[List[int]]:
        if not training:
            return []
        cfg = self.config
        return ContextProvider.source_pool(dataset, candidates, cfg.train_source_views, cfg.source_sets_per_scene)

    def _scene_entries(self, dataset: TNeRFDataset, training: bool) -> List[SceneEntry]:
        meta_scenes = dataset.metadata.get("scenes")
        k = self.config.num_source_views
        if not meta_scenes:  # single-scene dataset: the whole split is one scene
            all_idx = list(range(len(dataset)))
            sources = ContextProvider.choose_sources(dataset, all_idx, k)
            return [SceneEntry(0, "scene", dataset, all_idx, sources, source_pool=self._pool(dataset, all_idx, True))]
        entries = []
        for record in meta_scenes:
            indices = list(record["image_indices"])
            candidates = indices
            times = record.get("times") or []
            if record.get("dynamic") and times:
                t0 = min(t for t in times if t is not None)
                candidates = [i for i, t in zip(indices, times) if t == t0]
            entries.append(
                SceneEntry(
                    scene_idx=int(record["scene_idx"]),
                    name=record["name"],
                    dataset=dataset,
                    image_indices=indices,
                    source_indices=ContextProvider.choose_sources(dataset, candidates, k),
                    grids=record.get("grids", []),
                    centre=np.asarray(record["centre"]),
                    world_to_unit=float(record["world_to_unit"]),
                    times=list(times),
                    source_pool=self._pool(dataset, candidates, training),
                )
            )
        return entries

    def _usable(self, entries: List[SceneEntry], single: bool) -> List[SceneEntry]:
        """The scenes whose images all decode (checked once per file, cached); a damaged one is skipped with a
        warning naming the file, or refused in scene mode (one scene: nothing left to train on)."""
        usable = []
        for entry in entries:
            files = [Path(entry.dataset.image_filenames[i]) for i in entry.image_indices]
            bad = damaged_images(files)
            if not bad:
                usable.append(entry)
                continue
            path, problem = next(iter(bad.items()))
            more = f" (and {len(bad) - 1} more damaged images)" if len(bad) > 1 else ""
            if single:
                raise ImageCheckError(f"{path}: {problem}{more}; fix or remove the file (it is listed in the dataset)")
            CONSOLE.print(f"[yellow]Skipping scene {entry.name}: {path}: {problem}{more}")
            if entry.dataset is not self.train_dataset:
                self.unusable_eval_images.extend(entry.image_indices)
        return usable

    def _build_scenes(self) -> None:
        self.unusable_eval_images: List[int] = []
        data = self.config.data or self.config.dataparser.data
        for dataset in (self.train_dataset, self.eval_context_dataset):  # fisheye, equirectangular, ...: refused
            check_camera_model(dataset.cameras, str(data))
        single = not self.eval_context_dataset.metadata.get("scenes")
        self.scene_mode = single
        self.train_scenes = self._usable(self._scene_entries(self.train_dataset, training=True), single)
        if not self.train_scenes:
            raise ImageCheckError(f"{self.config.data}: no training scene has usable images (see the warnings above)")
        scene = self.train_scenes[0]  # scene mode: the box from the capture's cameras (x along the first source's)
        self.placement = None if not single else placed_box(
            getattr(self.config, "placement", PlacementConfig()),  # configs saved before it existed lack it
            scene.dataset.cameras[torch.tensor(scene.image_indices)],
            scene.image_indices.index(scene.source_indices[0]),
            box_is_about_object(self.config.dataparser),
        )  # fmt: skip
        if has_distortion(self.train_dataset.cameras.distortion_params):
            if self.config.undistort_sources:
                CONSOLE.print(f"{data}: lens distortion: source views are undistorted to pinhole images")
            else:
                CONSOLE.print(f"[yellow]{data}: lens distortion, --pipeline.datamanager.undistort-sources False: source "
                              "views are read as pinhole images (target rays follow the distorted cameras)")  # fmt: skip
        if single:
            # scene mode: evaluation cameras see the scene encoded from the train split's source views
            self.eval_scenes = self.train_scenes
            eval_files = [Path(f) for f in self.eval_context_dataset.image_filenames]
            bad = damaged_images(eval_files)
            if bad:
                path, problem = next(iter(bad.items()))
                raise ImageCheckError(f"{path}: {problem}; fix or remove the file (it is listed in the dataset)")
        else:
            self.eval_scenes = self._usable(self._scene_entries(self.eval_context_dataset, training=False), single)
        scenes = {s.scene_idx: s for s in self.train_scenes}
        scenes.update({s.scene_idx: s for s in self.eval_scenes})
        default = None
        if self.config.default_scene is not None:
            named = [s.scene_idx for s in scenes.values() if s.name == self.config.default_scene]
            if not named:
                raise ValueError(f"--default-scene {self.config.default_scene!r} is not a scene of {self.config.data}")
            default = named[0]
        elif self.eval_scenes:
            default = self.eval_scenes[0].scene_idx
        background = self.train_dataparser_outputs.alpha_color
        self.context_provider = ContextProvider(
            list(scenes.values()),
            default,
            background=background,
            cache_size=self.config.scene_cache_size,
            undistort=self.config.undistort_sources,
        )
        self.shard(self.local_rank_, self.world_size_)
        self._images: LRUCache[Tuple[torch.Tensor, Optional[torch.Tensor]]] = LRUCache(self.config.scene_cache_size)

    def shard(self, rank: int, world_size: int) -> None:
        """Scenes this rank trains on: disjoint shards of the training scenes when training on several processes."""
        self.local_rank_, self.world_size_ = rank, max(world_size, 1)
        self.rank_scenes = self.train_scenes[rank :: self.world_size_] or self.train_scenes

    # ------------------------------------------------------------------ setup (no all-images cache dataloader)
    def setup_train(self) -> None:
        self.train_pixel_sampler = None
        self.train_ray_generator = RayGenerator(self.train_dataset.cameras.to(self.device))
        if self.test_mode == "val":
            CONSOLE.print(
                f"T-NeRF training on {len(self.rank_scenes)} scene(s), {self.config.num_source_views} source views"
            )
            return
        # built by eval_setup (ns-export, the viewer, ns-render): tools see the default scene as the training split
        view = ToolView(
            self.context_provider,
            subset_outputs,
            self.config.train_num_rays_per_batch,
            self.config.camera_res_scale_factor,
            self.device,
        )
        self.tool_view, self.train_pixel_sampler = view, view.sampler
        self.train_dataset, self.train_dataparser_outputs = view.dataset, view.outputs

    def setup_eval(self) -> None:
        self.eval_pixel_sampler = None
        self.eval_ray_generator = RayGenerator(self.eval_context_dataset.cameras.to(self.device))
        self.fixed_indices_eval_dataloader = FixedIndicesEvalDataloader(
            input_dataset=self.eval_dataset, device=self.device
        )
        self.eval_dataloader = RandIndicesEvalDataloader(input_dataset=self.eval_dataset, device=self.device)

    def viewer_camera(self) -> Dict[str, np.ndarray]:
        """Where the viewer's camera starts: a camera of the default scene (see ``tool_view.viewer_pose``)."""
        entry = self.context_provider.entry(self.context_provider.default_scene)
        cameras = entry.dataset.cameras[torch.tensor(entry.image_indices)]
        return viewer_pose(cameras, self.train_dataparser_outputs.scene_box.aabb)

    def get_train_rays_per_batch(self) -> int:
        return self.config.train_num_rays_per_batch

    def get_eval_rays_per_batch(self) -> int:
        return self.config.eval_num_rays_per_batch

    # ------------------------------------------------------------------ batches
    def _scene_images(self, entry: SceneEntry) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """All images (uint8 RGBA) and depths of a scene, and each image's (h, w); cached per scene."""
        return self._images.get_or_compute(id(entry), lambda: self._load_scene_images(entry))

    def _load_scene_images(self, entry: SceneEntry) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        ds = entry.dataset
        rgba, depth = [], []
        for i in entry.image_indices:
            # alpha kept: the model composites targets on its own background (white, black or random)
            rgba.append((ds.get_rgba(i) * 255 + 0.5).to(torch.uint8))
            depth.append(ds.get_depth(i))
            camera = (int(ds.cameras.height[i]), int(ds.cameras.width[i]))
            for name, array in (("image", rgba[-1]), ("depth", depth[-1])):
                if array is not None and tuple(array.shape[:2]) != camera:
                    raise ValueError(f"{ds.image_filenames[i]}: the {name} is {array.shape[1]}x{array.shape[0]} "
                                     f"pixels but its camera says {camera[1]}x{camera[0]} (scene {entry.name})")  # fmt: skip
        return stack_padded(rgba, depth)  # rays are drawn inside each image's own size (``_ray_batch``)

    def _ray_batch(self, entry: SceneEntry, generator: RayGenerator, num_rays: int, training: bool) -> Tuple:
        images, depths, sizes = self._scene_images(entry)
        local = {g: i for i, g in enumerate(entry.image_indices)}
        time, source_set = None, None
        if training and entry.source_pool:  # a source set of the scene's pool (evaluation: the fixed sources)
            source_set = int(torch.randint(len(entry.source_pool), (1,), generator=self.generator))
        if entry.dynamic:  # one moment per step: rays of that time, encoded at that time
            time = draw_time(entry, self.generator)
        share = self.config.input_view_ray_share if training and not self.scene_mode else 0.0
        pick = pick_target_images(entry, local, num_rays, self.generator, source_set, time, share)
        h, w = images.shape[1:3]
        if (sizes == sizes[0]).all():
            ys = torch.randint(h, (num_rays,), generator=self.generator)
            xs = torch.randint(w, (num_rays,), generator=self.generator)
        else:  # each ray inside its own image's size
            size = sizes[pick].float()
            ys = (torch.rand(num_rays, generator=self.generator) * size[:, 0]).long().clamp_max(h - 1)
            xs = (torch.rand(num_rays, generator=self.generator) * size[:, 1]).long().clamp_max(w - 1)
        cam = torch.tensor(entry.image_indices)[pick]
        indices = torch.stack([cam, ys, xs], dim=-1)
        batch: Dict = {"image": images[pick, ys, xs].float() / 255.0, "indices": indices}
        if depths is not None:
            batch["depth"] = depths[pick, ys, xs]
        n_points = self.config.num_query_points if training else 0
        batch["context"] = self.context_provider.context(
            entry.scene_idx, n_points, self.generator, time=time, source_set=source_set,
            fractions=self.config.point_fractions,
        )  # fmt: skip
        ray_bundle: RayBundle = generator(indices.to(self.device))
        return ray_bundle, batch

    def _pick(self, scenes: List[SceneEntry]) -> SceneEntry:
        return scenes[int(torch.randint(len(scenes), (1,), generator=self.generator))]

    def _seed(self, step: int, stream: int) -> None:
        """Batches are a function of (seed, step, rank): a run resumed with --load-dir continues exactly."""
        self.generator.manual_seed(1_000_003 * step + 7_919 * self.local_rank_ + 104_729 * stream + 1234
                                   + 15_485_863 * self.run_seed)  # fmt: skip

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        self.train_count += 1
        if self.tool_view is not None:  # outside training: fresh rays of the default scene on every call
            return self.tool_view.next_rays()
        self._seed(step, 0)
        entry = self._pick(self.rank_scenes)
        return self._ray_batch(entry, self.train_ray_generator, self.config.train_num_rays_per_batch, True)

    def next_eval(self, step: int) -> Tuple[RayBundle, Dict]:
        self.eval_count += 1
        self._seed(step, 1)
        entry = self._pick(self.eval_scenes)
        gen = self.eval_ray_generator if entry.dataset is self.eval_context_dataset else self.train_ray_generator
        return self._ray_batch(entry, gen, self.config.eval_num_rays_per_batch, False)
