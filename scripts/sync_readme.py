#!/usr/bin/env python
"""Copy generated result files into README.md and the docs/ pages, so their tables are the scripts' output, never
hand-typed.

A page marks each included block (the path relative to the page's own folder):

    <!-- include: docs/results/compare/lego/comparison.md -->
    ...replaced by the file's text...
    <!-- end include -->

``path#Heading`` includes only the body of the file's first ``## Heading...`` section.

    python scripts/sync_readme.py            # rewrite README.md and docs/*.md
    python scripts/sync_readme.py --check    # exit 1 if a page is out of date (the test suite runs this)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tyro

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- include: (?P<path>[^\n]+?) -->\n)(?P<body>.*?)(<!-- end include -->)", re.DOTALL)


def pages(root: Path = REPO) -> list:
    """The pages that may include result files: README.md and the docs/ pages (not the generated results)."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def section(text: str, heading: str, where: str) -> str:
    """The body of the first ``## heading...`` section of a markdown text (up to the next ``## ``)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"## {heading}")), None)
    if start is None:
        raise SystemExit(f"a page includes {where}: no '## {heading}' section there")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1 : end]).strip("\n")


def synced(text: str, root: Path) -> str:
    def replace(match: re.Match) -> str:
        path, _, heading = match["path"].partition("#")
        source = root / path
        if not source.is_file():
            raise SystemExit(f"a page under {root} includes {path}, which does not exist")
        body = source.read_text()
        body = section(body, heading, match["path"]) if heading else body.strip("\n")
        return match.group(1) + body + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


@dataclass
class SyncReadme:
    """Refresh the included result blocks of README.md and the docs/ pages."""

    readme: Optional[Path] = None
    """One page to update (included paths are relative to its folder); default: README.md and docs/*.md."""
    check: bool = False
    """Only report whether the pages are up to date."""

    def main(self) -> None:
        stale = []
        for page in [self.readme] if self.readme else pages():
            text = page.read_text()
            new = synced(text, page.parent)
            if self.check:
                if new != text:
                    stale.append(page)
                print(
                    f"{page}: {len(BLOCK.findall(text))} included blocks {'OUT OF DATE' if new != text else 'up to date'}"
                )
                continue
            page.write_text(new)
            print(f"{page}: {len(BLOCK.findall(new))} included blocks refreshed")
        if stale:
            sys.exit(
                f"out of date with their included result files: {', '.join(map(str, stale))}; run "
                "scripts/sync_readme.py"
            )


if __name__ == "__main__":
    tyro.cli(SyncReadme).main()
