"""In CI a test skipped for missing reference data fails; elsewhere it is a visible skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TEST = '''
from pathlib import Path

from conftest import need_path


def test_needs_reference_data():
    need_path(Path("/nonexistent/shared/vectors"))
'''


def _pytest(folder: Path, must_run: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SRFLOW_MUST_RUN"}
    if must_run:
        env["SRFLOW_MUST_RUN"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_a_reference_skip_fails_only_where_it_must_run(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_needs_data.py").write_text(TEST)
    relaxed = _pytest(tmp_path, must_run=False)
    assert relaxed.returncode == 0 and "1 skipped" in relaxed.stdout
    assert "the ../shared folder is absent" in relaxed.stdout  # -rs names the reason
    strict = _pytest(tmp_path, must_run=True)
    assert strict.returncode == 1 and "1 failed" in strict.stdout
    assert "must run in CI (SRFLOW_MUST_RUN=1)" in strict.stdout
