"""``srflow sr`` and ``srflow eval`` as ``torchrun`` jobs: each worker does its share of the
inputs (:func:`srflow.workers.shard`, balanced by pixels) on its own device.

The workers never talk to each other: each derives its share from the same list of inputs,
writes its outputs (and, for ``eval``, each image's rows) atomically, and ``eval``'s rank 0
reads the others' rows from the output folder to write the tables. A worker that fails ends
the job as torchrun decides (``--max-restarts``: every worker starts again and skips what
was written).

Outputs do not depend on which worker made them: every image's samples come from the seed
and the image alone (each image starts from ``--seed``), so a job writes the same files as
one process with the same ``--threads`` and ``--batch-size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from srflow.data.image_io import image_size
from srflow.workers import Worker, shard


def device_for(worker: Worker, requested: str) -> str:
    """The device a worker uses: its own GPU (``cuda:LOCAL_RANK``) for ``auto`` or ``cuda``
    when there are GPUs, otherwise what was asked for."""
    if worker.enabled and requested in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{worker.local_rank % torch.cuda.device_count()}"
    return requested


def my_share(
    worker: Worker, keys: Sequence[str], paths: Sequence[Path], pinned: int | None = None
) -> list[int]:
    """Indices of the inputs this worker does: all of them for a single process (no file is
    opened); in a job, its share by pixels (read from each file's header). ``pinned`` goes
    to rank 0."""
    if not worker.enabled:
        return list(range(len(keys)))
    return shard(keys, [pixels_of(path) for path in paths], worker, pinned)


def pixels_of(path: Path) -> int:
    """An input's size for sharing the work (0 when its header cannot be read: reading it
    reports why)."""
    try:
        width, height = image_size(path)
    except ValueError:
        return 0
    return width * height
