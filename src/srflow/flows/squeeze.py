"""Space-to-channel squeeze (RealNVP/Glow)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from srflow.flows.base import FlowLayer


class Squeeze2d(FlowLayer):
    """``(B, C, H, W) -> (B, f^2 C, H/f, W/f)`` for the factor ``f`` (2 unless given);
    output channel ``f^2 c + f i + j`` holds pixel ``(f h + i, f w + j)`` of channel ``c``
    (the ordering of the original SRFlow, and of SRFlow-DA-S's one squeeze by the whole
    scale). Volume preserving: log-det 0.

    Example:
        >>> import torch
        >>> y, _ = Squeeze2d()(torch.arange(16.0).view(1, 1, 4, 4))
        >>> y[0, :, 0, 0].tolist()
        [0.0, 1.0, 4.0, 5.0]
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        f = self.factor
        if x.shape[2] % f or x.shape[3] % f:
            raise ValueError(
                f"squeeze by {f} needs height and width divisible by {f}, "
                f"got {tuple(x.shape[2:])}"
            )
        return F.pixel_unshuffle(x, f), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return F.pixel_shuffle(y, self.factor), y.new_zeros(y.shape[0])

    def extra_repr(self) -> str:
        return f"factor={self.factor}"
