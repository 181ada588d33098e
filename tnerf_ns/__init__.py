"""T-NeRF: feed-forward radiance fields from a frozen VGGT backbone, as a nerfstudio plugin."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

__version__ = "0.1.0"


def _allow_numpy_scalars_in_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` (the default since torch 2.6) read nerfstudio 1.1.5 checkpoints.

    nerfstudio's ExponentialDecayScheduler stores numpy float64 values in the scheduler state; without these safe
    globals ``ns-eval``, ``ns-render``, ``ns-viewer`` and ``--load-dir`` fail with "Unsupported global". Only numpy
    scalar/dtype reconstruction is allowed: no arbitrary code.
    """
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is None:  # torch < 2.4 does not restrict unpickling by default
        return
    try:  # numpy >= 2
        from numpy._core.multiarray import scalar
    except ImportError:
        from numpy.core.multiarray import scalar
    allowed = [scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    allowed += [getattr(dtypes, n) for n in ("Float64DType", "Float32DType", "Int64DType") if hasattr(dtypes, n)]
    add_safe_globals(allowed)


_allow_numpy_scalars_in_checkpoints()


def _provide_ffmpeg() -> None:
    """``ns-render`` videos need an ``ffmpeg`` executable on PATH; use the one in the imageio-ffmpeg wheel if the
    machine has none (``make setup`` also links it into the virtual environment)."""
    if shutil.which("ffmpeg"):
        return
    try:
        import imageio_ffmpeg

        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # wheel missing or its binary unusable: nerfstudio then reports ffmpeg missing itself
        return
    bin_dir = Path(tempfile.gettempdir()) / f"tnerf_ns-bin-{os.getuid()}"
    try:
        bin_dir.mkdir(exist_ok=True)
        link = bin_dir / "ffmpeg"
        if not link.exists():
            link.symlink_to(exe)
    except OSError:
        return
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


_provide_ffmpeg()
# nerfstudio 1.1.5 indexes tensors with lists, which torch >= 2.9 warns about on every ray batch
warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")
