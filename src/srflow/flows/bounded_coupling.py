"""Affine couplings with bounded log-scales (HCFlow, Liang et al., ICCV 2021).

The log-scale is ``0.318 * atan(2 s)``, within about ``±0.5``: the scale cannot collapse or
explode, unlike SRFlow's ``sigmoid(s + 2)``. Sub-networks are passed in (any module mapping
the right channel counts; HCFlow uses SRFlow's :class:`~srflow.flows.nets.ActNormSubnet`
and, in its rescaling trunk, :class:`~srflow.flows.nets.DenseSubnet`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srflow.flows.base import FlowLayer, sum_except_batch

#: HCFlow's log-scale bound factor (``0.318 ~ 1 / pi``: ``|log-scale| < 0.318 * pi / 2``).
ATAN_FACTOR = 0.318


def bounded_log_scale(raw: Tensor) -> Tensor:
    """``0.318 * atan(2 * raw)``."""
    return ATAN_FACTOR * torch.atan(2.0 * raw)


class BoundedAffineCoupling(FlowLayer):
    r"""``x1`` (the first ``C // 2`` channels) passes through and
    :math:`y_2 = (x_2 + t) \odot e^{l}` with ``(t, s) = net([x1, cond])`` split interleaved
    (even channels shift, odd channels raw scale) and :math:`l = 0.318 \operatorname{atan}(2s)`.

    Args:
        channels: channels of ``x``.
        net: maps ``C // 2 + cond_channels`` to ``2 * (C - C // 2)`` channels.
        conditional: whether ``cond`` is concatenated to ``x1`` (HCFlow's conditional steps).

    Example:
        >>> from srflow.flows.nets import ActNormSubnet, SubnetSpec
        >>> net = ActNormSubnet(2 + 3, 4, SubnetSpec(hidden_channels=8))
        >>> layer = BoundedAffineCoupling(4, net, conditional=True)
        >>> x, c = torch.randn(2, 4, 3, 3), torch.randn(2, 3, 3, 3)
        >>> torch.allclose(layer.inverse(layer(x, c)[0], c)[0], x, atol=1e-6)
        True
    """

    def __init__(self, channels: int, net: nn.Module, conditional: bool = False) -> None:
        super().__init__()
        self.passive = channels // 2
        self.net = net
        self.conditional = conditional

    def _params(self, x1: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.conditional:
            assert cond is not None, "a conditional coupling needs a conditioning tensor"
            x1 = torch.cat([x1, cond], dim=1)
        h = self.net(x1)
        return h[:, 0::2], bounded_log_scale(h[:, 1::2])

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x1, x2 = x[:, : self.passive], x[:, self.passive :]
        shift, log_scale = self._params(x1, cond)
        y2 = (x2 + shift) * torch.exp(log_scale)
        return torch.cat([x1, y2], dim=1), sum_except_batch(log_scale)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y1, y2 = y[:, : self.passive], y[:, self.passive :]
        shift, log_scale = self._params(y1, cond)
        x2 = y2 * torch.exp(-log_scale) - shift
        return torch.cat([y1, x2], dim=1), -sum_except_batch(log_scale)


class LowpassAffineShift(FlowLayer):
    r"""HCFlow's rescaling-trunk coupling (``Affine3shift``) between the first ``lowpass``
    channels (the low-pass image) and the rest.

    ``affine=True`` (even steps): the low-pass channels pass through and condition a bounded
    affine map of the others, :math:`y_h = (x_h + t(x_l)) \odot e^{l(x_l)}`.
    ``affine=False`` (odd steps): the others pass through and shift the low-pass channels,
    :math:`y_l = x_l + t(x_h)` (volume preserving).

    Args:
        channels: channels of ``x``.
        net: ``lowpass -> 2 (C - lowpass)`` channels (affine) or ``C - lowpass -> lowpass``.
        affine: which of the two steps this is.
        lowpass: channels of the low-pass part (3: an RGB image).
    """

    def __init__(self, channels: int, net: nn.Module, affine: bool, lowpass: int = 3) -> None:
        super().__init__()
        self.lowpass = lowpass
        self.net = net
        self.affine = affine

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        low, high = x[:, : self.lowpass], x[:, self.lowpass :]
        if not self.affine:
            return torch.cat([low + self.net(high), high], dim=1), x.new_zeros(x.shape[0])
        h = self.net(low)
        log_scale = bounded_log_scale(h[:, 1::2])
        high = (high + h[:, 0::2]) * torch.exp(log_scale)
        return torch.cat([low, high], dim=1), sum_except_batch(log_scale)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        low, high = y[:, : self.lowpass], y[:, self.lowpass :]
        if not self.affine:
            return torch.cat([low - self.net(high), high], dim=1), y.new_zeros(y.shape[0])
        h = self.net(low)
        log_scale = bounded_log_scale(h[:, 1::2])
        high = high * torch.exp(-log_scale) - h[:, 0::2]
        return torch.cat([low, high], dim=1), -sum_except_batch(log_scale)
