"""How many CPU threads a command uses: by default, the cores that are not already busy.

Measured with ``benchmarks/threads.py`` (2-core CPU, embedded model, 4 samples): on an idle
machine 2 threads took 0.72-1.00 x the time of 1 thread; with both cores busy with other work
they took 2.0-2.2 x, as the threads wait for each other. So ``auto`` uses the cores left free by
the current load (the 1-minute load average), at least 1; ``OMP_NUM_THREADS`` set in the
environment is respected as it is.
"""

from __future__ import annotations

import argparse
import os

import torch

from srflow.workers import Worker


def threads_arg(text: str) -> str | int:
    """argparse type of ``--threads``: ``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        message = f"not a thread count: {text!r} (a number or auto)"
        raise argparse.ArgumentTypeError(message) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--threads must be at least 1, got {value}")
    return value


def auto_threads() -> int | None:
    """The cores not busy with other work (``None``: leave torch's setting, as
    ``OMP_NUM_THREADS`` chose it); one of a torchrun job's workers takes its share of the
    node's cores (torchrun's default ``OMP_NUM_THREADS=1`` would leave the rest idle)."""
    worker = Worker.from_env()
    if worker.local_world_size > 1:
        return max(1, (os.cpu_count() or 1) // worker.local_world_size)
    if "OMP_NUM_THREADS" in os.environ:
        return None
    available = torch.get_num_threads()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return None
    return max(1, min(available, round((os.cpu_count() or available) - busy)))


def apply_threads(requested: str | int) -> None:
    """Set torch's intra-op thread count from ``--threads``."""
    count = auto_threads() if requested == "auto" else int(requested)
    if count is not None:
        torch.set_num_threads(count)
