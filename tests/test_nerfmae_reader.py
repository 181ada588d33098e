"""NeRF-MAE reader: format round trip, density conventions, validation errors and dataset enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from tnerf_ns.scenes.nerfmae import (
    CULLED,
    SceneFormatError,
    index_dataset,
    load_scene,
    ngp_to_world_axes,
    save_scene,
    sigma_to_alpha,
    world_to_ngp_axes,
)
from tnerf_ns.scenes.synthetic import generate_scene


@pytest.fixture(scope="module")
def scene():
    return generate_scene(seed=0, index=0, kind="object", dynamic=False, max_res=24)[0]


def arrays_of(scene) -> dict:
    x, y, z = scene.grid_shape
    return {
        "rgbsigma": np.concatenate([scene.rgb, scene.raw_density[..., None]], -1).astype(np.float32),
        "resolution": np.array([y, z, x]),
        "bbox_min": scene.bbox_min.astype(np.float32),
        "bbox_max": scene.bbox_max.astype(np.float32),
        "scale": np.float64(scene.scale),
        "offset": scene.offset.astype(np.float32),
        "from_mitsuba": np.bool_(False),
    }


def test_round_trip_keeps_every_key_dtype_and_value(tmp_path, scene):
    path = tmp_path / "s.npz"
    save_scene(path, scene)
    with np.load(path) as npz:
        assert {"rgbsigma", "resolution", "bbox_min", "bbox_max", "scale", "offset", "from_mitsuba"} <= set(npz.files)
        assert npz["rgbsigma"].dtype == np.float32 and npz["rgbsigma"].shape == (*scene.grid_shape, 4)
        # resolution is stored in NGP (y-up, cycled) order: (L, H, W) = shape[[1, 2, 0]]
        assert npz["resolution"].tolist() == [scene.grid_shape[1], scene.grid_shape[2], scene.grid_shape[0]]
    back = load_scene(path)
    assert back.name == "s" and back.density_kind == "ngp_log"
    np.testing.assert_array_equal(back.raw_density, scene.raw_density)
    np.testing.assert_allclose(back.world_box, scene.world_box, atol=1e-5)
    assert not list(tmp_path.glob(".*partial*"))


def test_axis_conventions():
    v = np.array([1.0, 2.0, 3.0])
    assert world_to_ngp_axes(v).tolist() == [2.0, 3.0, 1.0]
    assert ngp_to_world_axes(world_to_ngp_axes(v)).tolist() == v.tolist()


def test_opacity_convention_matches_nerfmae():
    # alpha = 1 - exp(-exp(raw) / 100): raw 4.24 -> 0.5, raw -10000 -> 0 (reference values)
    from tnerf_ns.scenes.nerfmae import raw_to_sigma

    raw = np.array([4.24, 5.44, CULLED], dtype=np.float32)
    alpha = sigma_to_alpha(raw_to_sigma(raw, "ngp_log"))
    np.testing.assert_allclose(alpha, [0.5, 0.9, 0.0], atol=0.01)


def test_alpha_and_flat_variants(tmp_path, scene):
    data = arrays_of(scene)
    data["rgbsigma"][..., 3] = scene.opacity  # already-alpha variant (Hypersim-style)
    np.savez(tmp_path / "alpha.npz", **data)
    s = load_scene(tmp_path / "alpha.npz")
    assert s.density_kind == "alpha"
    np.testing.assert_allclose(s.opacity, scene.opacity, atol=1e-4)
    # raw fork output: (N, 4), x-fastest in NGP axes
    grid = arrays_of(scene)["rgbsigma"]
    ngp = grid.transpose(1, 2, 0, 3)  # world (x, y, z) -> NGP (y, z, x)
    flat = ngp.transpose(2, 1, 0, 3).reshape(-1, 4)
    np.savez(tmp_path / "flat.npz", **{**arrays_of(scene), "rgbsigma": flat})
    np.testing.assert_array_equal(load_scene(tmp_path / "flat.npz").raw_density, scene.raw_density)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("rgbsigma"), "missing keys"),
        (lambda d: d.pop("scale"), "missing keys"),
        (lambda d: d.update(rgbsigma=d["rgbsigma"][..., 0]), "must be 4-D"),
        (lambda d: d.update(rgbsigma=d["rgbsigma"][..., :3]), "4 channels"),
        (lambda d: d.update(rgbsigma=d["rgbsigma"][:1]), "degenerate grid"),
        (lambda d: d.update(rgbsigma=d["rgbsigma"][:0]), "degenerate grid"),
        (lambda d: d["rgbsigma"].__setitem__((0, 0, 0, 3), np.nan), "non-finite"),
        (lambda d: d["rgbsigma"].__setitem__((0, 0, 0, 0), np.inf), "non-finite"),
        (lambda d: d["rgbsigma"].__setitem__((0, 0, 0, 0), 7.0), r"rgb outside \[0, 1\]"),
        (lambda d: d.update(bbox_max=d["bbox_min"]), "empty or inverted"),
        (lambda d: d.update(bbox_max=d["bbox_min"] + np.array([1.0, 1.0, 5.0], np.float32)), "not isotropic"),
        (lambda d: d.update(scale=np.float64(-1)), "scale must be one positive"),
        (lambda d: d.update(offset=np.zeros(2)), "offset must be 3"),
        (lambda d: d.update(bbox_max=d["bbox_min"] * 1e9 + 1e9), "absurd"),
    ],
)
def test_bad_scenes_are_named_and_explained(tmp_path, scene, change, message):
    data = arrays_of(scene)
    change(data)
    path = tmp_path / "bad_scene.npz"
    np.savez(path, **data)
    with pytest.raises(SceneFormatError, match=rf"bad_scene\.npz: .*{message}"):
        load_scene(path)


def test_truncated_and_garbage_files(tmp_path, scene):
    save_scene(tmp_path / "ok.npz", scene)
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SceneFormatError, match=r"trunc\.npz"):
        load_scene(tmp_path / "trunc.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(SceneFormatError, match=r"junk\.npz: not a readable"):
        load_scene(tmp_path / "junk.npz")
    with pytest.raises(SceneFormatError, match="file not found"):
        load_scene(tmp_path / "none.npz")


def test_pickled_object_arrays_are_refused(tmp_path, scene):
    data = arrays_of(scene)
    data["scale"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "obj.npz", **data)
    with pytest.raises(SceneFormatError, match=r"obj\.npz"):
        load_scene(tmp_path / "obj.npz")


def test_index_reports_and_skips_bad_scenes(tmp_path, scene, capsys):
    features = tmp_path / "features"
    for name in ("a", "b", "c"):
        save_scene(features / f"{name}.npz", scene)
    (features / "broken.npz").write_bytes(b"nope")
    np.savez(tmp_path / "nerfmae_split.npz", train_scenes=np.array(["a", "b", "broken"]), val_scenes=np.array(["c"]),
             test_scenes=np.array(["c"]))  # fmt: skip
    index = index_dataset(tmp_path, progress=False)
    assert index.names == ["a", "b", "c"]
    assert "broken" in index.rejected and "broken.npz" in index.rejected["broken"]
    assert index.split == {"train": ["a", "b"], "val": ["c"], "test": ["c"]}
    assert "skipping bad scene" in capsys.readouterr().err
    with pytest.raises(SceneFormatError, match="no NeRF-MAE scenes"):
        index_dataset(tmp_path / "features" / "missing")
