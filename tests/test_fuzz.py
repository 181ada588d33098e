"""Fuzzing the three readers users feed: NeRF-MAE scene files, image files and dataset JSON.

Each fuzz test counts its own accepted and rejected cases (no state shared between tests) and requires both: a
reader that rejected everything, or accepted everything, would fail. Every rejection must name the file. The test
suite runs ``TNERF_FUZZ_EXAMPLES`` cases per reader (default 40); ``make fuzz`` runs 400 per reader and writes the
counts to ``docs/results/fuzz.md`` (``TNERF_FUZZ_REPORT``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import make_scenes
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from tnerf_ns.backbone.preprocess import ImageInputError, read_rgb
from tnerf_ns.data import image_check
from tnerf_ns.data.multiscene_dataparser import SceneDatasetError, TNeRFScenesDataParserConfig
from tnerf_ns.scenes.nerfmae import SceneFormatError, load_scene
from tnerf_ns.scenes.synthetic import generate_scene

EXAMPLES = int(os.environ.get("TNERF_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def record(reader: str, stats: Counter) -> None:
    """Print the counts and, for ``make fuzz``, add them to the report."""
    line = f"| {reader} | {stats['cases']} | {stats['accepted']} | {stats['rejected']} |"
    print(f"\nfuzz {line}")
    report = os.environ.get("TNERF_FUZZ_REPORT")
    if report:
        path = Path(report)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "## Fuzz\n\n| reader | cases | accepted | rejected (error naming the file) |\n|---|---:|---:|---:|\n"
            )
        with path.open("a") as f:
            f.write(line + "\n")
    assert stats["cases"] >= EXAMPLES // 2 and stats["accepted"] > 0 and stats["rejected"] > 0, stats


# ------------------------------------------------------------------------------------------------- NeRF-MAE files
def valid_scene_arrays() -> dict:
    scene = generate_scene(0, 0, "object", False, 12)[0]
    x, y, z = scene.grid_shape
    return {
        "rgbsigma": np.concatenate([scene.rgb, scene.raw_density[..., None]], -1).astype(np.float32),
        "resolution": np.array([y, z, x]), "bbox_min": scene.bbox_min.astype(np.float32),
        "bbox_max": scene.bbox_max.astype(np.float32), "scale": np.float64(scene.scale),
        "offset": scene.offset.astype(np.float32),
    }  # fmt: skip


SCENE_MUTATIONS = ["none", "drop_key", "extra_key", "rank", "channels", "dtype", "nan", "inf", "zero_axis",
                   "huge_bbox", "flip_bbox", "scale_zero", "truncate", "garbage", "object_array", "bool_grid",
                   "int_grid", "neg_rgb", "flat"]  # fmt: skip


def mutate_scene(arrays: dict, mutation: str, key: str, frac: float, value: float):
    """A mutated .npz file's bytes."""
    data = {k: np.array(v, copy=True) for k, v in arrays.items()}
    grid = data["rgbsigma"]
    if mutation == "drop_key":
        data.pop(key)
    elif mutation == "extra_key":
        data["junk"] = np.arange(3)
    elif mutation == "rank":
        data["rgbsigma"] = grid.reshape(-1)
    elif mutation == "channels":
        data["rgbsigma"] = grid[..., : 1 + int(frac * 2)]
    elif mutation == "dtype":
        data[key] = data[key].astype(np.float16)
    elif mutation in ("nan", "inf"):
        flat = data[key].reshape(-1)
        flat[int(frac * (flat.size - 1))] = np.nan if mutation == "nan" else np.inf
    elif mutation == "zero_axis":
        data["rgbsigma"] = grid[:0] if frac < 0.5 else grid[:, :, :0]
    elif mutation == "huge_bbox":
        data["bbox_max"] = data["bbox_min"] + np.float32(1e12 if np.isnan(value) else abs(value) + 1e9)
    elif mutation == "flip_bbox":
        data["bbox_min"], data["bbox_max"] = data["bbox_max"], data["bbox_min"]
    elif mutation == "scale_zero":
        data["scale"] = np.float64(0.0 if np.isnan(value) else -abs(value))
    elif mutation == "object_array":
        data[key] = np.array([{"x": 1}], dtype=object)
    elif mutation == "bool_grid":
        data["rgbsigma"] = grid > 0
    elif mutation == "int_grid":
        data["rgbsigma"] = (grid * 10).astype(np.int32)
    elif mutation == "neg_rgb":
        grid[..., 0] = -0.5
    elif mutation == "flat":
        data["rgbsigma"] = grid.reshape(-1, 4)
    buf = io.BytesIO()
    np.savez(buf, **data)
    blob = buf.getvalue()
    if mutation == "truncate":
        return blob[: int(frac * len(blob))]
    if mutation == "garbage":
        return os.urandom(64 + int(frac * 500))
    return blob


def test_fuzz_nerfmae_reader(tmp_path):
    arrays, stats = valid_scene_arrays(), Counter()
    path = tmp_path / "scene.npz"

    @FUZZ
    @given(mutation=st.sampled_from(SCENE_MUTATIONS), key=st.sampled_from(["rgbsigma", "bbox_min", "bbox_max", "scale",
           "offset"]), frac=st.floats(0.0, 1.0), value=st.floats(allow_nan=True, allow_infinity=True))  # fmt: skip
    def case(mutation, key, frac, value):
        path.write_bytes(mutate_scene(arrays, mutation, key, frac, value))
        stats["cases"] += 1
        try:
            scene = load_scene(path)
        except SceneFormatError as err:
            stats["rejected"] += 1
            assert str(path) in str(err)
            return
        stats["accepted"] += 1
        assert np.isfinite(scene.rgb).all() and scene.rgb.min() >= 0 and scene.rgb.max() <= 1
        assert (scene.world_box[1] > scene.world_box[0]).all()

    case()
    record("NeRF-MAE scene files (load_scene)", stats)


