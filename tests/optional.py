"""Import an optional dependency in a test, skipping only when *that* dependency is what fails to import.

``pytest.importorskip`` skips on a missing module only: open3d installed without its system library libusb-1.0
raises a plain ``ImportError`` and stopped collection. Catching every ``ImportError`` instead would hide a broken
import in tnerf_ns itself. So an ``ImportError`` becomes a skip only when it comes from the named package (the module
missing, or its own files failing to load a shared library) and nothing of tnerf_ns is involved.
"""

from __future__ import annotations

import importlib
import importlib.util
import traceback
from pathlib import Path
from types import ModuleType
from typing import Optional

import pytest

import tnerf_ns
from tnerf_ns.system_deps import install_hint

OWN_CODE = Path(tnerf_ns.__file__).resolve().parent


def _package_dir(module: str) -> Optional[Path]:
    """Where the optional package's files live, found without executing it (None when it is not installed)."""
    try:
        spec = importlib.util.find_spec(module.split(".", maxsplit=1)[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve().parent if spec.origin else None


def _inside(path: str, folder: Optional[Path]) -> bool:
    return folder is not None and Path(path).resolve().is_relative_to(folder)


def is_the_optional_dependency(err: ImportError, module: str) -> bool:
    """Whether ``err`` (raised by ``import module``) is the optional package failing, not the project's code."""
    top = module.split(".", maxsplit=1)[0]
    name = err.name or ""
    if isinstance(err, ModuleNotFoundError) and (name == top or name.startswith(top + ".")):
        return True  # the package (or a part of it) is not installed
    if name == "tnerf_ns" or name.startswith("tnerf_ns."):
        return False
    files = [frame.filename for frame in traceback.extract_tb(err.__traceback__)]
    if any(_inside(f, OWN_CODE) for f in files):
        return False
    return any(_inside(f, _package_dir(module)) for f in files)  # raised while the package's own files ran


def import_optional(module: str) -> ModuleType:
    """``import module``, or skip the calling test naming the module, the error and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if not is_the_optional_dependency(err, module):
            raise
        pytest.skip(f"optional dependency {module} cannot be imported ({err}); install: {install_hint(module)}")
