"""The model learns: after the shared run's training (tests/helpers.py, TRAINED_STEPS steps of the tiny model on four
generated scenes), held-out PSNR must beat rendering nothing by a clear margin. A model that stops learning (a broken
loss, a detached field, a zero learning rate) fails here."""

from __future__ import annotations

import json

import pytest
from helpers import empty_psnr, ns_here

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` skips it

MARGIN_DB = 3.0
"""Held-out PSNR above the empty field that the tiny run must reach (it measured about +4.8 dB at 150 steps)."""


def test_held_out_psnr_beats_the_empty_field(trained, tmp_path):
    ns_here("ns-eval", "--load-config", str(trained), "--output-path", str(tmp_path / "eval.json"))
    psnr = json.loads((tmp_path / "eval.json").read_text())["results"]["psnr"]
    floor = empty_psnr(trained)
    assert psnr >= floor + MARGIN_DB, f"held-out PSNR {psnr:.2f} dB vs empty field {floor:.2f} dB"
