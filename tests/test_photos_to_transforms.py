"""Pose-free input (tnerf_ns.posing, scripts/photos_to_transforms.py): conventions, intrinsics at the photos' own
resolution, Sim(3) alignment, the token budget and anchored chunks, and the script on a tiny generated scene."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO

from tnerf_ns.backbone.preprocess import ImageInputError
from tnerf_ns.geometry import (
    extri_intri_to_pose_encoding,
    opencv_w2c_to_opengl_c2w,
    opengl_c2w_to_opencv_w2c,
    pose_encoding_to_extri_intri,
    quaternion_to_matrix,
)
from tnerf_ns.posing.cameras import (
    Similarity,
    fov_to_intrinsics,
    intrinsics_to_fov,
    normalise_world,
    pose_encoding_to_w2c,
    relative_to_anchor,
    to_homogeneous,
)
from tnerf_ns.posing.metrics import align_sim3, aligned_errors, mean_pose_baseline
from tnerf_ns.posing.predict import TokenBudgetError, load_photos, plan_chunks, predict


def random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return quaternion_to_matrix(q / q.norm(dim=-1, keepdim=True))


def orbit_c2w(n: int, radius: float = 2.0) -> torch.Tensor:
    """OpenGL cameras on a tilted ring looking at the origin."""
    angles = torch.linspace(0, 2 * math.pi, n + 1, dtype=torch.float64)[:-1]
    centres = torch.stack([radius * angles.cos(), radius * angles.sin(), 0.5 + 0.2 * angles.sin()], -1)
    back = centres / centres.norm(dim=-1, keepdim=True)  # OpenGL z points away from the target
    right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(n, 3), back)
    right = right / right.norm(dim=-1, keepdim=True)
    up = torch.linalg.cross(back, right)
    return torch.cat([torch.stack([right, up, back], -1), centres[..., None]], -1)


def test_opencv_w2c_to_opengl_c2w_round_trip_and_meaning():
    rot = random_rotations(5)
    w2c = torch.cat([rot, torch.randn(5, 3, 1, dtype=torch.float64)], -1)
    c2w = opencv_w2c_to_opengl_c2w(w2c)
    assert torch.allclose(opengl_c2w_to_opencv_w2c(c2w), w2c, atol=1e-10)
    # the camera centre is -R^T t, and OpenGL's -z (forward) is OpenCV's +z axis in the world
    assert torch.allclose(c2w[:, :, 3], -(rot.transpose(-1, -2) @ w2c[:, :, 3:])[..., 0], atol=1e-10)
    assert torch.allclose(-c2w[:, :, 2], rot[:, 2, :], atol=1e-10)
    assert torch.allclose(
        c2w[:, :, :3] @ c2w[:, :, :3].transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(5, 3, 3), atol=1e-10
    )


def test_intrinsics_at_the_original_resolution():
    """The field of view of the (uncropped) network image gives the photo's own focal lengths."""
    orig_hw = torch.tensor([[300.0, 600.0], [300.0, 600.0]])
    fx, fy = torch.tensor([500.0, 420.0]), torch.tensor([510.0, 400.0])
    k = torch.zeros(2, 3, 3)
    k[:, 0, 0], k[:, 1, 1], k[:, 2, 2] = fx, fy, 1
    pose = extri_intri_to_pose_encoding(torch.eye(3, 4).expand(2, 3, 4), k, (300, 600))
    net_hw = (70, 140)  # the same view resized for the network
    _, k_net = pose_encoding_to_extri_intri(pose, net_hw)
    intr = fov_to_intrinsics(pose[:, 7:9], orig_hw)
    assert torch.allclose(intr[:, 0], fx, rtol=1e-5) and torch.allclose(intr[:, 1], fy, rtol=1e-5)
    assert torch.allclose(intr[:, 2:], torch.tensor([300.0, 150.0]).expand(2, 2))
    assert torch.allclose(intr[:, 0], k_net[:, 0, 0] * 600 / 140, rtol=1e-5)  # = network focal x scale
    assert torch.allclose(intrinsics_to_fov(intr, orig_hw), pose[:, 7:9], atol=1e-6)


