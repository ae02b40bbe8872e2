"""SRFlow's flow step: ActNorm -> 1x1 conv -> Affine Injector -> Conditional Affine Coupling."""

from __future__ import annotations

import torch
from torch import Tensor

from srflow.flows.actnorm import ActNorm2d
from srflow.flows.base import FlowLayer
from srflow.flows.coupling import AffineInjector, ConditionalAffineCoupling
from srflow.flows.invconv import InvConv1x1
from srflow.flows.nets import SRFLOW_SUBNET, SubnetSpec


class FlowStep(FlowLayer):
    """One step of the conditional flow; with ``cond_channels=None`` a *transitional* step
    (ActNorm and 1x1 convolution only, used right after each squeeze).

    Args:
        channels: channels of the flowing tensor.
        cond_channels: channels of the conditioning tensor, or ``None`` for a transitional step.
        subnet: structure of the conditional sub-networks (SRFlow's by default).
        affine_eps: lower bound of the affine scales.
        generator: random source for initial weights.

    Example:
        >>> step = FlowStep(4, cond_channels=6, subnet=SubnetSpec(hidden_channels=8))
        >>> x, c = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 3, 3)
        >>> y, logdet = step(x, c)
        >>> torch.allclose(step.inverse(y, c)[0], x, atol=1e-5)
        True
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int | None = None,
        subnet: SubnetSpec = SRFLOW_SUBNET,
        affine_eps: float = 1e-4,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.actnorm = ActNorm2d(channels)
        self.invconv = InvConv1x1(channels, generator)
        self.injector: AffineInjector | None = None
        self.coupling: ConditionalAffineCoupling | None = None
        if cond_channels is not None:
            self.injector = AffineInjector(
                channels, cond_channels, subnet, affine_eps, generator
            )
            self.coupling = ConditionalAffineCoupling(
                channels, cond_channels, subnet, affine_eps, generator
            )

    @property
    def is_conditional(self) -> bool:
        """Whether this step has the conditional affine layers."""
        return self.injector is not None

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, logdet = self.actnorm(x)
        x, d = self.invconv(x)
        logdet = logdet + d
        if self.injector is not None and self.coupling is not None:
            x, d = self.injector(x, cond)
            logdet = logdet + d
            x, d = self.coupling(x, cond)
            logdet = logdet + d
        return x, logdet

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = y.new_zeros(y.shape[0])
        if self.injector is not None and self.coupling is not None:
            y, logdet = self.coupling.inverse(y, cond)
            y, d = self.injector.inverse(y, cond)
            logdet = logdet + d
            y = bound_overflow(y)
        y, d = self.invconv.inverse(y)
        logdet = logdet + d
        y, d = self.actnorm.inverse(y)
        return y, logdet + d


def bound_overflow(y: Tensor) -> Tensor:
    """``y`` with values beyond ``sqrt(max float)`` clamped: dividing by affine scales near
    ``affine_eps`` can overflow at high temperatures, and the 1x1 convolution would then mix
    +inf and -inf into NaN. Bounding the (already meaningless) values keeps the output
    finite; in-range values are unchanged."""
    bound = torch.finfo(y.dtype).max ** 0.5
    return y.clamp(-bound, bound)
