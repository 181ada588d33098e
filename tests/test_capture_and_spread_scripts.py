"""scripts/evaluate_capture.py's masked metrics (RegNeRF's definition: object pixels only) and
scripts/seed_spread.py's table (mean and range over seeds, 1-vs-2-thread difference)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
from evaluate_capture import masked_scores, psnr_of, read_mask  # noqa: E402
from seed_spread import write_spread  # noqa: E402


def test_masked_psnr_counts_only_the_object_pixels(tmp_path):
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
    from PIL import Image

    Image.fromarray((mask.numpy() * 255).astype("uint8")).save(tmp_path / "m.png")
    assert torch.equal(read_mask(tmp_path / "m.png", (8, 8)), mask)
    assert read_mask(tmp_path / "absent.png", (8, 8)) is None
    with pytest.raises(ValueError, match="m.png: mask is 8x8, its image 9x8"):
        read_mask(tmp_path / "m.png", (8, 9))


def test_spread_table_gives_mean_range_and_thread_difference(tmp_path):
    for seed, threads, value in ((1, 2, 20.0), (2, 2, 21.0), (1, 1, 20.5)):
        result = {"lego": {"K=4": {"psnr": value}}, "measured": "x"}
        (tmp_path / f"seed-{seed}-threads-{threads}.json").write_text(json.dumps(result))
    write_spread(tmp_path)
    table = (tmp_path / "spread.md").read_text()
    assert "| lego (scene mode) | 4 | 20.50 / 0.00 (1) | 20.50 / 1.00 (2) | 0.50 |" in table
