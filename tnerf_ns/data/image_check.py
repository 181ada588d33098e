"""Checking a dataset's images when it is set up, so that a damaged file stops nothing in the middle of training.

Each image is opened (header: format and size), then fully decoded once; the verdict is cached per file content
(path, size in bytes, modification time) in memory and in the user's cache folder, so later runs and ranks only stat
the files. Multi-scene data skips a damaged scene with a warning that names the file; a single-scene dataset is
refused with the file's name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

from PIL import Image, UnidentifiedImageError

CACHE_FILE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tnerf_ns" / "image_checks.json"
"""Verdicts of earlier runs (a file changed since is checked again)."""
_MEMORY: Dict[str, Tuple[Optional[str], Optional[Tuple[int, int]]]] = {}


class ImageCheckError(ValueError):
    """An image of a dataset cannot be used; the message names the file."""


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _decode(path: Path) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """(problem or None, (height, width) or None) of one file."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)", None
    try:
        with Image.open(path) as image:
            size = (image.height, image.width)  # the header
            image.load()  # the whole file: truncated data fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        return f"not a readable image ({type(err).__name__}: {err})", None
    return None, size


def check_image(path: Path) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """The problem of one image file (None when usable) and its size; cached by file content."""
    path = Path(path)
    if not path.is_file():
        return "missing file", None
    key = _key(path)
    if key not in _MEMORY:
        _MEMORY[key] = _decode(path)
    return _MEMORY[key]


def _load_disk_cache() -> Dict[str, list]:
    try:
        return json.loads(CACHE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def _save_disk_cache(entries: Dict[str, list]) -> None:
    try:
        CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
        tmp = CACHE_FILE.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, CACHE_FILE)
    except OSError:  # a read-only home costs a re-check next time, nothing else
        pass


def damaged_images(paths: Iterable[Path]) -> Dict[Path, str]:
    """Every unusable image among ``paths`` with its problem (empty when all are fine)."""
    disk = _load_disk_cache()
    for key, (problem, size) in disk.items():
        _MEMORY.setdefault(key, (problem, tuple(size) if size else None))
    problems: Dict[Path, str] = {}
    for path in paths:
        problem, _ = check_image(Path(path))
        if problem is not None:
            problems[Path(path)] = problem
    if len(_MEMORY) != len(disk):
        _save_disk_cache({k: [p, list(s) if s else None] for k, (p, s) in _MEMORY.items()})
    return problems


def image_size(path: Path) -> Optional[Tuple[int, int]]:
    """(height, width) of a checked image."""
    return check_image(Path(path))[1]
