#!/usr/bin/env python
"""Copy generated result files into README.md, so its tables are the scripts' output, never hand-typed.

README.md marks each included block:

    <!-- include: docs/results/compare/lego/comparison.md -->
    ...replaced by the file's text...
    <!-- end include -->

    python scripts/sync_readme.py            # rewrite README.md
    python scripts/sync_readme.py --check    # exit 1 if README.md is out of date (the test suite runs this)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- include: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- end include -->)", re.DOTALL)


def synced(text: str, root: Path) -> str:
    def replace(match: re.Match) -> str:
        source = root / match["path"]
        if not source.is_file():
            raise SystemExit(f"README.md includes {match['path']}, which does not exist")
        return match.group(1) + source.read_text().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


@dataclass
class SyncReadme:
    """Refresh README.md's included result blocks."""

    readme: Path = REPO / "README.md"
    """README to update (included paths are relative to its folder)."""
    check: bool = False
    """Only report whether the README is up to date."""

    def main(self) -> None:
        text = self.readme.read_text()
        new = synced(text, self.readme.parent)
        if self.check:
            if new != text:
                sys.exit(f"{self.readme} is out of date with its included result files: run scripts/sync_readme.py")
            print(f"{self.readme}: {len(BLOCK.findall(text))} included blocks up to date")
            return
        self.readme.write_text(new)
        print(f"{self.readme}: {len(BLOCK.findall(new))} included blocks refreshed")


if __name__ == "__main__":
    tyro.cli(SyncReadme).main()
