"""Conditional affine layers of SRFlow (Lugmayr et al., ECCV 2020, Sec. 3.3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.flows.base import FlowLayer, logdet_wanted, sum_except_batch
from srflow.flows.folding import can_fold, folded, halves_order
from srflow.flows.nets import SRFLOW_SUBNET, SubnetSpec, ZeroConv2d, add_relu_, make_subnet
from srflow.flows.packed import KeptConv
from srflow.flows.prepared import PreparedCond


def _shift_and_scale(h: Tensor, eps: float) -> tuple[Tensor, Tensor]:
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


def _negated_shift(h: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``(-shift, scale)`` of :func:`_shift_and_scale`."""
    shift, scale = _shift_and_scale(h, eps)
    return -shift, scale


def _logdet(scale: Tensor, batch: int) -> Tensor:
    if not logdet_wanted():
        return scale.new_zeros(batch)
    logdet = sum_except_batch(torch.log(scale))
    return logdet.repeat(batch // logdet.shape[0])


def _layout_of(weight: Tensor) -> torch.memory_format:
    """The memory format of a convolution weight (channels-last once the model is laid out
    for the CPU: :func:`~srflow.inference.pipeline.inference_layout`)."""
    if weight.is_contiguous() or not weight.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


def _shift_then_scale(last: ZeroConv2d) -> tuple[Tensor, Tensor]:
    """``last``'s folded weight and bias giving all shifts, then all raw scales with the
    ``+ 2`` of the scale's sigmoid already added (:func:`~srflow.flows.folding.halves_order`)."""
    weight, bias = halves_order(*last.folded_params())
    bias[weight.shape[0] // 2 :] += 2.0
    return weight, bias


class AffineInjector(FlowLayer):
    r"""Affine map of all channels whose parameters depend only on the conditioning:
    :math:`y = (x + t(c)) \odot s(c)`, ``log|det| = \sum \log s(c)``.

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

    def _params(self, cond: Tensor | PreparedCond | None, batch: int) -> tuple[Tensor, Tensor]:
        assert cond is not None, "AffineInjector needs a conditioning tensor"
        if isinstance(cond, PreparedCond):
            shift, scale = cond.term(self, lambda c: _shift_and_scale(self.net(c), self.eps))
        else:
            shift, scale = _shift_and_scale(self.net(cond), self.eps)
        return broadcast_batch(shift, batch), broadcast_batch(scale, batch)

    def _inverse_terms(self, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(-shift, 1 / scale, log-det per image)`` of the inverse map."""
        shift, scale = _shift_and_scale(self.net(c), self.eps)
        return -shift, 1.0 / scale, -sum_except_batch(torch.log(scale))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        shift, scale = self._params(cond, x.shape[0])
        return (x + shift) * scale, _logdet(scale, x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if isinstance(cond, PreparedCond) and can_fold():
            # kept per image: x = y * (1 / scale) - shift in one fused operation
            neg_shift, inv_scale, logdet = cond.term(self, self._inverse_terms, "inverse")
            x = torch.addcmul(broadcast_batch(neg_shift, y.shape[0]), y, inv_scale)
            return x, logdet.repeat(y.shape[0] // logdet.shape[0])
        shift, scale = self._params(cond, y.shape[0])
        return y / scale - shift, -_logdet(scale, y.shape[0])


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

    def _params(self, x1: Tensor, cond: Tensor | PreparedCond | None) -> tuple[Tensor, Tensor]:
        """``(-shift, scale)``: negated, the shift is what the folded sub-network gives and
        the inverse's fused ``y2 / scale + (-shift)`` needs (the same values bit for bit)."""
        assert cond is not None, "ConditionalAffineCoupling needs a conditioning tensor"
        if not isinstance(cond, PreparedCond) and cond.shape[0] == x1.shape[0]:
            return _negated_shift(self.net(torch.cat([x1, cond], dim=1)), self.eps)
        # Several samples share one conditioning tensor (or it is prepared): the first
        # convolution is linear in its input channels, so its conditioning part is computed
        # once per image (and kept by a PreparedCond).
        p = self.passive

        def cond_part(c: Tensor) -> Tensor:
            weight, bias = self.net.first_params()
            return F.conv2d(c, weight[:, p:], bias, padding=weight.shape[-1] // 2)

        part = cond.term(self, cond_part) if isinstance(cond, PreparedCond) else cond_part(cond)
        part = broadcast_batch(part, x1.shape[0])
        if not can_fold():
            weight = self.net.first_params()[0]
            hidden = F.conv2d(x1, weight[:, :p], padding=weight.shape[-1] // 2) + part
            return _negated_shift(self.net.tail(hidden), self.eps)
        x_conv, last_conv = self._sampling_params()
        if not x1.is_contiguous(memory_format=torch.channels_last):
            # the passing half of a channels-last tensor is strided; the copy F.conv2d would
            # make lets the packed convolution run
            x1 = x1.contiguous(memory_format=_layout_of(x_conv.weight))
        a = add_relu_(x_conv(x1), part)
        h = last_conv(self.net.hidden_layers(a))
        half = h.shape[1] // 2
        # the sigmoid of all channels: a contiguous tensor takes the vectorized kernel (a
        # strided half of a channels-last one ran 4x slower, for half the work)
        return h[:, :half], torch.sigmoid(h).add_(self.eps)[:, half:]

    def _sampling_params(self) -> tuple[KeptConv, KeptConv]:
        """The per-sample convolutions of the folded sub-network, kept (:func:`folded`) and
        packed (:class:`~srflow.flows.packed.KeptConv`): the first convolution's part for
        ``x1`` (a contiguous copy: oneDNN's fast path needs one) and the last convolution
        giving ``-shift``, then the sigmoid's input."""

        def compute() -> tuple[KeptConv, KeptConv]:
            weight = self.net.first_params()[0]
            layout = _layout_of(weight)
            last_weight, last_bias = _shift_then_scale(self.net.last)
            half = last_weight.shape[0] // 2
            last_weight[:half].neg_()
            last_bias[:half].neg_()
            x_weight = weight[:, : self.passive].contiguous(memory_format=layout)
            return (
                KeptConv.of(x_weight, None),
                KeptConv.of(last_weight.contiguous(memory_format=layout), last_bias),
            )

        sources = (*self.net.first.parameters(), *self.net.last.parameters())
        return folded(self, "sampling", sources, compute)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x1, x2 = x[:, : self.passive], x[:, self.passive :]
        neg_shift, scale = self._params(x1, cond)
        y2 = (x2 - neg_shift) * scale
        return torch.cat([x1, y2], dim=1), _logdet(scale, x.shape[0])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y1, y2 = y[:, : self.passive], y[:, self.passive :]
        neg_shift, scale = self._params(y1, cond)
        if not can_fold():
            return torch.cat([y1, y2 / scale + neg_shift], dim=1), -_logdet(scale, y.shape[0])
        x = torch.empty_like(y)  # both halves written in place: no concatenation copy
        x[:, : self.passive] = y1
        torch.addcdiv(neg_shift, y2, scale, out=x[:, self.passive :])
        return x, -_logdet(scale, y.shape[0])
