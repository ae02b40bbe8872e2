"""Invertible 1x1 convolution (Glow)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srflow.flows.base import FlowLayer, batch_constant


class InvConv1x1(FlowLayer):
    r"""Channel mixing :math:`y = W x` at every pixel, with a dense ``W`` of shape ``(C, C)``.

    ``log|det| = H W \log|\det W|``. The inverse matrix is computed in float64 and cast to the
    input's dtype (float32 inputs reproduce the original SRFlow; float64 stays float64).
    Initialized to a random rotation drawn from ``generator``.

    Example:
        >>> layer = InvConv1x1(4, generator=torch.Generator().manual_seed(0))
        >>> x = torch.randn(2, 4, 3, 3)
        >>> y, logdet = layer(x)
        >>> torch.allclose(layer.inverse(y)[0], x, atol=1e-6)
        True
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
        self.weight = nn.Parameter(q)

    def _logabsdet(self, x: Tensor) -> Tensor:
        return torch.linalg.slogdet(self.weight)[1] * (x.shape[2] * x.shape[3])

    def inverse_weight(self) -> Tensor:
        """``W^-1`` (computed in float64, cast to the weight's dtype)."""
        return torch.linalg.inv(self.weight.double()).to(self.weight.dtype)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        c = self.weight.shape[0]
        y = F.conv2d(x, self.weight.view(c, c, 1, 1))
        return y, batch_constant(self._logabsdet(x), x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        c = self.weight.shape[0]
        x = F.conv2d(y, self.inverse_weight().to(y.dtype).view(c, c, 1, 1))
        return x, batch_constant(-self._logabsdet(y), y)
