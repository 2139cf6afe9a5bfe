"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference (the real data no one here produced); skip when absent."""
    cand = Path(os.environ.get("SOFTDISPLACED_REFERENCE", REPO.parent / "shared" / "reference"))
    if not cand.exists():
        pytest.skip(f"reference data not found at {cand}")
    return cand


@pytest.fixture(scope="session")
def default_config(repo_root):
    from softdisplaced.config import load_config

    return load_config(repo_root / "config" / "config.yaml")
