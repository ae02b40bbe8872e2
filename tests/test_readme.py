"""The README's Python examples run as written (from the repository root) and do what their
comments say."""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.slow
def test_readme_python_blocks_run_as_written(tmp_path: Path) -> None:
    from srflow.divergence import DivergenceWarning

    blocks = _python_blocks()
    assert len(blocks) == 2
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DivergenceWarning)  # no example diverges
            first: dict[str, object] = {}
            exec(compile(blocks[0], "README block 1", "exec"), first)  # noqa: S102
            second: dict[str, object] = {}
            exec(compile(blocks[1], "README block 2", "exec"), second)  # noqa: S102
    finally:
        os.chdir(cwd)
    assert (tmp_path / "astronaut_sr.png").is_file()
    x, big = first["x"], first["big"]
    assert isinstance(x, torch.Tensor) and x.shape == (4, 3, 512, 512)
    assert len(big) == 1 and big[0].size == (512, 512)  # type: ignore[arg-type]
    hr, hr_again = second["hr"], second["hr_again"]
    assert isinstance(hr, torch.Tensor) and isinstance(hr_again, torch.Tensor)
    assert (hr_again - hr).abs().max() < 1e-3  # the exact inverse, in float32
    sample = second["x"]
    assert isinstance(sample, torch.Tensor) and sample.shape == (10, 1, 3, 128, 128)
