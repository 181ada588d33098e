"""``scripts/evaluate_capture.py``'s table: every label's rows, other result files of the folder left alone."""

from __future__ import annotations

import json
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
from evaluate_capture import write_markdown  # noqa: E402


def test_capture_table_reads_each_label_and_skips_other_json(tmp_path):
    row = {"psnr": 10.5, "ssim": 0.3, "psnr_masked": 12.25, "ssim_masked": 0.5, "psnr_outside": 8.0}
    result = {"data": "/data/dtu/scan24", "pretrained": "shipped head", "measured": "2026-12-05T10:00",
              "rows": {"transforms_3views.json": {"prediction (surroundings: sources)": row, "images": 25,
                                                  "source_views": 3}}}  # fmt: skip
    (tmp_path / "my-head.json").write_text(json.dumps(result))
    (tmp_path / "cli-dtu.json").write_text(json.dumps({"label": "dtu", "ns-eval": {"psnr": 9.0}}))  # not a table
    write_markdown(tmp_path)
    table = (tmp_path / "capture.md").read_text()
    line = next(x for x in table.splitlines() if x.startswith("| my-head"))
    assert "prediction (surroundings: sources) | 10.50 | 0.300 | 12.25 | 0.500 | 8.00 |" in line
    assert "cli-dtu" not in table and "9.00" not in table
