"""Helpers shared by the command-line tools: one-line errors, output folders, default model."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

DEFAULT_MODEL_NAME = "default_x4.safetensors"


class CliError(Exception):
    """A problem to report on one line before exiting with status 2."""


def fail(message: str) -> None:
    """Print ``error: message`` on stderr."""
    print(f"error: {message}", file=sys.stderr)


def default_model_path() -> Path | None:
    """The model embedded in the package, if this install has one."""
    path = Path(str(resources.files("srflow") / "weights" / DEFAULT_MODEL_NAME))
    return path if path.is_file() else None


def resolve_model(path: str | None) -> Path:
    """``--model`` or the embedded default; a clear error when neither exists."""
    if path:
        return Path(path)
    default = default_model_path()
    if default is None:
        raise CliError(
            "no default model is embedded in this install; pass --model PATH "
            "(an srflow .safetensors, or an original SRFlow .pth such as SRFlow_DF2K_4X.pth)"
        )
    return default


def prepare_output_dir(path: Path) -> Path:
    """Create ``path`` and check that it is writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{path}: cannot create output folder ({exc.strerror})") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise CliError(f"{path}: output folder is not writable")
    return path


def collect_inputs(
    inputs: list[Path], suffixes: frozenset[str]
) -> tuple[list[Path], list[str], list[str]]:
    """Image files from files and folders (recursive), plus one-line notes on what was skipped
    (non-image files inside folders) and what is missing (named paths that do not exist).

    A named file is always returned: reading it reports what is wrong with it.
    """
    files: list[Path] = []
    skipped: list[str] = []
    missing: list[str] = []
    for item in inputs:
        if item.is_file():
            files.append(item)
        elif item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.is_file()):
                if path.suffix.lower() in suffixes:
                    files.append(path)
                elif not path.name.startswith("."):
                    skipped.append(f"{path}: skipped, not an image file")
        else:
            missing.append(f"{item}: no such file or folder")
    return files, skipped, missing