def test_umeyama_recovers_a_known_similarity():
    gt = orbit_c2w(8)
    rot = random_rotations(1, seed=3)[0]
    sim = Similarity(0.37, rot, torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64))
    inverse = Similarity(1 / sim.scale, rot.T, -(rot.T @ sim.translation) / sim.scale)
    pred = inverse.c2w(gt)  # what a network in another frame and scale would predict
    found = align_sim3(pred, gt)
    assert found.scale == pytest.approx(sim.scale, rel=1e-6)
    assert torch.allclose(found.rotation, rot, atol=1e-6) and torch.allclose(
        found.translation, sim.translation, atol=1e-6
    )
    fov = torch.full((8, 2), 50.0, dtype=torch.float64)
    errors = aligned_errors(pred, fov, gt, fov, scene_size=1.0)
    assert errors["rotation_deg"] < 1e-4 and errors["centre_rel"] < 1e-6 and errors["fov_deg"] == 0
    baseline = mean_pose_baseline(gt, fov, scene_size=1.0)
    assert baseline["rotation_deg"] > 30 and baseline["centre_rel"] > 1.0
    assert errors["auc30"] == pytest.approx(1.0) and baseline["auc30"] == 0.0


def test_normalised_world_is_z_up_centred_and_unit():
    c2w = orbit_c2w(6)
    tilt = random_rotations(1, seed=5)[0]
    c2w = Similarity(3.0, tilt, torch.tensor([5.0, 1.0, -2.0], dtype=torch.float64)).c2w(c2w)
    points = torch.randn(5000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3.0 @ tilt.T
    sim, box = normalise_world(c2w, points, (2, 98), 0.05)
    moved = sim.c2w(c2w)
    up = moved[:, :3, 1].mean(0)
    assert torch.allclose(up / up.norm(), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-6)
    assert float((box[1] - box[0]).max()) == pytest.approx(2.0) and torch.allclose(box[0], -box[1])
    inside = ((sim.points(points) >= box[0]) & (sim.points(points) <= box[1])).all(-1).float().mean()
    assert 0.9 < inside < 1.0  # robust percentiles: outliers stay outside


def test_token_budget_chunks_and_message():
    assert plan_chunks(10, 100, 1000, True, "--max-tokens") == [list(range(10))]
    chunks = plan_chunks(10, 100, 400, True, "--max-tokens")
    assert all(c[0] == 0 and len(c) <= 4 for c in chunks)
    assert sorted(i for c in chunks for i in c[1:]) == list(range(1, 10))
    with pytest.raises(TokenBudgetError, match=r"1000 tokens .* budget 400 .*--max-tokens 1000"):
        plan_chunks(10, 100, 400, False, "--max-tokens")
    with pytest.raises(TokenBudgetError, match="fewer than two views"):
        plan_chunks(10, 100, 150, True, "--max-tokens")


class FakeVGGT(torch.nn.Module):
    """Returns known cameras and depths in each pass's own frame (its first view) and its own scale, like VGGT."""

    patch_size, patch_start_idx = 14, 5
    camera_head = depth_head = True

    def __init__(self, w2c: torch.Tensor, depth: torch.Tensor, fov: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.w2c, self.depth, self.fov, self.calls = w2c, depth, fov, 0

    def forward(self, images, heads):
        idx = (images[:, 0, 0, 0] * 100).round().long()  # the view index is written into the pixels
        scale = 1.0 + 0.7 * self.calls  # every pass has its own scale
        self.calls += 1
        w2c = (to_homogeneous(self.w2c[idx]) @ torch.linalg.inv(to_homogeneous(self.w2c[idx[0]])))[:, :3]
        w2c[:, :, 3] *= scale
        k = torch.zeros(len(idx), 3, 3)
        k[:, 0, 0] = k[:, 1, 1] = 14 / math.tan(0.5)
        pose = extri_intri_to_pose_encoding(w2c, k, (28, 28))
        return {"pose_enc": pose[None], "depth": self.depth[idx][None, ..., None] * scale,
                "depth_conf": torch.full((1, len(idx), 28, 28), 2.0)}  # fmt: skip


def test_anchored_chunks_register_into_one_frame_and_scale():
    n = 7
    c2w = orbit_c2w(n).float()
    w2c_gt = opengl_c2w_to_opencv_w2c(c2w)
    depth = 1.0 + torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(1))
    model = FakeVGGT(w2c_gt, depth, torch.ones(n, 2))
    images = (torch.arange(n, dtype=torch.float32) / 100)[:, None, None, None].expand(n, 3, 28, 28)
    pred = predict(model, images, torch.full((n, 2), 28.0), max_tokens=3 * (4 + 5), chunking=True)
    assert len(pred.chunks) == 3 and all(c[0] == 0 for c in pred.chunks)
    expected = relative_to_anchor(w2c_gt.double()).float()
    assert torch.allclose(pred.w2c, expected, atol=1e-4)
    assert torch.allclose(pred.depth, depth, atol=1e-4)
    assert torch.allclose(pred.fov, torch.full((n, 2), 1.0), atol=1e-4)
    assert torch.allclose(pose_encoding_to_w2c(extri_intri_to_pose_encoding(w2c_gt, torch.eye(3).expand(n, 3, 3),
                                                                            (28, 28))), w2c_gt, atol=1e-5)  # fmt: skip


def test_bad_input_names_the_path(tmp_path):
    from tnerf_ns.posing import PosingConfig, photos_to_transforms

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageInputError, match=str(empty)):
        photos_to_transforms(empty, tmp_path / "out", PosingConfig(backbone="vggt-small", weights="random"))
    with pytest.raises(ImageInputError, match="not a folder"):
        photos_to_transforms(tmp_path / "missing", tmp_path / "out", PosingConfig(backbone="vggt-small"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageInputError, match=str(broken / "a.png")):
        load_photos([broken / "a.png"], 140)
    assert not (tmp_path / "out" / "transforms.json").exists()


def save_tiny_weights(folder: Path) -> Path:
    """A vggt-small checkpoint file (random init): the stand-in for the pre-trained weights."""
    from safetensors.torch import save_file

    from tnerf_ns.backbone import build_vggt

    path = folder / "vggt-small-test.safetensors"
    save_file({k: v.contiguous() for k, v in build_vggt("vggt-small", seed=1).state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/photos_to_transforms.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip


def test_script_writes_a_dataset_nerfstudio_reads(scenes, tiny_weights, tmp_path):
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    images = scenes / "synth_000000" / "images"
    out = tmp_path / "dataset"
    proc = run_script("--images", str(images), "--out", str(out), "--backbone", "vggt-small", "--weights",
                      str(tiny_weights), "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = json.loads((out / "transforms.json").read_text())
    record = meta["tnerf_photos"]
    assert record["backbone"] == "vggt-small" and record["weights"]["file"] == str(tiny_weights)
    assert len(record["weights"]["sha256"]) == 64 and record["points"] > 0
    assert len(meta["frames"]) == 6 and meta["ply_file_path"] == "sparse_pc.ply"
    for frame in meta["frames"]:
        assert (frame["w"], frame["h"], frame["cx"], frame["cy"]) == (32, 32, 16.0, 16.0)
        c2w = np.asarray(frame["transform_matrix"])
        assert c2w.shape == (4, 4) and np.allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-5)
        assert (out / frame["file_path"]).resolve() == (images / Path(frame["file_path"]).name).resolve()
    parser = NerfstudioDataParserConfig(data=out, orientation_method="none", center_method="none",
                                        auto_scale_poses=False, load_3D_points=True).setup()  # fmt: skip
    outputs = parser.get_dataparser_outputs("train")
    assert outputs.metadata["points3D_xyz"].shape == (record["points"], 3)
    assert outputs.metadata["points3D_rgb"].dtype == torch.uint8
    box = torch.tensor(record["scene_box"])
    assert float((box[1] - box[0]).max()) == pytest.approx(2.0, rel=1e-5)


def test_script_errors_are_one_clear_line(tmp_path):
    (tmp_path / "photos").mkdir()
    proc = run_script("--images", str(tmp_path / "photos"), "--out", str(tmp_path / "o"), "--backbone", "vggt-small",
                      "--weights", "random")  # fmt: skip
    assert proc.returncode == 2 and str(tmp_path / "photos") in proc.stdout and "no images" in proc.stdout


def test_photos_of_several_sizes_keep_their_own_resolution(tmp_path):
    from PIL import Image

    Image.new("RGB", (200, 100), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("RGBA", (90, 60), (0, 255, 0, 128)).save(tmp_path / "b.png")
    images, hw = load_photos([tmp_path / "a.png", tmp_path / "b.png"], 140)
    assert images.shape == (2, 3, 70, 140) and hw.tolist() == [[100.0, 200.0], [60.0, 90.0]]
    assert torch.allclose(images[1, :, 35, 70], torch.tensor([0.498, 1.0, 0.498]), atol=0.01)  # alpha over white
    intr = fov_to_intrinsics(torch.full((2, 2), math.radians(60)), hw)
    assert torch.allclose(intr[:, 2:], torch.tensor([[100.0, 50.0], [45.0, 30.0]]))


class GroundTruthVGGT(FakeVGGT):
    """Predicts a scene's true cameras (in the first view's frame, at a network scale of 0.3) for the whole folder."""

    def forward(self, images, heads):
        n = images.shape[0]
        w2c = relative_to_anchor(self.w2c.double()).float()
        w2c[:, :, 3] *= 0.3
        pose = extri_intri_to_pose_encoding(w2c, self.fov, self.hw)  # intrinsics of the photos' own size
        depth = torch.full((1, n, *images.shape[-2:], 1), 0.5)
        return {"pose_enc": pose[None], "depth": depth, "depth_conf": torch.full(depth.shape[:-1], 2.0)}


def test_true_cameras_come_out_of_the_whole_conversion(scenes, tmp_path, monkeypatch):
    """A network that predicts the true cameras: transforms.json holds them up to a similarity, intrinsics exact."""
    from tnerf_ns.posing import PosingConfig, convert, photos_to_transforms

    scene = scenes / "synth_000000"
    meta = json.loads((scene / "transforms.json").read_text())
    frames = sorted(meta["frames"], key=lambda f: f["file_path"])
    gt_c2w = torch.tensor([f["transform_matrix"] for f in frames], dtype=torch.float64)[:, :3]
    k = torch.tensor([[meta["fl_x"], 0, meta["cx"]], [0, meta["fl_y"], meta["cy"]], [0, 0, 1]]).expand(
        len(frames), 3, 3
    )
    model = GroundTruthVGGT(opengl_c2w_to_opencv_w2c(gt_c2w).float(), None, None)
    model.fov, model.hw = k.float(), (meta["h"], meta["w"])
    monkeypatch.setattr(convert, "load_model", lambda *args: model)
    out = photos_to_transforms(scene / "images", tmp_path / "o", PosingConfig(backbone="vggt-small", weights="random"))
    written = json.loads(out.read_text())
    assert [Path(f["file_path"]).name for f in written["frames"]] == [Path(f["file_path"]).name for f in frames]
    pred_c2w = torch.tensor([f["transform_matrix"] for f in written["frames"]], dtype=torch.float64)[:, :3]
    for f in written["frames"]:
        assert f["fl_x"] == pytest.approx(meta["fl_x"], rel=1e-4) and f["fl_y"] == pytest.approx(meta["fl_y"], rel=1e-4)
    fov = torch.zeros(len(frames), 2, dtype=torch.float64)
    errors = aligned_errors(pred_c2w, fov, gt_c2w, fov, scene_size=1.0)
    assert errors["rotation_deg"] < 0.05 and errors["centre_rel"] < 1e-4 and errors["auc30"] == 1.0
