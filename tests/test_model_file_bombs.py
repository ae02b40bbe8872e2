"""A model file's metadata cannot make the loader build a network before its weights are
checked: every bomb below is refused in one line naming the file, exit 2, in seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from srflow.checkpoints import CheckpointError, load_model
from srflow.cli.main import main
from srflow.inference.api import default_model_path
from test_cli_sr import errors

DEFAULT_MODEL = default_model_path()


def _edited(tmp_path: Path, stem: str, changes: dict[str, str] | None = None) -> Path:
    """The embedded model with some metadata values replaced."""
    with safe_open(str(DEFAULT_MODEL), "pt") as f:
        metadata = {**f.metadata(), **(changes or {})}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    path = tmp_path / f"{stem}.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


def _config(**sections: dict[str, int]) -> str:
    with safe_open(str(DEFAULT_MODEL), "pt") as f:
        config = json.loads(f.metadata()["config"])
    for section, values in sections.items():
        config[section].update(values)
    return json.dumps(config)


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("name", "changes", "reason"),
    [
        ("wide", {"config": _config(encoder={"features": 65536})}, "larger network than"),
        ("wider", {"config": _config(encoder={"features": 2048})}, "larger network than"),
        ("deep", {"config": _config(flow={"steps_per_level": 1_000_000})}, "larger network"),
        ("narrow", {"config": _config(encoder={"features": 16})}, "does not match the model"),
        ("nested", {"config": "[" * 5000 + "]" * 5000}, "invalid model config (nested too"),
        ("long", {"config": DEEP}, "invalid model config (200,000 characters"),
        ("bounds", {"inverse_bounds": "[" * 5000 + "]" * 5000}, "malformed inverse_bounds"),
        ("huge", {"name": "x" * 2**21}, "characters of metadata, more than"),
    ],
)
def test_metadata_bombs_are_refused_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, changes: dict[str, str],
    reason: str,
) -> None:  # fmt: skip
    path = _edited(tmp_path, name, changes)
    start = time.perf_counter()
    assert main(["info", str(path)]) == 2
    (line,) = errors(capsys)
    assert line.startswith(f"error: {path}: ") and reason in line, line
    assert time.perf_counter() - start < 15  # 1,000,000 steps took minutes and 18 GB
    with pytest.raises(CheckpointError, match=reason.split(" (")[0]):
        load_model(path)


def test_the_check_leaves_a_good_file_loading_as_before(tmp_path: Path) -> None:
    model = load_model(_edited(tmp_path, "same"))
    assert sum(p.numel() for p in model.parameters()) == 3_372_691
    assert all(p.device.type == "cpu" for p in model.parameters())
