"""SRFlow's flow step: ActNorm -> 1x1 conv -> Affine Injector -> Conditional Affine Coupling."""

from __future__ import annotations

import torch
from torch import Tensor

from srflow.flows.actnorm import ActNorm2d
from srflow.flows.base import FlowLayer, batch_constant, logdet_wanted
from srflow.flows.coupling import AffineInjector, ConditionalAffineCoupling
from srflow.flows.folding import can_fold, folded
from srflow.flows.invconv import InvConv1x1
from srflow.flows.nets import SRFLOW_SUBNET, SubnetSpec
from srflow.flows.packed import KeptConv


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
            # Dividing by affine scales near ``affine_eps`` can overflow at high temperatures;
            # the 1x1 conv would then mix +inf and -inf into NaN. Bounding the (already
            # meaningless) values keeps the output finite; in-range values are unchanged.
            bound = torch.finfo(y.dtype).max ** 0.5
            y = y.clamp_(-bound, bound) if can_fold() else y.clamp(-bound, bound)
        if can_fold():
            conv, logdet_per_pixel = self._folded_inverse()
            y = conv(y)
            if logdet_wanted():
                logdet = logdet + batch_constant(logdet_per_pixel * y[0, 0].numel(), y)
            return y, logdet
        y, d = self.invconv.inverse(y)
        logdet = logdet + d
        y, d = self.actnorm.inverse(y)
        return y, logdet + d

    def _folded_inverse(self) -> tuple[KeptConv, Tensor]:
        """The inverse 1x1 convolution and inverse ActNorm as one 1x1 convolution with a bias
        (kept, packed: :class:`~srflow.flows.packed.KeptConv`):
        ``x = diag(exp(-logs)) W^-1 y - bias``, and their log-det per pixel."""
        norm, conv = self.actnorm, self.invconv

        def compute() -> tuple[KeptConv, Tensor]:
            c = conv.weight.shape[0]
            weight = conv.inverse_weight() * torch.exp(-norm.logs.reshape(c, 1))
            logdet = -torch.linalg.slogdet(conv.weight)[1] - norm.logs.sum()
            return KeptConv.of(weight.view(c, c, 1, 1), -norm.bias.reshape(c)), logdet

        return folded(self, "inverse", (conv.weight, norm.logs, norm.bias), compute)
