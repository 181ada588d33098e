"""README.md's result tables are the generated files (scripts/sync_readme.py), not hand-typed copies."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))


def test_readme_tables_match_generated_results():
    proc = subprocess.run([sys.executable, "scripts/sync_readme.py", "--check"], cwd=REPO, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "included blocks up to date" in proc.stdout


def test_sync_replaces_blocks_and_names_missing_files(tmp_path):
    (tmp_path / "table.md").write_text("| a |\n|---|\n| 1 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- include: table.md -->\nold\n<!-- end include -->\nafter\n")
    run = [sys.executable, str(REPO / "scripts/sync_readme.py"), "--readme", str(readme)]
    assert subprocess.run([*run, "--check"], capture_output=True, check=False).returncode != 0
    subprocess.run(run, check=True, capture_output=True)
    assert readme.read_text() == "intro\n<!-- include: table.md -->\n| a |\n|---|\n| 1 |\n<!-- end include -->\nafter\n"
    readme.write_text("<!-- include: missing.md -->\n<!-- end include -->\n")
    proc = subprocess.run([*run, "--check"], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "missing.md" in proc.stderr


def test_sync_includes_one_section(tmp_path):
    (tmp_path / "bench.md").write_text("# T\n\n## Backbone (x)\n\n| a |\n\n## Renderer\n\n| b |\n")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- include: bench.md#Backbone -->\n<!-- end include -->\n")
    subprocess.run([sys.executable, str(REPO / "scripts/sync_readme.py"), "--readme", str(readme)], check=True,
                   capture_output=True)  # fmt: skip
    assert readme.read_text() == "<!-- include: bench.md#Backbone -->\n| a |\n<!-- end include -->\n"


# ---------------------------------------------------------------- README as a front page, docs/ pages linked from it
import re  # noqa: E402

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MAX_README_LINES = 260


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"^#+ ", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text only
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path) -> set:
    fence, found = False, set()
    for line in path.read_text().splitlines():
        fence ^= line.startswith("```")
        if not fence and re.match(r"^#+ ", line):
            found.add(slug(line))
    return found


def broken_links(page) -> list:
    """Relative links (files, images, #anchors) of a markdown page that do not resolve."""
    broken, fence = [], False
    for n, line in enumerate(page.read_text().splitlines(), 1):
        fence ^= line.startswith("```")
        if fence:
            continue
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}:{n}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.name}:{n}: {target} (no such heading)")
    return broken


def test_every_link_of_readme_and_the_docs_pages_resolves():
    from sync_readme import pages

    assert [p.name for p in pages()][0] == "README.md" and len(pages()) > 5
    broken = [b for page in pages() for b in broken_links(page)]
    assert not broken, "\n".join(broken)


def test_the_link_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\n## Section `x.py`\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](a.md#section-xpy) [gone](b.md) [bad](a.md#nope) ![img](pic.png) [web](https://x.y)\n"
                    "```\n[in a code block](nowhere.md)\n```\n[self](#title)\n# Title\n")  # fmt: skip
    assert broken_links(page) == ["README.md:1: b.md (no such file)", "README.md:1: a.md#nope (no such heading)",
                                  "README.md:1: pic.png (no such file)"]  # fmt: skip


def test_readme_is_a_front_page():
    text = (REPO / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most {MAX_README_LINES})"
    first = "\n".join(lines[:60])
    assert "one forward pass" in first  # what it is
    assert "<!-- include: docs/results/glance.md -->" in first  # how good, against what (generated table)
    assert "make demo" in first and "make test" in first  # how to run it
    glance = (REPO / "docs/results/glance.md").read_text()
    assert "empty field" in glance and "nerfacto" in glance
    for page in ("method", "results", "dynamic", "posefree", "export_viewer", "gpu", "robustness", "development"):
        assert f"(docs/{page}.md" in text, f"README does not link docs/{page}.md"
