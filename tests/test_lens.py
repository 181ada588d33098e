"""Lens distortion of source views: nerfstudio's OpenCV model, undistortion to pinhole images, refused camera models,
and the context provider's undistorted sources."""

import json
import math

import numpy as np
import pytest
import torch
from nerfstudio.cameras import camera_utils
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from PIL import Image

from tnerf_ns.data.dataset import TNeRFDataset
from tnerf_ns.data.lens import (
    SUPPORTED_CAMERA_TYPES,
    UnsupportedCameraError,
    check_camera_model,
    distort_normalised,
    has_distortion,
    undistort_image,
    undistorted_view,
)
from tnerf_ns.datamanagers.context import ContextProvider, SceneEntry

PARAMS = torch.tensor([0.3, -0.05, 0.01, 0.0, 0.002, -0.003])  # strong pincushion, some tangential
H = W = 128
FX = FY = 100.0
CX, CY = 64.0, 63.0


def pattern(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A smooth pinhole image [3, ...] evaluated at continuous pixel positions (pixel centres at +0.5)."""
    two_pi = 2 * math.pi
    return torch.stack(
        [
            0.5 + 0.4 * torch.sin(two_pi * u / 32),
            0.5 + 0.4 * torch.cos(two_pi * v / 28),
            0.5 + 0.2 * torch.sin(two_pi * (u + v) / 40),
        ]
    )


def pixel_centres(h: int, w: int):
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return u, v


def distorted_photo(params: torch.Tensor) -> torch.Tensor:
    """The photo a lens with ``params`` takes of ``pattern``: each photo pixel sees the pinhole image at its
    undistorted position (nerfstudio's inverse, as its cameras cast rays)."""
    u, v = pixel_centres(H, W)
    xyd = torch.stack([(u - CX) / FX, (v - CY) / FY], dim=-1)
    xy = camera_utils.radial_and_tangential_undistort(xyd.reshape(-1, 2), params).reshape(H, W, 2)
    return pattern(xy[..., 0] * FX + CX, xy[..., 1] * FY + CY)


def test_distort_is_the_inverse_of_nerfstudios_undistort():
    xy = torch.rand(500, 2, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.6
    for params in (PARAMS, torch.tensor([-0.25, 0.05, 0.0, 0.001, -0.001, 0.002])):
        back = camera_utils.radial_and_tangential_undistort(distort_normalised(xy, params), params)
        assert torch.allclose(back, xy, atol=1e-5)
    # per-point parameters broadcast
    per_point = PARAMS.expand(500, 6) * torch.linspace(0, 1, 500)[:, None]
    back = camera_utils.radial_and_tangential_undistort(distort_normalised(xy, per_point), per_point)
    assert torch.allclose(back, xy, atol=1e-5)


def test_undistorting_a_distorted_photo_recovers_the_pinhole_image():
    corner = torch.tensor([[(0.5 - CX) / FX, (0.5 - CY) / FY]])
    assert ((distort_normalised(corner, PARAMS) - corner).abs() * FX).max() >= 10  # at least 10 px at the corners
    photo = distorted_photo(PARAMS)
    u, v = pixel_centres(H, W)
    pinhole = pattern(u, v)
    assert (photo - pinhole).abs().mean() > 0.05  # the distortion shows

    out, valid = undistort_image(photo, FX, FY, CX, CY, PARAMS)
    assert out.shape == photo.shape and valid.shape == (H, W) and valid.dtype == torch.bool
    assert not valid[0, 0] and not valid[-1, -1]  # pincushion: the corners are empty borders
    assert valid[H // 2, W // 2] and valid.float().mean() > 0.5
    interior = valid.clone()
    interior[:2], interior[-2:], interior[:, :2], interior[:, -2:] = False, False, False, False
    error = (out - pinhole).abs()[:, interior]
    assert error.mean() < 0.01 and error.max() < 0.06
    # empty borders replicate the photo's edge: values the photo has, nothing new
    assert torch.isfinite(out).all() and out.min() >= photo.min() - 1e-6 and out.max() <= photo.max() + 1e-6


def test_a_batch_of_views_uses_each_views_intrinsics_and_parameters():
    photo = distorted_photo(PARAMS)
    other = torch.tensor([-0.2, 0.02, 0.0, 0.0, 0.0, 0.0])
    batch = torch.stack([photo, photo.flip(-1)])
    out, valid = undistort_image(
        batch, torch.tensor([FX, 90.0]), FY, torch.tensor([CX, 60.0]), CY, torch.stack([PARAMS, other])
    )
    one, one_valid = undistort_image(photo, FX, FY, CX, CY, PARAMS)
    two, two_valid = undistort_image(photo.flip(-1), 90.0, FY, 60.0, CY, other)
    assert torch.allclose(out[0], one) and torch.allclose(out[1], two)
    assert torch.equal(valid, torch.stack([one_valid, two_valid]))


def test_no_distortion_returns_the_same_tensor():
    photo = distorted_photo(PARAMS)
    out, valid = undistort_image(photo, FX, FY, CX, CY, torch.zeros(6))
    assert out is photo and valid.all() and valid.shape == (H, W)
    assert not has_distortion(torch.zeros(3, 6)) and not has_distortion(None) and has_distortion(PARAMS)
    # in a batch, a view without distortion is copied bitwise next to one that is undistorted
    batch = torch.stack([photo, photo])
    out, valid = undistort_image(batch, FX, FY, CX, CY, torch.stack([torch.zeros(6), PARAMS]))
    assert torch.equal(out[0], photo) and valid[0].all() and not torch.equal(out[1], photo)


def test_depth_is_resampled_nearest():
    depth = torch.randint(1, 5, (1, H, W)).float()
    out, _ = undistort_image(depth, FX, FY, CX, CY, PARAMS, mode="nearest")
    assert set(out.unique().tolist()) <= set(depth.unique().tolist())


def cameras(n: int = 2, **kw) -> Cameras:
    return Cameras(camera_to_worlds=torch.eye(4)[:3][None].repeat(n, 1, 1), fx=FX, fy=FY, cx=CX, cy=CY, width=W,
                   height=H, **kw)  # fmt: skip


@pytest.mark.parametrize("model", [CameraType.FISHEYE, CameraType.EQUIRECTANGULAR])
def test_other_camera_models_are_refused_by_name(model):
    with pytest.raises(UnsupportedCameraError, match=rf"data/fox: camera model {model.name} is not supported") as err:
        check_camera_model(cameras(camera_type=model), "data/fox")
    assert "PERSPECTIVE" in str(err.value) and isinstance(err.value, ValueError)
    assert SUPPORTED_CAMERA_TYPES == (CameraType.PERSPECTIVE,)
    check_camera_model(cameras(distortion_params=PARAMS.expand(2, 6)), "data/fox")  # OpenCV distortion is fine


def tiny_dataset(tmp_path, params: torch.Tensor) -> TNeRFDataset:
    """Three 128 px RGBA photos of ``pattern`` (with depth), cameras with ``params`` [3, 6]."""
    files, depths = [], []
    for i in range(3):
        rgb = distorted_photo(params[i]) if has_distortion(params[i]) else pattern(*pixel_centres(H, W))
        rgb = rgb.roll(i * 7, -1)  # views that differ (view 0 as taken)
        alpha = torch.ones(1, H, W)
        alpha[:, :, :10] = 0.0
        rgba = (torch.cat([rgb, alpha]).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(rgba).save(files[-1])
        depths.append(tmp_path / f"{i}.npy")
        np.save(depths[-1], np.random.default_rng(i).integers(1, 6, (H, W)).astype(np.float32))
    meta = {"depth_filenames": depths, "depth_scales": [1.0] * 3}
    return TNeRFDataset(DataparserOutputs(files, cameras(3, distortion_params=params), metadata=meta))


def test_the_context_provider_undistorts_distorted_sources_only(tmp_path):
    params = torch.stack([PARAMS, torch.zeros(6), torch.tensor([-0.2, 0.03, 0.0, 0.0, 0.001, 0.0])])
    ds = tiny_dataset(tmp_path, params)
    entry = SceneEntry(0, "scene", ds, [0, 1, 2], [0, 1, 2])
    on = ContextProvider([entry], undistort=True).context(0)
    off = ContextProvider([entry], undistort=False).context(0)
    assert torch.equal(on.intrinsics, off.intrinsics)  # same intrinsics: only the pixels move
    assert torch.equal(on.images[1], off.images[1]) and torch.equal(on.depth[1], off.depth[1])  # no distortion
    for i in (0, 2):
        rgba = undistorted_view(ds.get_rgba(i), ds.cameras, i, "bilinear")
        assert torch.allclose(on.alpha[i], rgba[..., 3]) and not torch.allclose(on.alpha[i], off.alpha[i])
        assert (on.images[i] - off.images[i]).abs().mean() > 0.02
        assert set(on.depth[i].unique().tolist()) <= set(off.depth[i].unique().tolist())
        assert not torch.equal(on.depth[i], off.depth[i])
    # the undistorted view 0 is the pinhole pattern again, inside its valid part
    pinhole = pattern(*pixel_centres(H, W))
    _, valid = undistort_image(ds.get_rgba(0).permute(2, 0, 1), FX, FY, CX, CY, PARAMS)
    valid[:, :14] = False  # the transparent strip (composited on the background)
    assert (on.images[0] - pinhole).abs()[:, valid].mean() < 0.015
    assert on.key != off.key and on.key[-1] == "undistorted"


def nerfstudio_folder(tmp_path, camera_model: str, k1: float):
    """A five-photo nerfstudio dataset (transforms.json) whose cameras are ``camera_model`` with ``k1``."""
    tmp_path.mkdir()
    ds = tiny_dataset(tmp_path, torch.zeros(3, 6))
    frames = []
    for i in range(5):
        c2w = torch.eye(4)
        c2w[:3, 3] = torch.tensor([math.cos(i), math.sin(i), 0.3 * i])
        frames.append({"file_path": str(ds.image_filenames[i % 3]), "transform_matrix": c2w.tolist()})
    meta = {"camera_model": camera_model, "fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY, "w": W, "h": H, "k1": k1}
    (tmp_path / "transforms.json").write_text(json.dumps({**meta, "frames": frames}))
    return tmp_path


@pytest.mark.parametrize("undistort", [True, False])
def test_the_datamanager_refuses_fisheye_and_passes_the_switch_on(tmp_path, undistort):
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from tnerf_ns.datamanagers.tnerf_datamanager import TNeRFDataManagerConfig

    assert TNeRFDataManagerConfig().undistort_sources is True

    def setup(folder):
        cfg = TNeRFDataManagerConfig(dataparser=NerfstudioDataParserConfig(data=folder), undistort_sources=undistort)
        return cfg.setup(device="cpu")

    fisheye = nerfstudio_folder(tmp_path / "fisheye", "OPENCV_FISHEYE", 0.1)
    with pytest.raises(UnsupportedCameraError, match=r"fisheye: camera model FISHEYE is not supported"):
        setup(fisheye)
    dm = setup(nerfstudio_folder(tmp_path / "opencv", "OPENCV", 0.2))
    assert dm.context_provider.undistort is undistort
    assert (dm.context_provider.context(dm.train_scenes[0].scene_idx).key[-1] == "undistorted") is undistort
