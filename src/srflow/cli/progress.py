"""The progress bar of a sampling run: whole samples, or (tiled) fractions of them.

A tiled run reports each tile as the fraction of a sample it finished. Those fractions are
shown as a percentage (a count such as ``0.0052083/1`` says nothing), and their sum is clamped
to the total (floating-point sums of the tile shares can exceed it by a rounding error, which
made tqdm warn and show a negative time left).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from srflow.cli.common import progress_shown

#: A tiled run's bar: percent done, elapsed and remaining time (no fractional counts).
FRACTION_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"


class SampleProgress:
    """``update(amount)`` with whole or fractional samples; the bar never passes its total."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.done = 0.0

    def update(self, amount: float) -> None:
        self.done = min(float(self.bar.total), self.done + amount)
        self.bar.n = self.done
        self.bar.refresh()


@contextmanager
def sample_progress(desc: str, total: int, tiled: bool) -> Iterator[SampleProgress]:
    """A bar for ``total`` samples (a percentage when ``tiled``), closed afterwards."""
    options = {"bar_format": FRACTION_FORMAT} if tiled else {"unit": "sample"}
    with tqdm(total=total, desc=desc, leave=False, disable=not progress_shown(),
              **options) as bar:  # type: ignore[arg-type]
        progress = SampleProgress(bar)
        yield progress
