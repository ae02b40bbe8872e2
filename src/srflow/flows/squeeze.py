"""Space-to-channel squeeze (RealNVP/Glow)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from srflow.flows.base import FlowLayer


class Squeeze2d(FlowLayer):
    """``(B, C, H, W) -> (B, 4C, H/2, W/2)``; output channel ``4c + 2i + j`` holds pixel
    ``(2h + i, 2w + j)`` of channel ``c`` (the ordering of the original SRFlow). Volume
    preserving: log-det 0.

    Example:
        >>> import torch
        >>> y, _ = Squeeze2d()(torch.arange(16.0).view(1, 1, 4, 4))
        >>> y[0, :, 0, 0].tolist()
        [0.0, 1.0, 4.0, 5.0]
    """

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"squeeze needs even height and width, got {tuple(x.shape[2:])}")
        return F.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return F.pixel_shuffle(y, 2), y.new_zeros(y.shape[0])
