#!/usr/bin/env python3
"""Download the wheels a bare CUDA machine needs besides its scientific stack into ``.gpu-wheels/``.

    python3 scripts/gpu_wheels.py                 # what `make gpu-wheels` runs
    python3 scripts/gpu_wheels.py --out DIR --list scripts/gpu_wheels.txt --max-mib 30

The pinned list (``scripts/gpu_wheels.txt``, one ``name==version`` a line, ``#`` comments) is downloaded as Python
3.12 manylinux x86_64 binary wheels without dependencies (the list is the whole closure). Wheels in the folder that the
list no longer names are removed; a size table is printed, and the run fails if the folder exceeds ``--max-mib``.
On the machine: ``pip install --no-index --no-deps .gpu-wheels/*.whl`` then ``pip install --no-deps -e .``.
Only the standard library is used, so any ``python3`` with pip can run it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "manylinux_2_5_x86_64"]  # fmt: skip
PYTHON_VERSION = "3.12"


def canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> list[tuple[str, str]]:
    pins = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)", line)
        if match is None:
            raise SystemExit(f"{path}:{number}: expected `name==version`, got {raw!r}")
        pins.append((match.group(1), match.group(2)))
    names = [canonical(n) for n, _ in pins]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SystemExit(f"{path}: listed more than once: {', '.join(duplicates)}")
    return pins


def wheel_key(wheel: Path) -> tuple[str, str]:
    """(canonical name, version) from a wheel file name (``name-version-...-tags.whl``)."""
    name, version = wheel.name.split("-")[:2]
    return canonical(name), version


def download(name: str, version: str, out: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
               PYTHON_VERSION, "--implementation", "cp"]  # fmt: skip
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += ["--quiet", "-d", str(out), f"{name}=={version}"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=Path, default=REPO / "scripts" / "gpu_wheels.txt", help="pinned wheel list")
    parser.add_argument("--out", type=Path, default=REPO / ".gpu-wheels", help="wheel folder (git-ignored)")
    parser.add_argument("--max-mib", type=float, default=30.0, help="fail if the folder holds more than this")
    args = parser.parse_args()

    pins = read_pins(args.list)
    wanted = {canonical(n): v for n, v in pins}
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in sorted(p for p in args.out.iterdir() if p.is_file()):
        if stale.suffix != ".whl" or wanted.get(wheel_key(stale)[0]) != wheel_key(stale)[1]:
            print(f"removing stale {stale.name}")
            stale.unlink()
    have = {wheel_key(w): w for w in args.out.glob("*.whl")}
    for name, version in pins:
        if (canonical(name), version) not in have:
            download(name, version, args.out)

    wheels = {wheel_key(w): w for w in args.out.glob("*.whl")}
    missing = [f"{n}=={v}" for n, v in pins if (canonical(n), v) not in wheels]
    if missing:
        print(f"missing after download: {', '.join(missing)}", file=sys.stderr)
        return 1
    rows = sorted(((w.stat().st_size, w.name) for w in wheels.values()), reverse=True)
    total = sum(size for size, _ in rows)
    width = max(len(name) for _, name in rows)
    print(f"\n{'wheel':<{width}}  {'MiB':>7}")
    for size, name in rows:
        print(f"{name:<{width}}  {size / 2**20:7.2f}")
    print(f"{'total (' + str(len(rows)) + ' wheels)':<{width}}  {total / 2**20:7.2f}")
    if total > args.max_mib * 2**20:
        print(f"{args.out} holds {total / 2**20:.2f} MiB, over the {args.max_mib:g} MiB limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
