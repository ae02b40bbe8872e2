"""Divergence in the CLI: one ``warning:`` line per affected output file, and exit status 3.

The library reports a diverged inverse flow with :class:`~srflow.divergence.DivergenceWarning`
(per image of a batch); the commands catch those while they decode and name each output
written with diverged values. Exit status 3 means: everything was written, but some outputs
hold clamped garbage where the flow diverged.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from srflow.divergence import DivergenceWarning

#: Exit status of a command whose outputs were all written, some with diverged values.
DIVERGED_STATUS = 3


class DivergenceLog:
    """Diverged outputs of one command run: :meth:`catch` while decoding, then
    :meth:`report` for each output written from what was caught."""

    def __init__(self) -> None:
        self.outputs = 0
        self.caught: list[DivergenceWarning] = []

    @contextmanager
    def catch(self) -> Iterator[None]:
        """Collect the :class:`DivergenceWarning`\\ s issued inside; other warnings pass."""
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always", DivergenceWarning)
            try:
                yield
            finally:
                others = [r for r in records if not isinstance(r.message, DivergenceWarning)]
                self.caught += [
                    r.message for r in records if isinstance(r.message, DivergenceWarning)
                ]
        for r in others:
            warnings.warn_explicit(r.message, r.category, r.filename, r.lineno)

    def take(self) -> list[DivergenceWarning]:
        """The warnings caught since the last :meth:`take`."""
        caught, self.caught = self.caught, []
        return caught

    def report(self, target: Path, found: list[DivergenceWarning], index: int = 0) -> None:
        """A ``warning:`` line for each kind of problem of image ``index`` in ``found``
        (diverged values; inconsistent with its input), naming its output ``target``."""
        kinds = set()
        for warning in found:
            if index < len(warning.diverged) and warning.diverged[index]:
                if type(warning) in kinds:
                    continue
                kinds.add(type(warning))
                tqdm.write(f"warning: {target}: {warning.describe(index)}", file=sys.stderr)
        self.outputs += bool(kinds)

    def status(self, status: int) -> int:
        """``status``, or :data:`DIVERGED_STATUS` when it is 0 and an output diverged."""
        return DIVERGED_STATUS if status == 0 and self.outputs else status