# ------------------------------------------------------------------------------------------------- image files
def png_bytes(shape, mode: str) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = (rng.random((*shape, channels)) * 255).astype(np.uint8)
    Image.fromarray(array[..., 0] if channels == 1 else array, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_fuzz_image_files(tmp_path, monkeypatch):
    """Damaged PNGs: the set-up check and the reader agree, and what the check accepts always reads."""
    monkeypatch.setattr(image_check, "CACHE_FILE", tmp_path / "cache.json")
    stats = Counter()

    @FUZZ
    @given(h=st.integers(1, 40), w=st.integers(1, 40), mode=st.sampled_from(["RGB", "RGBA", "L"]),
           damage=st.sampled_from(["none", "truncate", "flip_bytes", "zero", "text", "header_only"]),
           frac=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))  # fmt: skip
    def case(h, w, mode, damage, frac, seed):
        blob = png_bytes((h, w), mode)
        if damage == "truncate":
            blob = blob[: int(frac * (len(blob) - 1))]
        elif damage == "flip_bytes":
            rng = np.random.default_rng(seed)
            arr = np.frombuffer(blob, np.uint8).copy()
            idx = rng.integers(8, len(arr), size=1 + int(frac * 8))
            arr[idx] ^= 0xFF
            blob = arr.tobytes()
        elif damage == "zero":
            blob = b""
        elif damage == "text":
            blob = b"not an image" * (1 + int(frac * 10))
        elif damage == "header_only":
            blob = blob[:33]
        path = tmp_path / f"case_{stats['cases']}.png"
        path.write_bytes(blob)
        stats["cases"] += 1
        problem, size = image_check.check_image(path)
        if problem is not None:
            stats["rejected"] += 1
            with pytest.raises(ImageInputError, match=str(path)):  # the reader refuses it too, naming the file
                read_rgb(path)
            return
        stats["accepted"] += 1
        image = read_rgb(path)  # accepted at set-up: never fails later
        assert image.shape == (*size, 3) and np.isfinite(image).all() and 0 <= image.min() <= image.max() <= 1

    case()
    record("image files (set-up check + read_rgb)", stats)


# ------------------------------------------------------------------------------------------------- dataset JSON
JSON_MUTATIONS = ["none", "invalid_json", "drop_field", "wrong_type", "nan_matrix", "short_matrix", "drop_frames",
                  "frame_not_dict", "drop_file_path", "escape_path", "zero_box", "null_value"]  # fmt: skip


def mutate_transforms(meta: dict, mutation: str, field: str, frac: float) -> str:
    meta = json.loads(json.dumps(meta))
    frames = meta["frames"]
    i = int(frac * (len(frames) - 1))
    if mutation == "invalid_json":
        return json.dumps(meta)[: int(frac * 200)]
    if mutation == "drop_field":
        meta.pop(field, None)
    elif mutation == "wrong_type":
        meta[field] = "seven"
    elif mutation == "null_value":
        meta[field] = None
    elif mutation == "nan_matrix":
        frames[i]["transform_matrix"][0][3] = float("nan")
    elif mutation == "short_matrix":
        frames[i]["transform_matrix"] = frames[i]["transform_matrix"][:2]
    elif mutation == "drop_frames":
        meta["frames"] = []
    elif mutation == "frame_not_dict":
        frames[i] = [1, 2, 3]
    elif mutation == "drop_file_path":
        frames[i].pop("file_path")
    elif mutation == "escape_path":
        frames[i]["file_path"] = "../../../etc/passwd"
    elif mutation == "zero_box":
        meta["tnerf"]["world_box"] = [[0, 0, 0], [0, 0, 0]]
    return json.dumps(meta)


@pytest.fixture(scope="module")
def dataset_copy(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("fuzz_json"), 2, 16, 3, "16x16")


def test_fuzz_dataset_json(dataset_copy, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset_copy, data)
    scene = sorted(p for p in data.iterdir() if p.is_dir())[0]
    meta_file = scene / "transforms.json"
    original = json.loads(meta_file.read_text())
    stats = Counter()

    @FUZZ
    @given(mutation=st.sampled_from(JSON_MUTATIONS), field=st.sampled_from(["fl_x", "fl_y", "cx", "cy", "w", "h",
           "frames"]), frac=st.floats(0.0, 1.0))  # fmt: skip
    def case(mutation, field, frac):
        meta_file.write_text(mutate_transforms(original, mutation, field, frac))
        stats["cases"] += 1
        try:
            parser = TNeRFScenesDataParserConfig(data=data).setup()
            for split in ("train", "test"):
                outputs = parser.get_dataparser_outputs(split=split)
        except SceneDatasetError as err:
            stats["rejected"] += 1
            assert str(data) in str(err)
            return
        stats["accepted"] += 1
        assert np.isfinite(outputs.cameras.camera_to_worlds.numpy()).all()

    case()
    record("dataset JSON (tnerf-scenes transforms.json)", stats)
