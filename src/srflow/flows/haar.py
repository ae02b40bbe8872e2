"""Haar wavelet squeeze (invertible image rescaling, IRN / HCFlow's rescaling trunk)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srflow.flows.base import FlowLayer


def haar_filters(channels: int) -> Tensor:
    """The ``(4 C, 1, 2, 2)`` filters: per input channel the average (all +1), left - right,
    top - bottom and diagonal patterns, filter ``k`` of channel ``c`` at row ``4 c + k``."""
    base = torch.tensor(
        [[[1.0, 1.0], [1.0, 1.0]], [[1.0, -1.0], [1.0, -1.0]],
         [[1.0, 1.0], [-1.0, -1.0]], [[1.0, -1.0], [-1.0, 1.0]]]
    ).unsqueeze(1)  # fmt: skip
    return base.repeat(channels, 1, 1, 1)


class HaarSqueeze2d(FlowLayer):
    r"""``(B, C, H, W) -> (B, 4C, H/2, W/2)``: each 2x2 block of each channel is mapped by the
    four Haar filters divided by 4; filter ``k`` of channel ``c`` goes to output channel
    ``k C + c``, so the first ``C`` channels are the low-pass (block mean) image.

    The filters are a fixed, non-trainable parameter ``haar_weights`` (the original
    checkpoints store them). ``log|det| = -H W C \log(4) / 2`` (each block's map has
    determinant ``16 / 4^4``); the inverse is the transposed convolution.

    Example:
        >>> layer = HaarSqueeze2d(1)
        >>> y, _ = layer(torch.arange(4.0).view(1, 1, 2, 2))
        >>> y.flatten().tolist()
        [1.5, -0.5, -1.0, 0.0]
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.haar_weights = nn.Parameter(haar_filters(channels), requires_grad=False)

    def _logdet(self, x: Tensor, pixels: int) -> Tensor:
        value = -pixels * self.channels * math.log(16.0) / 4
        return x.new_full((x.shape[0],), value)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Haar squeeze needs even height and width, got {(h, w)}")
        y = F.conv2d(x, self.haar_weights.to(x.dtype), stride=2, groups=c) / 4.0
        y = y.view(b, c, 4, h // 2, w // 2).transpose(1, 2).reshape(b, 4 * c, h // 2, w // 2)
        return y, self._logdet(x, h * w)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, c4, h, w = y.shape
        c = c4 // 4
        x = y.view(b, 4, c, h, w).transpose(1, 2).reshape(b, c4, h, w)
        x = F.conv_transpose2d(x, self.haar_weights.to(y.dtype), stride=2, groups=c)
        return x, -self._logdet(y, 4 * h * w)
