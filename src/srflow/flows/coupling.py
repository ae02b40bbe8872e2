"""Conditional affine layers of SRFlow (Lugmayr et al., ECCV 2020, Sec. 3.3)."""

from __future__ import annotations

import torch
from torch import Tensor

from srflow.flows.base import FlowLayer, sum_except_batch
from srflow.flows.nets import SRFLOW_SUBNET, SubnetSpec, make_subnet


def shift_and_scale(h: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Interleaved split of a sub-network output: even channels shift, odd channels scale.

    The scale is ``sigmoid(raw + 2) + eps``, in ``(eps, 1 + eps)``.
    """
    return h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0) + eps


def broadcast_batch(t: Tensor, batch: int) -> Tensor:
    """Tile a per-image tensor ``(b, ...)`` over ``batch = k * b`` rows, sample-major (row
    ``s * b + i`` is image ``i``, as ``torch.cat`` of ``k`` groups of ``b``). A batch of one is
    returned as it is: elementwise arithmetic broadcasts it without a copy."""
    if t.shape[0] in (1, batch):
        return t
    if batch % t.shape[0]:
        raise ValueError(f"batch {batch} is not a multiple of the conditioning batch {t.shape[0]}")
    return t.repeat(batch // t.shape[0], *([1] * (t.dim() - 1)))


def _log_scale_sum(scale: Tensor, batch: int) -> Tensor:
    """``sum log(scale)`` per sample, for a scale computed once per image."""
    logdet = sum_except_batch(torch.log(scale))
    return logdet.repeat(batch // logdet.shape[0])


class AffineInjector(FlowLayer):
    r"""Affine map of all channels whose parameters depend only on the conditioning:
    :math:`y = (x + t(c)) \odot s(c)`, ``log|det| = \sum \log s(c)``.

    The conditioning may hold each image once while ``x`` holds ``k`` samples of each
    (batch ``k * B``, sample-major): ``t`` and ``s`` are then computed once per image.

    Args:
        channels: channels of ``x``.
        cond_channels: channels of the conditioning tensor (same spatial size as ``x``).
        subnet: structure of the sub-network (SRFlow's by default).
        eps: lower bound added to the sigmoid scale.
        generator: random source for the sub-network's initial weights.

    Example:
        >>> layer = AffineInjector(4, 6, SubnetSpec(hidden_channels=8))
        >>> x, c = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 3, 3)
        >>> y, logdet = layer(x, c)
        >>> torch.allclose(layer.inverse(y, c)[0], x, atol=1e-6)
        True
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int,
        subnet: SubnetSpec = SRFLOW_SUBNET,
        eps: float = 1e-4,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.net = make_subnet(cond_channels, 2 * channels, subnet, generator)

    def shift_and_scale(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``(t(c), s(c))``, each image of ``cond`` once."""
        assert cond is not None, "AffineInjector needs a conditioning tensor"
        return shift_and_scale(self.net(cond), self.eps)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, scale = self.shift_and_scale(cond)  # type: ignore[arg-type]
        y = (x + broadcast_batch(shift, x.shape[0])) * broadcast_batch(scale, x.shape[0])
        return y, _log_scale_sum(scale, x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, scale = self.shift_and_scale(cond)  # type: ignore[arg-type]
        x = y / broadcast_batch(scale, y.shape[0]) - broadcast_batch(shift, y.shape[0])
        return x, -_log_scale_sum(scale, y.shape[0])


class ConditionalAffineCoupling(FlowLayer):
    r"""Affine coupling conditioned on the first half of the channels and on ``cond``:
    ``x1`` (the first ``C // 2`` channels) passes through and
    :math:`y_2 = (x_2 + t(x_1, c)) \odot s(x_1, c)` (RealNVP/Glow with SRFlow's conditioning).

    Example:
        >>> layer = ConditionalAffineCoupling(4, 6, SubnetSpec("plain", 8, depth=2, kernel=3))
        >>> x, c = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 3, 3)
        >>> y, logdet = layer(x, c)
        >>> torch.equal(y[:, :2], x[:, :2])
        True
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int,
        subnet: SubnetSpec = SRFLOW_SUBNET,
        eps: float = 1e-4,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.passive = channels // 2
        active = channels - self.passive
        self.net = make_subnet(self.passive + cond_channels, 2 * active, subnet, generator)

    def shift_and_scale(self, x1: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``(t(x1, c), s(x1, c))``; ``cond`` may hold each image once."""
        assert cond is not None, "ConditionalAffineCoupling needs a conditioning tensor"
        cond = broadcast_batch(cond, x1.shape[0]).expand(x1.shape[0], *cond.shape[1:])
        return shift_and_scale(self.net(torch.cat([x1, cond], dim=1)), self.eps)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x1, x2 = x[:, : self.passive], x[:, self.passive :]
        shift, scale = self.shift_and_scale(x1, cond)  # type: ignore[arg-type]
        y2 = (x2 + shift) * scale
        return torch.cat([x1, y2], dim=1), sum_except_batch(torch.log(scale))

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y1, y2 = y[:, : self.passive], y[:, self.passive :]
        shift, scale = self.shift_and_scale(y1, cond)  # type: ignore[arg-type]
        x2 = y2 / scale - shift
        return torch.cat([y1, x2], dim=1), -sum_except_batch(torch.log(scale))
