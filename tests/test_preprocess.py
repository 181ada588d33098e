"""Image preparation for VGGT: formats users really have, sizes not divisible by 14, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tnerf_ns.backbone.preprocess import ImageInputError, list_images, load_images, read_rgb


def test_rgba_is_composited_on_white(tmp_path):
    arr = np.zeros((10, 12, 4), np.uint8)
    arr[..., 0] = 255  # red, half of it transparent
    arr[:5, :, 3] = 255
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    rgb = read_rgb(tmp_path / "a.png")
    assert rgb.shape == (10, 12, 3)
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0])
    np.testing.assert_allclose(rgb[9, 0], [1, 1, 1])


def test_gray_and_16bit(tmp_path):
    Image.fromarray(np.full((8, 8), 128, np.uint8), "L").save(tmp_path / "g.png")
    np.testing.assert_allclose(read_rgb(tmp_path / "g.png")[0, 0], [128 / 255] * 3)
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "d.png")
    np.testing.assert_allclose(read_rgb(tmp_path / "d.png")[0, 0], [1.0] * 3)


def test_sizes_become_multiples_of_14_and_mixed_sizes_are_padded(tmp_path):
    Image.fromarray(np.zeros((100, 150, 3), np.uint8)).save(tmp_path / "1.png")
    Image.fromarray(np.zeros((150, 100, 3), np.uint8)).save(tmp_path / "2.jpg")
    images = load_images(list_images(tmp_path), target=140)
    assert images.shape[0] == 2 and images.shape[1] == 3
    assert images.shape[2] % 14 == 0 and images.shape[3] == 140
    assert images.min() >= 0 and images.max() <= 1


def test_natural_order_and_bad_files(tmp_path):
    for i in (10, 2, 1):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / f"r_{i}.png")
    assert [p.name for p in list_images(tmp_path)] == ["r_1.png", "r_2.png", "r_10.png"]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageInputError, match=r"broken\.png: cannot read image"):
        read_rgb(tmp_path / "broken.png")
    with pytest.raises(ImageInputError, match="not a folder"):
        list_images(tmp_path / "r_1.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageInputError, match=r"empty: no images"):
        list_images(tmp_path / "empty")
