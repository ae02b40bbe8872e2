"""Run observability: a JSONL metrics log, optional TensorBoard, and the progress bar.

``RUN_DIR/metrics.jsonl`` gets one JSON object per line: training lines (``"kind": "train"``:
step, stage, loss, bits_per_dim, lr, grad_norm, it_per_s, skipped, skipped_total) at every log
interval, validation lines (``"kind": "val"``) and events (``"kind": "event"``: rollbacks,
stage changes). Only rank 0 creates a :class:`MetricsLog`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

logger = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf
    return value


def _keep_until(path: Path, step: int) -> None:
    """Rewrite ``path`` (atomically) with only its complete records of steps up to ``step``."""
    from srflow.files import atomic_path

    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            if record["step"] <= step:
                kept.append(line + "\n")
    with atomic_path(path) as temporary:
        temporary.write_text("".join(kept), encoding="utf-8")


class MetricsLog:
    """Append-only JSONL log (flushed per line) with an optional TensorBoard mirror.

    Args:
        path: the ``.jsonl`` file (appended to, so a resumed run continues it).
        tensorboard_dir: write TensorBoard events here too, if the package is installed.
        resumed_at: the step a resumed run continues from: the records of later steps (written
            after that checkpoint by the run that was killed, and written again now) are
            removed first, and so is a line cut short by the kill.
    """

    def __init__(
        self, path: Path, tensorboard_dir: Path | None = None, resumed_at: int | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if resumed_at is not None and path.is_file():
            _keep_until(path, resumed_at)
        self._file = path.open("a", encoding="utf-8")
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning("tensorboard is not installed (pip install 'srflow[tensorboard]')")
            else:
                purge = None if resumed_at is None else resumed_at + 1
                self._tb = SummaryWriter(str(tensorboard_dir), purge_step=purge)

    def write(self, kind: str, step: int, **values: Any) -> None:
        """Append one record ``{"kind", "step", "time", **values}``."""
        record = {"kind": kind, "step": step, "time": round(time.time(), 3)}
        record.update({k: _clean(v) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        """Flush and close."""
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def progress_bar(start: int, total: int, enabled: bool) -> tqdm:
    """A tqdm bar over global steps (disabled on non-main ranks)."""
    return tqdm(
        total=total, initial=start, disable=not enabled, unit="it", dynamic_ncols=True,
        desc="train", smoothing=0.05,
    )  # fmt: skip
