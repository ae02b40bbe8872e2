"""Exponential moving average of model weights (validated and exported when enabled)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class ModelEMA:
    """A frozen copy of a model whose floating-point parameters track an EMA of the original.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so short runs
    are not dominated by the initial weights. An update can be weighted by a 0/1 device tensor
    (``keep``), so a skipped (non-finite) step leaves the average untouched without a host sync.

    Args:
        model: the model to track (copied; the copy is put in eval mode).
        decay: the asymptotic decay, e.g. 0.999.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    def _pairs(self, model: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
        ema, src = [], []
        for e, p in zip(self.module.parameters(), model.parameters(), strict=True):
            if e.is_floating_point():
                ema.append(e)
                src.append(p.detach())
        return ema, src

    @torch.no_grad()
    def update(self, model: nn.Module, keep: Tensor | None = None) -> None:
        """Move the average towards ``model``; ``keep`` (0-d, 1 = apply) may cancel it."""
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema, src = self._pairs(model)
        weight = 1.0 - decay
        if keep is None:
            torch._foreach_lerp_(ema, src, weight)
        else:
            deltas = torch._foreach_sub(src, ema)
            torch._foreach_mul_(deltas, keep.to(ema[0].dtype) * weight)
            torch._foreach_add_(ema, deltas)
        self.updates += 1

    def state_dict(self) -> dict[str, object]:
        """Weights and update count (for training checkpoints)."""
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`."""
        self.module.load_state_dict(state["weights"])  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[arg-type]
