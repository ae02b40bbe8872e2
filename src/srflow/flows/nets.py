"""Convolutions used inside the conditional sub-networks (Glow conventions)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srflow.flows.actnorm import ActNorm2d


class ConvActNorm2d(nn.Conv2d):
    """Bias-free 'same' convolution followed by an ActNorm (no log-det: not a flow layer).

    Weights start as ``N(0, 0.05^2)`` (Glow). The state-dict keys are ``weight`` and
    ``actnorm.bias``/``actnorm.logs``, as in the original SRFlow.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=generator) * 0.05)
        self.actnorm = ActNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.actnorm.normalize(super().forward(x))


class ZeroConv2d(nn.Conv2d):
    r"""Zero-initialized 3x3 'same' convolution with a learned output scale
    :math:`y = (W * x + b) \cdot e^{3\,\text{logs}}` (Glow's ``Conv2dZeros``)."""

    logscale_factor = 3.0

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)
        self.logs = nn.Parameter(torch.zeros(out_channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * torch.exp(self.logs * self.logscale_factor)


def conditioning_subnet(
    in_channels: int,
    out_channels: int,
    hidden_channels: int,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Conv3x3+ActNorm -> ReLU -> Conv1x1+ActNorm -> ReLU -> ZeroConv3x3.

    Module indices 0, 2 and 4 carry the parameters, matching the original SRFlow's keys.
    """
    return nn.Sequential(
        ConvActNorm2d(in_channels, hidden_channels, 3, generator),
        nn.ReLU(),
        ConvActNorm2d(hidden_channels, hidden_channels, 1, generator),
        nn.ReLU(),
        ZeroConv2d(hidden_channels, out_channels),
    )
