"""README.md's result tables are the generated files (scripts/sync_readme.py), not hand-typed copies."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO


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
