"""Atomic writes: all or nothing, and ordinary permissions on the finished file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from srflow.checkpoints import write_safetensors
from srflow.files import atomic_file, new_file_mode


def test_finished_file_has_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "a.txt", "w") as handle:
            handle.write("done")
        write_safetensors(tmp_path / "w.safetensors", {"x": torch.zeros(2)}, {})
    finally:
        os.umask(old)
    for name in ("a.txt", "w.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert new_file_mode() == 0o666 & ~old


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_every_data_file_of_the_package_is_installed() -> None:
    """Non-Python files under src/srflow must match a package-data pattern of pyproject.toml,
    or `pip install .` leaves them out (the editable install of the tests would hide it)."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["srflow"]  # fmt: skip
    package = root / "src" / "srflow"
    data = [
        p.relative_to(package).as_posix() for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]  # fmt: skip
    missing = [f for f in data if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert "metrics/data/niqe_pris_params.npz" in data and not missing, missing
