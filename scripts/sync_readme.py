#!/usr/bin/env python
"""Copy generated result files into README.md, so its tables are the scripts' output, never hand-typed.

README.md marks each included block:

    <!-- include: docs/results/compare/lego/comparison.md -->
    ...replaced by the file's text...
    <!-- end include -->

``path#Heading`` includes only the body of the file's first ``## Heading...`` section.

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
BLOCK = re.compile(r"(<!-- include: (?P<path>[^\n]+?) -->\n)(?P<body>.*?)(<!-- end include -->)", re.DOTALL)


def section(text: str, heading: str, where: str) -> str:
    """The body of the first ``## heading...`` section of a markdown text (up to the next ``## ``)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"## {heading}")), None)
    if start is None:
        raise SystemExit(f"README.md includes {where}: no '## {heading}' section there")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1 : end]).strip("\n")


def synced(text: str, root: Path) -> str:
    def replace(match: re.Match) -> str:
        path, _, heading = match["path"].partition("#")
        source = root / path
        if not source.is_file():
            raise SystemExit(f"README.md includes {path}, which does not exist")
        body = source.read_text()
        body = section(body, heading, match["path"]) if heading else body.strip("\n")
        return match.group(1) + body + "\n" + match.group(4)

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
