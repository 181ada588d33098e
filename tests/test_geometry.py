"""Camera conventions: VGGT pose encoding <-> OpenCV extrinsics/intrinsics <-> nerfstudio camera-to-world."""

from __future__ import annotations

import math

import torch

from tnerf_ns.geometry import (
    extri_intri_to_pose_encoding,
    invert_rigid,
    matrix_to_quaternion,
    opencv_w2c_to_opengl_c2w,
    opengl_c2w_to_opencv_w2c,
    pose_encoding_to_extri_intri,
    pose_encoding_to_nerfstudio,
    quaternion_to_matrix,
    umeyama_similarity,
    unproject_depth,
)


def random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return quaternion_to_matrix(q)


def test_quaternion_matrix_round_trip_and_orthonormality():
    rot = random_rotations(500)
    eye = torch.eye(3, dtype=rot.dtype).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye)
    assert torch.allclose(torch.det(rot), torch.ones(500, dtype=rot.dtype))
    q = matrix_to_quaternion(rot)
    assert (q[:, 3] >= 0).all()
    torch.testing.assert_close(quaternion_to_matrix(q), rot)
    # 180-degree rotations (w = 0) are the numerically hard branch
    flips = torch.diag_embed(torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64))
    torch.testing.assert_close(quaternion_to_matrix(matrix_to_quaternion(flips)), flips)


def test_unnormalised_quaternion_gives_the_same_rotation():
    q = torch.tensor([0.1, -0.3, 0.2, 0.9], dtype=torch.float64)
    torch.testing.assert_close(quaternion_to_matrix(q), quaternion_to_matrix(3.7 * q))


def test_known_rotation_about_z():
    half = math.pi / 4  # 90 degrees about z
    q = torch.tensor([0.0, 0.0, math.sin(half), math.cos(half)], dtype=torch.float64)
    expected = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(quaternion_to_matrix(q), expected)


def test_pose_encoding_round_trip_and_intrinsics():
    g = torch.Generator().manual_seed(1)
    enc = torch.cat(
        [
            torch.randn(2, 5, 3, generator=g),
            torch.nn.functional.normalize(torch.randn(2, 5, 4, generator=g), dim=-1),
            0.4 + torch.rand(2, 5, 2, generator=g),
        ],
        dim=-1,
    ).double()
    enc[..., 3:7] = torch.where(enc[..., 6:7] < 0, -enc[..., 3:7], enc[..., 3:7])
    extr, intr = pose_encoding_to_extri_intri(enc, (60, 80))
    assert extr.shape == (2, 5, 3, 4) and intr.shape == (2, 5, 3, 3)
    torch.testing.assert_close(intr[..., 0, 2], torch.full((2, 5), 40.0, dtype=torch.float64))
    torch.testing.assert_close(intr[..., 1, 2], torch.full((2, 5), 30.0, dtype=torch.float64))
    torch.testing.assert_close(2 * torch.atan(30.0 / intr[..., 1, 1]), enc[..., 7])
    torch.testing.assert_close(extri_intri_to_pose_encoding(extr, intr, (60, 80)), enc)


def test_zero_fov_stays_finite():
    enc = torch.zeros(1, 9)
    enc[0, 6] = 1.0
    _, intr = pose_encoding_to_extri_intri(enc, (14, 14))
    assert torch.isfinite(intr).all()


def test_opencv_opengl_round_trip_and_axes():
    rot = random_rotations(20, seed=3)
    t = torch.randn(20, 3, 1, dtype=torch.float64)
    w2c = torch.cat([rot, t], dim=-1)
    c2w = opencv_w2c_to_opengl_c2w(w2c)
    torch.testing.assert_close(opengl_c2w_to_opencv_w2c(c2w), w2c)
    # the camera centre is the same point in both conventions
    torch.testing.assert_close(c2w[..., 3], invert_rigid(w2c)[..., 3])
    # OpenCV looks along +z; OpenGL along -z: the viewing directions agree in world space
    torch.testing.assert_close(-c2w[..., :3, 2], invert_rigid(w2c)[..., :3, 2])
    # and OpenCV's y (down) is OpenGL's -y (up)
    torch.testing.assert_close(-c2w[..., :3, 1], invert_rigid(w2c)[..., :3, 1])


def test_identity_pose_encoding_is_an_identity_camera():
    enc = torch.tensor([[0.0, 0, 0, 0, 0, 0, 1, 1.0, 1.0]])
    c2w, _ = pose_encoding_to_nerfstudio(enc, (10, 10))
    torch.testing.assert_close(c2w[0], torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0]]))


def test_unproject_depth_projects_back_to_pixels():
    rot = random_rotations(1, seed=5)[0]
    w2c = torch.cat([rot, torch.tensor([[0.2], [-0.1], [3.0]], dtype=torch.float64)], dim=-1)
    intr = torch.tensor([[50.0, 0, 16], [0, 55, 12], [0, 0, 1]], dtype=torch.float64)
    depth = 1.0 + torch.rand(24, 32, dtype=torch.float64)
    pts = unproject_depth(depth, w2c, intr)
    cam = pts @ w2c[:, :3].T + w2c[:, 3]
    torch.testing.assert_close(cam[..., 2], depth)
    pix = cam @ intr.T
    uv = pix[..., :2] / pix[..., 2:]
    v, u = torch.meshgrid(torch.arange(24.0) + 0.5, torch.arange(32.0) + 0.5, indexing="ij")
    torch.testing.assert_close(uv, torch.stack([u, v], -1).double())


def test_umeyama_recovers_a_similarity():
    rot = random_rotations(1, seed=7)[0]
    src = torch.randn(50, 3, dtype=torch.float64)
    dst = 2.5 * src @ rot.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    s, r, t = umeyama_similarity(src, dst)
    torch.testing.assert_close(s, torch.tensor(2.5, dtype=torch.float64))
    torch.testing.assert_close(r, rot)
    torch.testing.assert_close(t, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
