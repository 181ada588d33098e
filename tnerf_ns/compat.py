"""Every work-around for a nerfstudio / torch / numpy version, in one place, each named for what it fixes.

``tnerf_ns/__init__.py`` applies the ones that need no nerfstudio import (checkpoint loading, ffmpeg, a warning
filter); :func:`apply_nerfstudio_patches` (called when the pipeline module is imported) applies the rest. Each is
idempotent. Remove an entry once the version it works around is no longer supported.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch


def allow_numpy_scalars_in_checkpoints() -> None:
    """torch >= 2.6 (``weights_only=True`` by default) with nerfstudio 1.1.5 checkpoints.

    nerfstudio's ExponentialDecayScheduler stores numpy float64 values in the scheduler state; without these safe
    globals ``ns-eval``, ``ns-render``, ``ns-viewer`` and ``--load-dir`` fail with "Unsupported global". Only numpy
    scalar/dtype reconstruction is allowed: no arbitrary code.
    """
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is None:  # torch < 2.4 does not restrict unpickling by default
        return
    try:  # numpy >= 2
        from numpy._core.multiarray import scalar
    except ImportError:
        from numpy.core.multiarray import scalar
    allowed = [scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    allowed += [getattr(dtypes, n) for n in ("Float64DType", "Float32DType", "Int64DType") if hasattr(dtypes, n)]
    add_safe_globals(allowed)
    # A checkpoint names the scalar as the numpy that saved it did (numpy.core in 1.x, numpy._core in 2.x): allow the
    # other spelling too, so a run trained under one numpy loads under the other (torch >= 2.5 takes (object, name)).
    own = f"{scalar.__module__}.{scalar.__name__}"
    other = [
        (scalar, name) for name in ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar") if name != own
    ]
    try:
        add_safe_globals(other)
    except (TypeError, AttributeError):  # torch 2.4: names only
        pass


def provide_ffmpeg() -> None:
    """nerfstudio's ``ns-render`` videos need an ``ffmpeg`` executable on PATH: use the one in the imageio-ffmpeg
    wheel if the machine has none (``make setup`` also links it into the virtual environment)."""
    if shutil.which("ffmpeg"):
        return
    try:
        import imageio_ffmpeg

        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # wheel missing or its binary unusable: nerfstudio then reports ffmpeg missing itself
        return
    bin_dir = Path(tempfile.gettempdir()) / f"tnerf_ns-bin-{os.getuid()}"
    try:
        bin_dir.mkdir(exist_ok=True)
        link = bin_dir / "ffmpeg"
        if not link.exists():
            link.symlink_to(exe)
    except OSError:
        return
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def silence_list_indexing_warning() -> None:
    """nerfstudio 1.1.5 indexes tensors with lists, which torch >= 2.9 warns about on every ray batch."""
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")


def allow_zero_iteration_runs() -> None:
    """nerfstudio 1.1.5's console stats divide by ``max_iter`` and read the last step even when no step ran, so
    ``--max-num-iterations 0`` (pure feed-forward scene mode) crashes after saving its checkpoint. Skip the stats
    line in that case; everything else is unchanged."""
    from nerfstudio.utils import writer

    original = writer.LocalWriter._print_stats
    if getattr(original, "tnerf_guard", False):
        return

    def guarded(self, latest_map, padding=" "):
        if not writer.GLOBAL_BUFFER.get("max_iter") or "step" not in writer.GLOBAL_BUFFER:
            return None
        return original(self, latest_map, padding)

    guarded.tnerf_guard = True  # type: ignore[attr-defined]
    writer.LocalWriter._print_stats = guarded


def blender_box_follows_scale_factor(dataparser_config, scene_box):
    """nerfstudio 1.1.5's ``blender-data`` multiplies the cameras by ``--scale-factor`` but keeps its scene box at
    ``[-1.5, 1.5]^3``, so the box T-NeRF predicts in would cover a different part of the scene. Scale the box the
    model uses along with the cameras: ``--scale-factor`` then changes units only."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.scene_box import SceneBox

    from tnerf_ns.scenes.render_dataset import recorded_world_box

    if not isinstance(dataparser_config, BlenderDataParserConfig):
        return scene_box
    scale = float(dataparser_config.scale_factor)
    # scenes from scripts/render_scenes.py record their world box: predict in it rather than in Blender's fixed box
    box = recorded_world_box(Path(dataparser_config.data))
    if box is not None:
        return SceneBox(aabb=torch.tensor(box, dtype=torch.float32) * scale)
    return SceneBox(aabb=scene_box.aabb * scale) if scale != 1.0 else scene_box


def blender_intrinsics_in_float32() -> None:
    """nerfstudio 1.1.5's ``blender-data`` gives float64 ``fx``/``fy`` (a numpy focal length), and ``ns-render spiral``
    then fails in ``torch.cross`` (float and double) for every method: cast the intrinsics to float32."""
    from nerfstudio.data.dataparsers.blender_dataparser import Blender

    original = Blender._generate_dataparser_outputs
    if getattr(original, "tnerf_patched", False):
        return

    def generate(self, split="train", **kwargs):
        outputs = original(self, split, **kwargs)
        for name in ("fx", "fy", "cx", "cy"):
            setattr(outputs.cameras, name, getattr(outputs.cameras, name).float())
        return outputs

    generate.tnerf_patched = True
    Blender._generate_dataparser_outputs = generate


