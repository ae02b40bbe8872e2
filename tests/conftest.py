"""Shared fixtures: the reference vectors folder and a fixed seed per test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"
SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "spec"


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)


def need_path(path: Path) -> Path:
    """Skip the test with a clear reason if ``path`` (from ../shared) is absent."""
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (the ../shared folder is absent)")
    return path
