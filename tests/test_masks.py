"""Object masks of a capture and the masked scores (RegNeRF's definition: object pixels only)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from tnerf_ns.evaluation.masks import MaskFileError, mask_finder, masked_scores, psnr_of, read_mask


def test_masked_psnr_counts_only_the_object_pixels():
    gt = torch.zeros(8, 8, 3)
    pred = gt.clone()
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4] = True
    pred[4:] = 1.0  # wrong only outside the object
    scores = masked_scores(pred, gt, mask)
    assert scores["psnr_masked"] == pytest.approx(100.0)  # perfect on the object (clamped)
    assert scores["psnr_outside"] == pytest.approx(0.0, abs=1e-4)
    assert scores["psnr"] == pytest.approx(psnr_of(pred, gt)) and scores["psnr"] == pytest.approx(3.0103, abs=1e-3)
    assert scores["ssim_masked"] == pytest.approx(1.0, abs=1e-4)  # background white in both
    assert "psnr_masked" not in masked_scores(pred, gt, None)


def test_masks_are_read_resized_to_rescaled_images_and_bad_ones_named(tmp_path):
    mask = np.zeros((8, 12), dtype=np.uint8)
    mask[:4, :6] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert torch.equal(read_mask(tmp_path / "m.png", (8, 12)), torch.from_numpy(mask > 0))
    half = read_mask(tmp_path / "m.png", (4, 6))  # images read at scale 0.5
    assert half.shape == (4, 6) and half[:2, :3].all() and not half[2:].any() and not half[:, 3:].any()
    assert read_mask(tmp_path / "absent.png", (8, 12)) is None
    with pytest.raises(MaskFileError, match="m.png: mask is 12x8, its image 8x8"):
        read_mask(tmp_path / "m.png", (8, 8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(MaskFileError, match="broken.png: cannot read"):
        read_mask(tmp_path / "broken.png", (8, 12))


def test_mask_finder_follows_the_dataset_image_names(tmp_path):
    dataset = SimpleNamespace(image_filenames=[tmp_path / "images" / "a.png", tmp_path / "images" / "b.png"])
    assert mask_finder(tmp_path, dataset) is None  # no masks folder
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.full((2, 2), 255, np.uint8)).save(tmp_path / "masks" / "b.png")
    find = mask_finder(tmp_path, dataset)
    assert find(0, (2, 2)) is None and find(1, (2, 2)).all()
