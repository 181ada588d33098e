"""Shared fixtures: paths to the project's reference data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# Copies of shared/reference files the tests need (golden numerics, state-dict manifests), so a bare clone tests fully.
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "reference"
GOLDEN = REFERENCE / "vggt_golden"
LEGO = SHARED / "data" / "nerf_synthetic" / "lego"


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
