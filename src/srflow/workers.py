"""This process's place in a ``torchrun`` job, and the share of the work that falls to it.

``torchrun --nproc-per-node N [--nnodes M ...] -m srflow sr|eval ...`` starts N processes per
node and gives each ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` (and,
after a restart of failed workers, ``TORCHELASTIC_RESTART_COUNT``). srflow schedules
nothing itself: every worker lists the same inputs, and :func:`shard` gives each its share
by the same deterministic rule, so no worker has to ask another what to do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Worker:
    """One process of a job (``world_size == 1``: a plain single process).

    Attributes:
        rank: this worker's index among all of the job's (0 .. world_size - 1).
        world_size: the job's workers, all nodes together.
        local_rank: its index on this node (its GPU, when there are GPUs).
        local_world_size: the workers on this node (they share its cores and memory).
        restart: how many times torchrun restarted the workers (0: the first attempt).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    restart: int = 0

    @classmethod
    def from_env(cls) -> Worker:
        """This process as torchrun described it (a single process without torchrun)."""
        env = os.environ

        def number(name: str, default: int) -> int:
            text = env.get(name, "")
            return int(text) if text.isdigit() else default

        world = number("WORLD_SIZE", 1)
        if world <= 1:
            return cls(restart=number("TORCHELASTIC_RESTART_COUNT", 0))
        restart = number("TORCHELASTIC_RESTART_COUNT", 0)
        return cls(number("RANK", 0), world, number("LOCAL_RANK", 0),
                   number("LOCAL_WORLD_SIZE", 1), restart)  # fmt: skip

    @property
    def enabled(self) -> bool:
        """Whether this is one of several workers."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes what the whole job shares (summaries, reports)."""
        return self.rank == 0

    @property
    def label(self) -> str:
        """``worker 1/4`` (empty for a single process): how messages name the worker."""
        return f"worker {self.rank}/{self.world_size}" if self.enabled else ""


def shard(
    keys: Sequence[str], weights: Sequence[float], worker: Worker, pinned: int | None = None
) -> list[int]:
    """Indices (in their original order) of the items that fall to ``worker``.

    The heaviest item goes first to the least loaded worker (the lowest rank on a tie), and
    so on down: every worker computes the same assignment from the same ``keys`` and
    ``weights`` (e.g. relative paths and pixel counts), and the loads stay within one item of
    each other. ``pinned``: an item that goes to rank 0 before the others are shared.

    Example:
        >>> [shard("abcd", [1, 5, 2, 2], Worker(rank, 2)) for rank in (0, 1)]
        [[1], [0, 2, 3]]
    """
    if len(keys) != len(weights):
        raise ValueError("shard: one weight per key")
    loads = [0.0] * worker.world_size
    owner = [0] * len(keys)
    if pinned is not None:
        loads[0] = weights[pinned]
    rest = [i for i in range(len(keys)) if i != pinned]
    for index in sorted(rest, key=lambda i: (-weights[i], keys[i])):
        rank = min(range(worker.world_size), key=lambda r: (loads[r], r))
        owner[index] = rank
        loads[rank] += weights[index]
    return [i for i in range(len(keys)) if owner[i] == worker.rank]
