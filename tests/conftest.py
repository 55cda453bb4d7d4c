"""Shared fixtures: where the real media lives (skip cleanly without it), temp dirs, leak checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("S2T_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (or $S2T_SHARED_DATA); tests needing it skip with the reason when absent."""
    if not (SHARED_DATA / "MANIFEST.md").is_file():
        pytest.skip(f"real media not found at {SHARED_DATA} (set S2T_SHARED_DATA); users need not have it")
    return SHARED_DATA


@pytest.fixture(scope="session")
def speech_files(shared_data: Path) -> list[Path]:
    files = sorted(p for p in (shared_data / "speech").iterdir() if p.is_file())
    if not files:
        pytest.skip("no speech clips in shared data")
    return files
