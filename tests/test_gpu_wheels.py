"""scripts/gpu_wheels.py: the committed pin list parses, stale wheels go, the size limit holds (offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import gpu_wheels  # noqa: E402


def test_committed_list_parses_and_names_the_framework():
    pins = dict((gpu_wheels.canonical(n), v) for n, v in gpu_wheels.read_pins(REPO / "scripts" / "gpu_wheels.txt"))
    assert pins["nerfstudio"] == "1.1.5" and {"tyro", "viser", "gsplat", "nerfacc"} <= set(pins)
    assert "imageio-ffmpeg" not in pins  # optional (27 MB): tnerf_ns imports it in try/except


def _fake_folder(tmp_path: Path, size: int) -> Path:
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\nfoo_bar==1.0  # why\nbaz==2.0\n")
    out = tmp_path / "wheels"
    out.mkdir()
    for name in ("foo_bar-1.0-py3-none-any.whl", "baz-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"):
        (out / name).write_bytes(b"x" * size)
    (out / "baz-1.0-py3-none-any.whl").write_bytes(b"old")  # stale version
    (out / "gone-3.0-py3-none-any.whl").write_bytes(b"old")  # no longer listed
    return listing


def _run(listing: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_wheels.py"), "--list", str(listing), "--out",
                           str(listing.parent / "wheels"), *extra], capture_output=True, text=True, check=False)  # fmt: skip


def test_stale_wheels_are_removed_and_sizes_tabled(tmp_path):
    listing = _fake_folder(tmp_path, 1000)
    proc = _run(listing)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "wheels").iterdir()) == [
        "baz-2.0-cp312-cp312-manylinux_2_17_x86_64.whl", "foo_bar-1.0-py3-none-any.whl"]  # fmt: skip
    assert "removing stale gone-3.0" in proc.stdout and "total (2 wheels)" in proc.stdout


def test_size_limit_fails(tmp_path):
    proc = _run(_fake_folder(tmp_path, 2**20), "--max-mib", "1.5")
    assert proc.returncode == 1 and "over the 1.5 MiB limit" in proc.stderr
