"""Shared fixtures: paths to the project's reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# Copies of shared/reference files the tests need (golden numerics, state-dict manifests), so a bare clone tests fully.
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "reference"
GOLDEN = REFERENCE / "vggt_golden"
LEGO = SHARED / "data" / "nerf_synthetic" / "lego"


def pytest_configure(config) -> None:
    """Under pytest-xdist (``make test`` runs two workers) each worker and the CLIs it starts use one CPU thread: the
    workers share the cores instead of oversubscribing them (a test that compares thread counts sets its own)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not GOLDEN.is_dir():
        pytest.skip(f"golden fixture not found at {GOLDEN}")
    return GOLDEN


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference folder not found at {REFERENCE}")
    return REFERENCE


# session fixtures shared by the end-to-end tests: tiny rendered multi-scene datasets (static, dynamic) and tiny runs
from helpers import dynamic_scenes, scenes, trained, trained_dynamic  # noqa: E402, F401
