"""Folding: per-channel affine maps merged into the convolutions around them.

The sampling twin runs a layer from *folded* parameters derived from its own: a convolution
followed by an ActNorm or an output scale becomes one convolution with a bias
(:func:`scaled_conv`, recomputed on each call: one pass over the weights instead of two over
the activations, and no second copy of the weights in memory), and the inverse 1x1
convolution and inverse ActNorm of a flow step one 1x1 convolution (a matrix inverse, so
kept: :func:`folded` keeps such derived tensors on the module and recomputes them whenever
one of the parameters they come from changes: an optimizer step, a ``load_state_dict``, a
move to another device or dtype). The reference layers (:mod:`srflow.flows`) never fold, so
training differentiates the original graph.

Folded and unfolded results agree within rounding: decoding agrees within 1e-10 in float64
on tiny models of SRFlow and every SRFlow-DA variant (tests/test_sampling_twin.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from srflow.flows.nets import ConvActNorm2d, ZeroConv2d

T = TypeVar("T")
_CACHE = "_folded_cache"


def _state(t: Tensor) -> tuple[object, ...]:
    """What changes when a tensor's values may have: its version counter (in-place updates;
    inference tensors have none), storage address, dtype and device (``module.to`` and
    ``module.double`` swap a parameter's data without bumping its version)."""
    return (0 if t.is_inference() else t._version, t.data_ptr(), t.dtype, t.device)


class _Entry:
    """A derived value and the exact source tensors (by identity and version) it came from."""

    def __init__(self, sources: tuple[Tensor, ...], value: object) -> None:
        self.sources = [(weakref.ref(t), _state(t)) for t in sources]
        self.value = value

    def matches(self, sources: tuple[Tensor, ...]) -> bool:
        return len(sources) == len(self.sources) and all(
            ref() is t and state == _state(t)
            for t, (ref, state) in zip(sources, self.sources, strict=True)
        )


class _Cache(dict):
    """The derived values of one module. A copy of the module (``copy.deepcopy``, as the
    training EMA makes; ``pickle``) starts with an empty one: every value is recomputed from
    the copy's own parameters on first use, and oneDNN-packed weights
    (:mod:`srflow.sampling.packed`) have no storage to copy."""

    def __deepcopy__(self, memo: dict[int, object]) -> _Cache:
        return _Cache()

    def __reduce__(self) -> tuple[type[_Cache], tuple[()]]:
        return _Cache, ()


def folded(
    module: nn.Module, name: str, sources: tuple[Tensor, ...], compute: Callable[[], T]
) -> T:
    """``compute()`` (without gradients), kept on ``module`` under ``name`` until one of the
    ``sources`` tensors changes.

    Example:
        >>> conv = nn.Conv2d(1, 1, 1)
        >>> double = lambda: conv.weight * 2
        >>> first = folded(conv, "w2", (conv.weight,), double)
        >>> first is folded(conv, "w2", (conv.weight,), double)
        True
        >>> with torch.no_grad():
        ...     _ = conv.weight.add_(1.0)         # an in-place update: recomputed
        >>> torch.equal(folded(conv, "w2", (conv.weight,), double), conv.weight * 2)
        True
    """
    cache: dict[str, _Entry] = module.__dict__.setdefault(_CACHE, _Cache())
    entry = cache.get(name)
    if entry is None or not entry.matches(sources):
        with torch.no_grad():
            entry = _Entry(sources, compute())
        cache[name] = entry
    return entry.value  # type: ignore[return-value]


def scaled_conv(
    weight: Tensor, bias: Tensor | None, shift: Tensor | None, log_scale: Tensor, factor: float
) -> tuple[Tensor, Tensor]:
    """Weight and bias of ``(conv(x, weight) + bias + shift) * exp(factor * log_scale)``
    (per output channel) as one convolution."""
    scale = torch.exp(factor * log_scale.reshape(-1))
    b = torch.zeros_like(scale) if bias is None else bias.reshape(-1)
    if shift is not None:
        b = b + shift.reshape(-1)
    return weight * scale.view(-1, *([1] * (weight.dim() - 1))), b * scale


def halves_order(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """A convolution's weight and bias with output channels reordered from interleaved pairs
    (even, odd, even, odd, ...) to all even then all odd: its output splits into two
    contiguous halves instead of two strided views."""
    out = weight.shape[0]
    order = torch.cat([torch.arange(0, out, 2), torch.arange(1, out, 2)]).to(weight.device)
    return weight[order].contiguous(), bias[order].clone()


def conv_actnorm_params(conv: ConvActNorm2d) -> tuple[Tensor, Tensor]:
    """Weight and bias of a convolution and its ActNorm as one convolution (computed on each
    call: a pass over the weights, not over the activations, and no copy kept)."""
    return scaled_conv(conv.weight, None, conv.actnorm.bias, conv.actnorm.logs, 1.0)


def zero_conv_params(conv: ZeroConv2d) -> tuple[Tensor, Tensor]:
    """Weight and bias of a zero-initialized convolution with its output scale folded in."""
    return scaled_conv(conv.weight, conv.bias, None, conv.logs, conv.logscale_factor)
