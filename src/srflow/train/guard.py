"""Non-finite step guard: skip, count, and decide when to roll back.

Every step records a 0-d device flag (1 = the loss or the gradient norm was NaN/Inf). The
flags live in a ring buffer on the device, so recording costs a few tiny kernels and no host
synchronization; :meth:`NonFiniteGuard.check` (called at log intervals) reads the counts once.
The optimizer update of a flagged step is cancelled on the device as well (see
:func:`optimizer_step`), so a skipped step changes nothing.

Policy: once ``max_nonfinite`` flags fall within any ``window`` consecutive steps, the loop
rolls back to the last checkpoint and scales the learning rate by ``rollback_lr_factor``;
after ``max_rollbacks`` rollbacks it raises :class:`TrainingDivergedError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class TrainingDivergedError(RuntimeError):
    """Training kept producing non-finite losses or gradients despite rollbacks."""


@dataclass(frozen=True)
class GuardReport:
    """What happened since the previous check.

    Attributes:
        skipped: non-finite (skipped) steps since the previous check.
        tripped: the budget (``max_nonfinite`` within ``window`` steps) was reached.
        in_window: the most skipped steps within one window since the previous check (what
            tripped it).
    """

    skipped: int
    tripped: bool
    in_window: int = 0


class NonFiniteGuard:
    """Device-side counts of skipped steps (see module docstring).

    Args:
        window: length of the sliding window, in steps.
        max_nonfinite: skips within the window that trip the guard.
        device: where the counters live (the training device).
    """

    def __init__(self, window: int, max_nonfinite: int, device: torch.device) -> None:
        self.window, self.max_nonfinite = window, max_nonfinite
        self._flags = torch.zeros(window, device=device)
        self._in_window = torch.zeros((), device=device)
        self._peak = torch.zeros((), device=device)
        self._pending = torch.zeros((), device=device)
        self.skipped_total = 0

    @staticmethod
    def is_bad(loss: Tensor, grad_norm: Tensor) -> Tensor:
        """0-d float flag: 1 if ``loss`` or ``grad_norm`` is not finite (no host sync)."""
        finite = torch.isfinite(loss).all() & torch.isfinite(grad_norm)
        return (~finite).float()

    def record(self, step: int, bad: Tensor) -> None:
        """Record step ``step``'s flag (a 0-d float tensor, 0 or 1)."""
        slot = step % self.window
        self._in_window.add_(bad - self._flags[slot])
        self._flags[slot] = bad
        torch.maximum(self._peak, self._in_window, out=self._peak)
        self._pending.add_(bad)

    def check(self) -> GuardReport:
        """Synchronize once and report skips since the previous check."""
        pending, peak = (int(v) for v in torch.stack([self._pending, self._peak]).tolist())
        self._pending.zero_()
        self._peak.copy_(self._in_window)
        self.skipped_total += pending
        return GuardReport(skipped=pending, tripped=peak >= self.max_nonfinite, in_window=peak)

    def reset_window(self) -> None:
        """Forget the recent flags (after a rollback); the total is kept."""
        for t in (self._flags, self._in_window, self._peak, self._pending):
            t.zero_()


def optimizer_step(optimizer: torch.optim.Optimizer, bad: Tensor) -> None:
    """Adam step that changes nothing when ``bad`` (0-d, 1.0) is set.

    Fused Adam takes the flag on the device (``found_inf``, the hook ``GradScaler`` uses), so
    no host synchronization is needed; other optimizers fall back to reading the flag.
    """
    if all(group.get("fused") for group in optimizer.param_groups):
        optimizer.found_inf = bad  # type: ignore[attr-defined]
        optimizer.step()
    elif not bool(bad):
        optimizer.step()
