"""Work-arounds of ``tnerf_ns.compat`` for nerfstudio 1.1.5."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image


def blender_scene(folder, n=3, size=16):
    """A minimal Blender-layout scene (transforms_train.json, RGBA images) that nerfstudio's parser reads."""
    (folder / "train").mkdir(parents=True)
    frames = []
    for i in range(n):
        Image.fromarray(np.full((size, size, 4), 200, np.uint8)).save(folder / "train" / f"r_{i}.png")
        angle = 2 * np.pi * i / n
        c2w = np.eye(4)
        c2w[:3, 3] = [4 * np.cos(angle), 4 * np.sin(angle), 0.5]
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    (folder / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.69, "frames": frames}))
    return folder


def test_blender_data_intrinsics_are_float32_and_spiral_paths_work(tmp_path):
    from nerfstudio.cameras.camera_paths import get_spiral_path
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    import tnerf_ns.pipeline  # noqa: F401  (applies the nerfstudio patches, as every ns-* command does)

    cameras = BlenderDataParserConfig(data=blender_scene(tmp_path / "scene")).setup().get_dataparser_outputs().cameras
    assert {cameras.fx.dtype, cameras.fy.dtype, cameras.cx.dtype, cameras.cy.dtype} == {torch.float32}
    path = get_spiral_path(cameras[0:1], steps=4, radius=0.5)  # ns-render spiral: failed on float64 fx before
    assert path.camera_to_worlds.shape == (4, 3, 4) and torch.isfinite(path.camera_to_worlds).all()


def test_nerfstudio_models_build_without_lpips_weights(monkeypatch):
    """Offline, nerfacto's constructor failed on LPIPS's AlexNet download; it now gets a NaN metric."""
    import torchmetrics.image.lpip as lpip_module
    from nerfstudio.data.scene_box import SceneBox
    from nerfstudio.models.nerfacto import NerfactoModelConfig

    import tnerf_ns.pipeline  # noqa: F401  (applies the nerfstudio patches, as every ns-* command does)

    def no_weights(*args, **kwargs):
        raise OSError("no AlexNet weights here")

    monkeypatch.setattr(lpip_module, "_NoTrainLpips", no_weights)  # what the real metric builds first
    model = NerfactoModelConfig(implementation="torch").setup(
        scene_box=SceneBox(aabb=torch.tensor([[-1.0, -1, -1], [1, 1, 1]])), num_train_data=2, metadata={}
    )
    assert torch.isnan(model.lpips(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)))

    from tnerf_ns.models.image_metrics import ImageMetrics

    metrics = ImageMetrics(compute_lpips=True)(torch.rand(8, 8, 3), torch.rand(8, 8, 3))
    assert "lpips" not in metrics and {"psnr", "ssim"} <= set(metrics)  # T-NeRF's own leave it out, not NaN


def test_external_method_placeholders_are_listed_without_inspecting_the_stack(monkeypatch):
    import inspect

    from nerfstudio.configs import external_methods

    import tnerf_ns.pipeline  # noqa: F401  (applies the patches)

    def no_stack(*args, **kwargs):
        raise AssertionError("inspect.stack() called while listing the external methods")

    monkeypatch.setattr(inspect, "stack", no_stack)
    configs, _ = external_methods.get_external_methods()
    assert len(configs) > 10
    # made anywhere else (the command line picked an external method): nerfstudio's own code still runs
    monkeypatch.undo()
    monkeypatch.setattr(external_methods.Confirm, "ask", lambda *a, **k: False)
    method = next(iter(configs.values())).method
    with pytest.raises(SystemExit):
        external_methods.ExternalMethodDummyTrainerConfig(method_name="x", method=method)
