"""scripts/seed_spread.py's table (mean and range over seeds, 1-vs-2-thread difference)."""

from __future__ import annotations

import json
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
from seed_spread import write_spread  # noqa: E402


def test_spread_table_gives_mean_range_and_thread_difference(tmp_path):
    for seed, threads, value in ((1, 2, 20.0), (2, 2, 21.0), (1, 1, 20.5)):
        result = {"lego": {"K=4": {"psnr": value}}, "measured": "x"}
        (tmp_path / f"seed-{seed}-threads-{threads}.json").write_text(json.dumps(result))
    write_spread(tmp_path)
    table = (tmp_path / "spread.md").read_text()
    assert "| lego (scene mode) | 4 | 20.50 / 0.00 (1) | 20.50 / 1.00 (2) | 0.50 |" in table
