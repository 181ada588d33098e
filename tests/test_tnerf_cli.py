"""The tnerf method end to end through nerfstudio's own command-line tools, on CPU, on generated data.

ns-train (multi-scene), ns-eval, ns-render dataset / camera-path / spiral, ns-viewer, and scene mode on a
single-scene dataset (blender-data) with zero iterations (pure feed-forward) and with refinement.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from helpers import BIN, REPO, TINY_MODEL, empty_psnr, env, ns, ns_here, refine_then_eval_prediction
from PIL import Image

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` skips it


def test_ns_eval_writes_metrics_and_real_images(trained, tmp_path):
    ns("ns-eval", "--load-config", str(trained), "--output-path", str(tmp_path / "eval.json"),
       "--render-output-path", str(tmp_path / "imgs"))  # fmt: skip
    results = json.loads((tmp_path / "eval.json").read_text())["results"]
    assert {"psnr", "ssim"} <= set(results) and np.isfinite(results["psnr"])
    # held-out scene: 6 views minus 4 source views
    images = sorted((tmp_path / "imgs").glob("eval_img_*.png"))
    assert len(images) == 2
    for image in images:  # [ground truth | prediction]: the prediction is a picture, not a blank canvas
        img = np.asarray(Image.open(image).convert("RGB")).astype(np.float32)
        prediction = img[:, img.shape[1] // 2 :]
        assert prediction.std() > 5.0 and prediction.min() < 200
    assert results["psnr"] > empty_psnr(trained)  # better than rendering nothing


def test_ns_render_dataset_and_camera_path(trained, scenes, tmp_path):
    ns("ns-render", "dataset", "--load-config", str(trained), "--output-path", str(tmp_path / "ds"), "--split",
       "test", "--rendered-output-names", "rgb", "depth")  # fmt: skip
    rgb = sorted((tmp_path / "ds" / "test" / "rgb").glob("*"))
    assert len(rgb) == 2 and (tmp_path / "ds" / "test" / "depth").is_dir()
    meta = json.loads((scenes / "synth_000000" / "transforms.json").read_text())
    path = {
        "camera_type": "perspective", "render_height": 24, "render_width": 32, "seconds": 1.0, "fps": 2,
        "camera_path": [
            {"camera_to_world": np.asarray(f["transform_matrix"]).reshape(-1).tolist(), "fov": 50.0, "aspect": 4 / 3}
            for f in meta["frames"][:2]
        ],
    }  # fmt: skip
    (tmp_path / "path.json").write_text(json.dumps(path))
    ns_here("ns-render", "camera-path", "--load-config", str(trained), "--camera-path-filename", str(tmp_path / "path.json"),
       "--output-path", str(tmp_path / "frames"), "--output-format", "images")  # fmt: skip
    frames = sorted((tmp_path / "frames").glob("*"))
    assert len(frames) == 2 and np.asarray(Image.open(frames[0])).shape[:2] == (24, 32)
    ns_here("ns-render", "spiral", "--load-config", str(trained), "--output-path", str(tmp_path / "spiral.mp4"),
       "--seconds", "1", "--frame-rate", "3")  # fmt: skip
    assert (tmp_path / "spiral.mp4").stat().st_size > 0


def test_ns_viewer_serves_the_trained_scene(trained):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(BIN / "ns-viewer"), "--load-config", str(trained), "--viewer.websocket-host", "127.0.0.1",
         "--viewer.websocket-port", str(port)],
        cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        status = None
        while time.time() < deadline and status is None:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2).status
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(1)
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_viewer_camera_renders_the_default_scene(trained):
    """What the viewer does for a browser camera (no scene index, a cam_idx and a time): a real image."""
    import torch
    from nerfstudio.cameras.cameras import CameraType
    from nerfstudio.utils.eval_utils import eval_setup
    from nerfstudio.viewer.utils import CameraState, get_camera

    _, pipeline, _, _ = eval_setup(trained, test_mode="test")
    c2w = pipeline.datamanager.eval_dataset.cameras.camera_to_worlds[0]
    state = CameraState(fov=0.8, aspect=1.0, c2w=c2w, camera_type=CameraType.PERSPECTIVE, time=0.0, idx=0)
    camera = get_camera(state, 24, 24)
    with torch.no_grad():
        out = pipeline.model.get_outputs_for_camera(camera.to(pipeline.device))
    assert out["rgb"].shape == (24, 24, 3) and torch.isfinite(out["rgb"]).all()
    assert out["accumulation"].shape == (24, 24, 1)


def test_scene_mode_feed_forward_and_refined(trained, scenes, tmp_path):
    """A single-scene Blender-format dataset, starting from the trained head: 0 iterations, then a few more."""
    scene = scenes / "synth_000003"
    common = ["--machine.device-type", "cpu", "--output-dir", str(tmp_path), "--vis", "tensorboard",
              "--pipeline.model.pretrained", str(trained.parent / "nerfstudio_models"), *TINY_MODEL]  # fmt: skip
    refine_then_eval_prediction(common, scene, tmp_path)
