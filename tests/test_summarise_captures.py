"""scripts/summarise_captures.py: the captures' table (refined T-NeRF against nerfacto per budget, trivial rows)."""

from __future__ import annotations

import json
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
from summarise_captures import SummariseCaptures  # noqa: E402

from tnerf_ns.evaluation.comparison_report import EMPTY_FIELD, MEAN_COLOUR  # noqa: E402


def rows(refined, nerfacto, masked=None):
    out = []
    for split in ("input", "novel"):
        extra = {} if masked is None else {"psnr_masked": masked}
        out += [{"method": MEAN_COLOUR, "setting": "-", "split": split, "psnr": 9.0, **extra},
                {"method": EMPTY_FIELD, "setting": "-", "split": split, "psnr": 4.0, **extra},
                {"method": "tnerf feed-forward", "setting": "K=3", "split": split, "psnr": 10.5, **extra}]  # fmt: skip
        for budget, t, n in zip((60, 180, 600), refined, nerfacto):
            out.append({"method": "tnerf refined (K=3)", "setting": f"budget {budget}s", "split": split, "psnr": t})
            out.append({"method": "nerfacto", "setting": f"budget {budget}s", "split": split, "psnr": n, **extra})
    return out


def test_capture_table_gives_the_verdict_per_budget(tmp_path):
    for name, data in (("dtu-3views", rows([12, 13, 14], [11, 12, 13], masked=15.0)),
                       ("fox", rows([12, 13, 14], [11, 14, 16]))):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "comparison.json").write_text(json.dumps(data))
    text = SummariseCaptures(folder=tmp_path).main()
    assert text == (tmp_path / "captures.md").read_text()
    novel = text.split("Input views")[0]
    assert "| DTU scan24, 3 input views | 9.00 / 15.00 | 4.00 / 15.00 | 10.50 / 15.00 | 12.00 | 13.00 | 14.00 | " \
           "11.00 / 15.00 | 12.00 / 15.00 | 13.00 / 15.00 | yes |" in novel  # fmt: skip
    assert "| fox (43 train views, 270x480) | 9.00 | 4.00 | 10.50 | 12.00 | 13.00 | 14.00 | 11.00 | 14.00 | 16.00 | " \
           "no (+1.00, -1.00, -2.00 dB) |" in novel  # fmt: skip
    assert "| DTU scan24, 6 input views | not run |" in novel
    assert "| MuRF (feed-forward, trained on DTU) | 21.31 | 23.74 | 25.28 |" in text
