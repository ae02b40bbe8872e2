"""SRFlow's flow step: ActNorm -> 1x1 conv -> Affine Injector -> Conditional Affine Coupling;
NCSR's adds a noise-conditioned affine before the coupling."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from srflow.flows.actnorm import ActNorm2d
from srflow.flows.base import FlowLayer
from srflow.flows.coupling import AffineInjector, ConditionalAffineCoupling
from srflow.flows.invconv import InvConv1x1
from srflow.flows.nets import SRFLOW_SUBNET, SubnetSpec


class NoiseCondition(NamedTuple):
    """A noise-conditioned step's conditioning (NCSR): the encoder's features and the noise map
    at the step's size (``None``: the noise-conditioned part is skipped)."""

    features: Tensor
    noise_map: Tensor | None


def split_condition(cond: Tensor | NoiseCondition | None) -> tuple[Tensor | None, Tensor | None]:
    """``(features, noise map)`` of a step's conditioning (no noise map for a plain tensor)."""
    if isinstance(cond, NoiseCondition):
        return cond.features, cond.noise_map
    return cond, None


class FlowStep(FlowLayer):
    r"""One step of the conditional flow; with ``cond_channels=None`` a *transitional* step
    (ActNorm and 1x1 convolution only, used right after each squeeze).

    With ``noise_channels`` the step also has NCSR's noise-conditioned affine (Kim & Son, CVPRW
    2021), :math:`z_2 \leftarrow (z_2 + t(z_1, M)) \odot s(z_1, M)` for a noise map ``M``, run
    between the injector and the coupling when ``noise_active`` (every step has its weights;
    only some apply it). Its conditioning is then a :class:`NoiseCondition`.

    Args:
        channels: channels of the flowing tensor.
        cond_channels: channels of the conditioning tensor, or ``None`` for a transitional step.
        subnet: structure of the conditional sub-networks (SRFlow's by default).
        affine_eps: lower bound of the affine scales.
        generator: random source for initial weights.
        noise_channels: channels of the noise map, or ``None`` (no noise-conditioned part).
        noise_active: whether the noise-conditioned part is applied.

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
        noise_channels: int | None = None,
        noise_active: bool = False,
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
        self.noise: ConditionalAffineCoupling | None = None
        if noise_channels is not None:
            self.noise = ConditionalAffineCoupling(
                channels, noise_channels, subnet, affine_eps, generator
            )
        self.noise_active = noise_active

    @property
    def is_conditional(self) -> bool:
        """Whether this step has the conditional affine layers."""
        return self.injector is not None

    def noise_layer(self, noise_map: Tensor | None) -> ConditionalAffineCoupling | None:
        """The noise-conditioned affine when it applies to this step and this map."""
        return self.noise if self.noise_active and noise_map is not None else None

    def forward(
        self, x: Tensor, cond: Tensor | NoiseCondition | None = None
    ) -> tuple[Tensor, Tensor]:
        features, noise_map = split_condition(cond)
        x, logdet = self.actnorm(x)
        x, d = self.invconv(x)
        logdet = logdet + d
        if self.injector is not None and self.coupling is not None:
            x, d = self.injector(x, features)
            logdet = logdet + d
            if (noise := self.noise_layer(noise_map)) is not None:
                x, d = noise(x, noise_map)
                logdet = logdet + d
            x, d = self.coupling(x, features)
            logdet = logdet + d
        return x, logdet

    def inverse(
        self, y: Tensor, cond: Tensor | NoiseCondition | None = None
    ) -> tuple[Tensor, Tensor]:
        features, noise_map = split_condition(cond)
        logdet = y.new_zeros(y.shape[0])
        if self.injector is not None and self.coupling is not None:
            y, logdet = self.coupling.inverse(y, features)
            if (noise := self.noise_layer(noise_map)) is not None:
                y, d = noise.inverse(y, noise_map)
                logdet = logdet + d
            y, d = self.injector.inverse(y, features)
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
