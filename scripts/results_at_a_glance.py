#!/usr/bin/env python
"""README's "results at a glance": one table from the comparison results files, never hand-typed.

For each scene it reads ``<compare>/<scene>/comparison.json`` (written by ``scripts/compare_methods.py``) and takes
novel-view PSNR / SSIM of: the feed-forward prediction at K = 4, T-NeRF refined and nerfacto at the 180 s budget, and
the trivial baselines beside them (empty field; the mean-colour image where the file has it). On a capture the
feed-forward cell is its protocol's K (DTU: 3 input views; fox: 8), labelled. A scene or row that
has not been measured yet says "pending". A second table gives the feed-forward prediction of the head shipped with
the package (scene mode, 0 iterations) from ``<method>/<label>.json`` (``scripts/evaluate_source_views.py``: lego and
mic) and ``<capture>/<label>.json`` (``scripts/evaluate_capture.py``: DTU scan24), beside the same baselines.

    python scripts/results_at_a_glance.py            # writes docs/results/glance.md
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import tyro

REPO = Path(__file__).resolve().parents[1]

COLUMNS: Tuple[Tuple[str, str, str], ...] = (
    ("feed-forward, K = 4", "tnerf feed-forward", "K=4"),
    ("refined, 180 s", "tnerf refined", "budget 180s"),
    ("nerfacto, 180 s", "nerfacto", "budget 180s"),
    ("empty field", "empty field", "-"),
    ("mean-colour image", "mean-colour image", "-"),
)
"""(column title, method name prefix in comparison.json, setting); the mean-colour column is shown once a file has
that row."""


def find(rows: List[dict], method: str, setting: str, split: str) -> Optional[dict]:
    return next((r for r in rows if r["method"].startswith(method) and r["setting"] == setting
                 and r["split"] == split), None)  # fmt: skip


def cell(row: Optional[dict]) -> str:
    return "not measured" if row is None else f"{row['psnr']:.2f} / {row['ssim']:.3f}"


PREDICTION = "prediction (surroundings: sources)"
"""The DTU row of scripts/evaluate_capture.py shown here: the default (surroundings swept from the source photos)."""


@dataclass
class Glance:
    """Write the one-table summary of the comparison results."""

    compare: Path = REPO / "docs/results/compare"
    """Folder of the per-scene comparison results."""
    scenes: Dict[str, str] = field(default_factory=lambda: {"lego": "lego (Blender)", "mic": "mic (Blender)",
                                                           "dtu-3views": "DTU scan24, 3 views (real)",
                                                           "fox": "fox (real, hand-held)"})  # fmt: skip
    """Result folder -> scene name shown."""
    out: Path = REPO / "docs/results/glance.md"
    """Markdown table to write."""
    method: Path = REPO / "docs/results/method"
    """Folder of scripts/evaluate_source_views.py's results."""
    capture: Path = REPO / "docs/results/capture"
    """Folder of scripts/evaluate_capture.py's results."""
    shipped_label: str = "shipped-head"
    """Label of the shipped head's measurements in both folders."""

    def shipped_lines(self) -> List[str]:
        """The shipped head's feed-forward rows (none when it has not been measured)."""
        rows = []
        blender = self.method / f"{self.shipped_label}.json"
        if blender.is_file():
            measured = json.loads(blender.read_text())
            for scene in ("lego", "mic"):
                if scene in measured:
                    r = {k: measured[scene][f"K={k}"] for k in (2, 4, 8)}
                    rows.append(f"| {scene} (Blender), {r[2]['images']} test views | "
                                + " | ".join(f"{r[k]['psnr']:.2f} / {r[k]['ssim']:.3f}" for k in (2, 4, 8))
                                + f" | {r[4]['empty_psnr']:.2f} / {r[4]['empty_ssim']:.3f} | - |")  # fmt: skip
        capture = self.capture / f"{self.shipped_label}.json"
        if capture.is_file():
            measured = json.loads(capture.read_text())["rows"]
            runs = [measured.get(f"transforms_{n}views.json") for n in (3, 6, 9)]
            if all(runs):
                rows.append("| DTU scan24 (real; 3 / 6 / 9 input views), 25 test views | "
                            + " | ".join(f"{r[PREDICTION]['psnr']:.2f} / {r[PREDICTION]['ssim']:.3f}" for r in runs)
                            + f" | {runs[0]['empty field']['psnr']:.2f} / {runs[0]['empty field']['ssim']:.3f} | "
                            f"{runs[0]['mean-colour image']['psnr']:.2f} / {runs[0]['mean-colour image']['ssim']:.3f} |")  # fmt: skip
        if not rows:
            return []
        return ["", "The head shipped with the package (`tnerf_ns/weights`, trained on generated scenes only), scene "
                "mode, 0 iterations; PSNR (dB) / SSIM at K = 2 / 4 / 8 source views (DTU: its 3 / 6 / 9 protocol "
                "inputs); the baselines at K = 4 (DTU: 3 views):", "",
                "| scene | K = 2 (DTU 3) | K = 4 (DTU 6) | K = 8 (DTU 9) | empty field | mean-colour image |",
                "|---|---:|---:|---:|---:|---:|", *rows]  # fmt: skip

    def main(self) -> None:
        files = {folder: self.compare / folder / "comparison.json" for folder in self.scenes}
        measured = {folder: json.loads(path.read_text()) for folder, path in files.items() if path.is_file()}
        columns = [c for c in COLUMNS if c[0] != "mean-colour image"
                   or any(find(rows, c[1], c[2], "novel") for rows in measured.values())]  # fmt: skip
        head = "| scene | " + " | ".join(title for title, _, _ in columns) + " |"
        lines = [
            "Novel views, PSNR (dB) / SSIM; backbone `vggt-small` (VGGT-1B's weights cannot be downloaded here); lego "
            "and mic: the demo's head before the projection branch, the captures (DTU, fox): the first shipped head "
            "(2026-12-04); 2 CPU "
            "threads; one training each. Empty field (and mean-colour image where measured): the trivial baselines. "
            "pending: the scene has no comparison yet.",
            "",
            head,
            "|---|" + "---:|" * len(columns),
        ]
        for folder, name in self.scenes.items():
            rows = measured.get(folder, [])
            cells = [cell(find(rows, method, setting, "novel")) for _, method, setting in columns]
            if rows and find(rows, "tnerf feed-forward", "K=4", "novel") is None:  # a capture: its protocol's K
                other = next((r for r in rows if r["method"] == "tnerf feed-forward" and r["split"] == "novel"), None)
                if other is not None:
                    cells[0] = f"{cell(other)} ({other['setting']})"
            if not rows:
                cells = ["pending"] * len(columns)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += self.shipped_lines()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))


if __name__ == "__main__":
    tyro.cli(Glance).main()
