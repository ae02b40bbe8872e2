"""--threads: auto uses the cores other work leaves free; a number is taken as it is;
OMP_NUM_THREADS is respected."""

from __future__ import annotations

import pytest
import torch

from srflow.cli import threads
from srflow.cli.main import main


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.torch, "get_num_threads", lambda: 2)


@pytest.mark.parametrize(("load", "expected"), [(0.0, 2), (0.8, 1), (1.4, 1), (5.0, 1)])
def test_auto_leaves_busy_cores_alone(
    two_cores: None, monkeypatch: pytest.MonkeyPatch, load: float, expected: int
) -> None:
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
    assert threads.auto_threads() == expected


def test_omp_num_threads_is_respected(two_cores: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    assert threads.auto_threads() is None


def test_the_option_sets_torch_threads(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        assert main(["--threads", "1", "info"]) in (0, 2)  # (with or without a default model)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            main(["--threads", bad, "info"])
        assert "--threads" in capsys.readouterr().err


def test_the_thread_count_changes_outputs_by_float_rounding_only() -> None:
    """auto picks the thread count from the machine's load: like --batch-size, it may change
    how convolutions round, never more (8-bit outputs: at most one level, in a tiny share)."""
    import numpy as np
    from skimage import data

    from srflow.inference.pipeline import SuperResolver
    from test_inference_api import tiny_model

    resolver = SuperResolver(tiny_model())
    crop = np.ascontiguousarray(data.astronaut()[40:200:4, 120:280:4])  # 40x40
    lr = torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0
    before = torch.get_num_threads()
    try:
        outs = []
        for count in (1, 2):
            torch.set_num_threads(count)
            outs.append(resolver.super_resolve(lr, 0.3, samples=2, seed=4))
    finally:
        torch.set_num_threads(before)
    levels = [torch.round(x * 255) for x in outs]
    assert (levels[0] - levels[1]).abs().max() <= 1
    assert (levels[0] != levels[1]).float().mean() < 1e-3
    assert (outs[0] - outs[1]).abs().max() < 1e-4