def models_build_without_lpips_weights() -> None:
    """nerfstudio's models (nerfacto, splatfacto, ...) build LPIPS in their constructors, which downloads AlexNet's
    weights: offline, ``ns-train nerfacto`` stopped before its first step. Where the weights cannot be had, the
    model gets a metric that reports NaN (with a warning); training, PSNR and SSIM are unaffected."""
    import torch
    import torchmetrics.image.lpip as lpip_module
    from nerfstudio.utils.rich_utils import CONSOLE

    real = lpip_module.LearnedPerceptualImagePatchSimilarity
    if getattr(real, "tnerf_patched", False):
        return

    class NaNMetric(torch.nn.Module):
        available = False  # T-NeRF's own metrics (``ImageMetrics``) leave LPIPS out instead of reporting NaN

        def forward(self, *images):
            return torch.tensor(float("nan"))

    def lpips_or_nan(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        except Exception as err:  # offline without cached weights
            CONSOLE.print(f"[yellow]LPIPS unavailable: its AlexNet weights could not be loaded ({type(err).__name__})")
            return NaNMetric()

    lpips_or_nan.tnerf_patched = True
    lpip_module.LearnedPerceptualImagePatchSimilarity = lpips_or_nan  # the models import it when they are built


def frame_the_scene_in_the_viewer() -> None:
    """nerfstudio 1.1.5's viewer leaves each browser at viser's default camera, about 0.5 units from the origin:
    inside the box of most scenes, very close to the object. When the data manager suggests a pose
    (``viewer_camera()``: T-NeRF's returns a camera of the default scene), every newly connected browser starts
    there, orbiting the scene centre; pipelines without that method (other methods) are unaffected. Applied only
    where the viewer is already imported (ns-viewer, ns-train import it before building the data manager, which
    calls this): importing it costs seconds elsewhere."""
    viewer = sys.modules.get("nerfstudio.viewer.viewer")
    if viewer is None:
        return

    original = viewer.Viewer.init_scene
    if getattr(original, "tnerf_guard", False):
        return

    def init_scene(self, train_dataset, train_state, eval_dataset=None):
        original(self, train_dataset, train_state, eval_dataset)
        suggest = getattr(self.pipeline.datamanager, "viewer_camera", None)
        if suggest is None:
            return
        pose = {k: v * viewer.VISER_NERFSTUDIO_SCALE_RATIO if k in ("position", "look_at") else v
                for k, v in suggest().items()}  # fmt: skip

        def frame(client) -> None:  # called once the browser has sent its first camera
            with client.atomic():
                client.camera.fov = float(pose["fov"])
                client.camera.up_direction = pose["up"]
                client.camera.position = pose["position"]
                client.camera.look_at = pose["look_at"]

        self.viser_server.on_client_connect(frame)

    init_scene.tnerf_guard = True  # type: ignore[attr-defined]
    viewer.Viewer.init_scene = init_scene


def batches_follow_the_machine_seed() -> None:
    """nerfstudio seeds torch with ``--machine.seed`` but hands the seed to nobody; T-NeRF's batches (scenes, source
    sets, rays) come from generators re-seeded every step so that resumed runs continue exactly. Give the run's seed
    to the data manager config (``seed``, when left at None) before the pipeline is built, so that the batches
    change with ``--machine.seed`` as the weights' initialisation does."""
    from nerfstudio.engine import trainer

    original = trainer.Trainer.setup
    if getattr(original, "tnerf_guard", False):
        return

    def setup(self, *args, **kwargs):
        datamanager = self.config.pipeline.datamanager
        if hasattr(datamanager, "seed") and datamanager.seed is None:
            datamanager.seed = self.config.machine.seed
        return original(self, *args, **kwargs)

    setup.tnerf_guard = True  # type: ignore[attr-defined]
    trainer.Trainer.setup = setup


def list_external_methods_without_reading_sources() -> None:
    """nerfstudio 1.1.5 builds a placeholder config for each of its 26 not-installed external methods at every CLI
    start (after the plugins are discovered), and each placeholder's ``__post_init__`` calls ``inspect.stack()`` only
    to read its caller's name: that reads the source of every frame and scans ``sys.modules`` per frame, 1.5-3 s of
    every ``ns-train`` / ``ns-eval`` / ``ns-render`` start here. Read the caller's name from the frame instead; a
    placeholder made from the command line (``ns-train <external method>``) still runs nerfstudio's own code."""
    from nerfstudio.configs import external_methods

    original = external_methods.ExternalMethodDummyTrainerConfig.__post_init__
    if getattr(original, "tnerf_guard", False):
        return

    def __post_init__(self):
        # frames: this function, the dataclass __init__, whoever built the placeholder
        if sys._getframe(2).f_code.co_name == "get_external_methods":
            return
        original(self)

    __post_init__.tnerf_guard = True  # type: ignore[attr-defined]
    external_methods.ExternalMethodDummyTrainerConfig.__post_init__ = __post_init__


def apply_base_patches() -> None:
    """The patches that need no nerfstudio import (applied when ``tnerf_ns`` is imported)."""
    allow_numpy_scalars_in_checkpoints()
    provide_ffmpeg()
    silence_list_indexing_warning()


def apply_nerfstudio_patches() -> None:
    """The patches of nerfstudio itself (applied when the T-NeRF pipeline is imported)."""
    allow_zero_iteration_runs()
    blender_intrinsics_in_float32()
    models_build_without_lpips_weights()
    frame_the_scene_in_the_viewer()
    batches_follow_the_machine_seed()
    list_external_methods_without_reading_sources()
