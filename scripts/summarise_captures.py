#!/usr/bin/env python
"""One table of the real captures' comparisons (``make_results.py``'s ``compare-dtu-*`` and ``compare-fox`` steps):
T-NeRF refined from the shipped head against nerfacto at each wall-clock budget, beside the trivial images and the
published sparse-view DTU figures.

    python scripts/summarise_captures.py       # reads docs/results/compare/<capture>/comparison.json

Writes ``docs/results/compare/captures.md`` (docs/captures.md and README include it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import tyro

from tnerf_ns.evaluation.comparison_report import EMPTY_FIELD, MEAN_COLOUR
from tnerf_ns.evaluation.published import PUBLISHED_DTU

REPO = Path(__file__).resolve().parents[1]
CAPTURES = {
    "dtu-3views": "DTU scan24, 3 input views",
    "dtu-6views": "DTU scan24, 6 input views",
    "dtu-9views": "DTU scan24, 9 input views",
    "dtu-24views": "DTU scan24, 24 views (dense)",
    "fox": "fox (43 train views, 270x480)",
}
"""Comparison folder -> what it is."""


def cell(row: Optional[Dict]) -> str:
    """PSNR, and the object-masked PSNR after a slash where the capture has masks."""
    if row is None or row.get("psnr") is None or math.isnan(row["psnr"]):
        return "-"
    masked = row.get("psnr_masked")
    return f"{row['psnr']:.2f}" + (f" / {masked:.2f}" if masked is not None else "")


def find(rows: List[Dict], split: str, method_prefix: str, setting: Optional[str] = None) -> Optional[Dict]:
    return next((r for r in rows if r["split"] == split and r["method"].startswith(method_prefix)
                 and (setting is None or r["setting"] == setting)), None)  # fmt: skip


@dataclass
class SummariseCaptures:
    """The captures' comparison table."""

    folder: Path = REPO / "docs/results/compare"
    """Where the comparison folders are (and captures.md goes)."""
    budgets: List[float] = field(default_factory=lambda: [60.0, 180.0, 600.0])
    """Budgets shown (seconds)."""

    def main(self) -> str:
        lines = ["## Captures", ""]
        for split in ("novel", "input"):
            head = ["capture", "mean-colour image", "empty field", "T-NeRF feed-forward"]
            head += [f"T-NeRF refined {b:g} s" for b in self.budgets] + [f"nerfacto {b:g} s" for b in self.budgets]
            head += ["T-NeRF refined >= nerfacto at every budget"]
            lines += [f"{split.capitalize()} views, PSNR (dB) / object-masked PSNR where the capture has masks:", "",
                      "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]  # fmt: skip
            for name, title in CAPTURES.items():
                path = self.folder / name / "comparison.json"
                if not path.is_file():
                    lines.append(f"| {title} | not run | " + " | ".join(["-"] * (len(head) - 2)) + " |")
                    continue
                rows = json.loads(path.read_text())
                refined = [find(rows, split, "tnerf refined", f"budget {b:g}s") for b in self.budgets]
                nerfacto = [find(rows, split, "nerfacto", f"budget {b:g}s") for b in self.budgets]
                verdict = "-"
                if all(refined) and all(nerfacto):
                    gaps = [t["psnr"] - n["psnr"] for t, n in zip(refined, nerfacto)]
                    verdict = "yes" if min(gaps) >= 0 else "no (" + ", ".join(f"{g:+.2f}" for g in gaps) + " dB)"
                cells = [cell(find(rows, split, MEAN_COLOUR)), cell(find(rows, split, EMPTY_FIELD)),
                         cell(find(rows, split, "tnerf feed-forward"))]  # fmt: skip
                cells += [cell(r) for r in refined + nerfacto] + [verdict]
                lines.append(f"| {title} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += ["Published object-masked PSNR on sparse-view DTU (the 15 DTU test scans, not scan24; the feed-forward "
                  "methods trained on DTU's other scans):", "", "| method | 3 views | 6 views | 9 views |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {name} | {a:.2f} | {b:.2f} | {c:.2f} |" for name, (a, b, c) in PUBLISHED_DTU.items()]
        lines += ["", "Every method one run on this 2-core CPU, evaluated at its budgets (training time; T-NeRF's "
                  "includes encoding the source views); nerfacto with nerfstudio's defaults for real captures "
                  "(nerfstudio-data oriented, centred and scaled; scene contraction; camera optimiser). DTU: 8 of the "
                  "25 test views at the last budget, 4 before (the feed-forward and trivial rows: 8). Per-capture "
                  "tables in `docs/results/compare/<capture>/comparison.md`."]  # fmt: skip
        text = "\n".join(lines) + "\n"
        (self.folder / "captures.md").write_text(text)
        print(text)
        return text


if __name__ == "__main__":
    tyro.cli(SummariseCaptures).main()
