"""What nerfstudio's tools (ns-export, the viewer) see of the data manager outside training: the default scene."""

from __future__ import annotations

import numpy as np
import torch

from tnerf_ns.data.multiscene_dataparser import TNeRFScenesDataParserConfig
from tnerf_ns.datamanagers.tnerf_datamanager import TNeRFDataManagerConfig


def data_manager(data, test_mode: str, **kwargs):
    config = TNeRFDataManagerConfig(dataparser=TNeRFScenesDataParserConfig(data=data), num_source_views=2,
                                    train_num_rays_per_batch=32, num_query_points=16, **kwargs)  # fmt: skip
    return config.setup(device="cpu", test_mode=test_mode)


def test_tools_see_the_default_scene_with_fresh_rays_per_call(scenes):
    dm = data_manager(scenes, "test")
    default = dm.context_provider.default_scene
    entry = dm.context_provider.entry(default)
    assert entry.name == "synth_000003"  # the first held-out scene
    # the training split tools read (tsdf renders its cameras, the viewer draws them) is that scene only
    cams = dm.train_dataset.cameras
    assert len(dm.train_dataset) == len(entry.image_indices) and (cams.metadata["scene_idx"] == default).all()
    assert dm.train_dataparser_outputs.cameras is dm.train_dataset._dataparser_outputs.cameras
    # the exporters resize batches through train_pixel_sampler and call next_train(0) repeatedly
    dm.train_pixel_sampler.num_rays_per_batch = 100
    first, _ = dm.next_train(0)
    second, _ = dm.next_train(0)
    assert first.origins.shape == (100, 3) and not torch.equal(first.directions, second.directions)
    assert (first.metadata["scene_idx"] == default).all()  # rendered with the default scene's context
    # training is unchanged: all training scenes, batches a function of the step
    train = data_manager(scenes, "val")
    assert train.tool_view is None and train.train_pixel_sampler is None
    assert len(train.train_dataset) > len(dm.train_dataset)
    a, b = train.next_train(3)[0], train.next_train(3)[0]
    assert torch.equal(a.directions, b.directions)


def test_viewer_starts_at_a_camera_of_the_default_scene(scenes):
    dm = data_manager(scenes, "test")
    pose = dm.viewer_camera()
    centres = dm.train_dataset.cameras.camera_to_worlds[:, :, 3].double().numpy()
    assert np.allclose(pose["position"], centres[0])
    assert np.all(np.abs(pose["look_at"]) <= 1.0 + 1e-6)  # looks into the scene box
    assert abs(np.linalg.norm(pose["up"]) - 1) < 1e-6 and 0.1 < pose["fov"] < 3.0
