"""Optional system libraries and programs: what needs them, how to tell they are missing, which Debian package brings
them. The one home of that knowledge: ``make setup`` prints the install command, ``make system-deps`` runs it, the
tests skip (naming the package) only when the failing import is the named optional dependency.

    python -m tnerf_ns.system_deps            # what is missing and the apt-get command that installs it
    python -m tnerf_ns.system_deps --packages # only the Debian package names (for make system-deps)
"""

from __future__ import annotations

import ctypes.util
import shutil
import sys
from dataclasses import dataclass
from typing import Callable, Tuple


@dataclass(frozen=True)
class SystemDep:
    """An optional system dependency of the plugin or its tests."""

    name: str
    """What is looked for (a shared library or a program)."""
    apt: str
    """The Debian/Ubuntu package that brings it."""
    needed_by: str
    """What stops working without it."""
    present: Callable[[], bool]
    """Whether this machine has it (cheap: never imports the Python package that needs it)."""
    python_modules: Tuple[str, ...] = ()
    """Python packages whose import fails without it."""


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Executables of a Chromium-based browser (the viewer's browser test drives the first one found)."""

SYSTEM_DEPS: Tuple[SystemDep, ...] = (
    SystemDep(
        "libusb-1.0",
        "libusb-1.0-0",
        "open3d, hence ns-export (point clouds, meshes)",
        lambda: ctypes.util.find_library("usb-1.0") is not None,
        ("open3d",),
    ),  # fmt: skip
    SystemDep(
        "chromium",
        "chromium",
        "the viewer's browser test (tests/test_viewer_browser.py)",
        lambda: any(shutil.which(b) for b in BROWSERS),
    ),  # fmt: skip
)


def missing() -> Tuple[SystemDep, ...]:
    return tuple(dep for dep in SYSTEM_DEPS if not dep.present())


def apt_command(deps: Tuple[SystemDep, ...]) -> str:
    return "apt-get install -y " + " ".join(dep.apt for dep in deps)


def install_hint(python_module: str) -> str:
    """How to get an optional Python package importable: the system package it lacks, else pip."""
    top = python_module.split(".", maxsplit=1)[0]
    dep = next((dep for dep in SYSTEM_DEPS if top in dep.python_modules), None)
    return f"apt-get install {dep.apt} ({dep.name})" if dep else f"pip install {top}"


def main(argv: list) -> int:
    gone = missing()
    if "--packages" in argv:
        print(" ".join(dep.apt for dep in gone))
        return 0
    if not gone:
        print("system dependencies: all present (" + ", ".join(dep.name for dep in SYSTEM_DEPS) + ")")
        return 0
    for dep in gone:
        print(f"missing {dep.name}: {dep.needed_by} will not run (tests that need it are skipped)")
    print(f"install them with:  sudo {apt_command(gone)}   (or: sudo make system-deps)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
