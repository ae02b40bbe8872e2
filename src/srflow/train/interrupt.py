"""Ctrl-C in training: finish the step, save a checkpoint there, say how to resume.

The first SIGINT only asks the loop to stop: the running step completes, a checkpoint of that
step is written (atomically, as every checkpoint) and :class:`TrainingInterrupted` names it. The
handler is then the default one again, so a second Ctrl-C raises ``KeyboardInterrupt`` at once
(the last periodic checkpoint stays). With several processes (``torchrun`` signals each) the
ranks agree at the next logging step, so that all of them save the same step together.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import torch

from srflow.train import distributed as dist


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on request after saving ``checkpoint`` at ``step``."""

    def __init__(self, run_dir: Path, step: int, checkpoint: Path) -> None:
        self.run_dir, self.step, self.checkpoint = run_dir, step, checkpoint
        super().__init__(
            f"interrupted at step {step}; saved {checkpoint}; continue with "
            f"`srflow train --resume --out {run_dir}`"
        )


class StopRequest:
    """Whether the user asked the run to stop (see the module docstring)."""

    def __init__(self) -> None:
        self.requested = False

    def should_stop(self, at_log: bool, ctx: dist.DistContext, device: torch.device) -> bool:
        """Stop now? One process: as soon as asked. Several: at a logging step, if any rank
        was asked (every rank takes part in that vote, so they all stop on the same step)."""
        if not ctx.enabled:
            return self.requested
        if not at_log:
            return False
        flag = torch.tensor(float(self.requested), device=device)
        return bool(dist.any_rank(flag, ctx).item() > 0.5)


@contextmanager
def stop_on_interrupt(notify: Callable[[str], None] | None) -> Iterator[StopRequest]:
    """A :class:`StopRequest` set by the first SIGINT while inside (main thread only; else
    Ctrl-C behaves as usual)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.getsignal(signal.SIGINT)

    def first_interrupt(signum: int, frame: FrameType | None) -> None:
        request.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one quits at once
        if notify is not None:
            notify("stopping after this step to save a checkpoint (Ctrl-C again quits now)")

    signal.signal(signal.SIGINT, first_interrupt)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
