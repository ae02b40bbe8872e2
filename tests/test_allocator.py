"""The allocator tuning the srflow command applies on start (srflow.inference.allocator)."""

from __future__ import annotations

import sys

import pytest

from srflow.cli.main import main
from srflow.inference import allocator
from srflow.inference.allocator import keep_freed_memory


def test_the_users_own_malloc_settings_and_opt_out_are_respected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("SRFLOW_MALLOC", "default")
    assert keep_freed_memory() is False


def test_other_platforms_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_glibc_is_tuned_and_the_command_tunes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in allocator.os.environ if n.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("SRFLOW_MALLOC", raising=False)
    assert keep_freed_memory() is True
    calls: list[bool] = []
    monkeypatch.setattr("srflow.cli.main.keep_freed_memory", lambda: calls.append(True))
    assert main(["info"]) == 0 and calls == [True]
