"""Per-sample convolutions of inference with their weights packed for oneDNN once per input shape.

On the CPU, ``F.conv2d`` converts its weight into oneDNN's blocked layout on every call. The
convolutions that run once per sample (a coupling's first convolution of the passing half,
its hidden and last convolutions, each flow step's folded inverse 1x1 convolution) keep the
converted weight instead, one per input shape (:func:`kept_conv`, through
:func:`~srflow.sampling.folding.folded`), and a hidden convolution's ReLU runs inside the
convolution (oneDNN's post-op): one pass over the activations fewer. The values are those of
``F.conv2d``'s oneDNN path bit for bit: a whole decode of SRFlow and of every SRFlow-DA
variant gives the same images (tests/test_packed.py). Measured on a 2-core AMD EPYC, in
isolation (4 samples of SRFlow DF2K 4x's finest level at 64x64): the hidden 1x1 convolution
with its ReLU 1.51 -> 1.23 ms, the last 3x3 one 2.62 -> 2.56 ms; in whole warmed decodes,
paired runs gave 1-5 % less time per sample, within this machine's run-to-run noise. Packing
for each input shape instead of one assumed shape took a decode of a 4x4 input from 27.8 to
11.4 ms (4 samples).

Elsewhere (another device, float64, bfloat16 autocast, an input not in the channels-last
layout, a build without oneDNN) the plain weight runs through ``F.conv2d`` and the ReLU
separately.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srflow.sampling.folding import folded

_MKLDNN = getattr(torch.ops, "mkldnn", None)
#: oneDNN's convolution with a fused activation, and its weight packing (``None`` where this
#: PyTorch build lacks them).
_POINTWISE = getattr(_MKLDNN, "_convolution_pointwise", None)
_REORDER = getattr(_MKLDNN, "_reorder_convolution_weight", None)


def _packing_available() -> bool:
    return _POINTWISE is not None and _REORDER is not None and torch.backends.mkldnn.is_available()


#: Input shapes a kept convolution keeps a packed weight for (the oldest is dropped first):
#: a decode runs each convolution at one or two batch sizes per image or tile size.
MAX_PACKED_SHAPES = 4
_PACKING = threading.Lock()


@dataclass(frozen=True)
class KeptConv:
    """A stride-1 'same' convolution's weight and bias, and the weight packed for oneDNN for
    each input shape it has run on (none when it cannot be: not a float32 CPU weight, or no
    oneDNN).

    oneDNN picks the weight's blocked format from the input's shape as well: a weight packed
    for a 64x64 input and run on a 2x2 one was reordered again on every call (1.1 ms instead
    of 28 us for a 64 -> 96 convolution), so each shape gets its own pack, made on its first
    call (a copy of the weight: 221 kB for that 64 -> 96 one).
    """

    weight: Tensor
    bias: Tensor | None
    padding: int
    packable: bool
    packs: dict[tuple[int, ...], Tensor] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, weight: Tensor, bias: Tensor | None) -> KeptConv:
        """Keep ``weight`` (``(out, in, k, k)``, odd ``k``); it is packed on first use."""
        packable = (
            weight.device.type == "cpu" and weight.dtype == torch.float32 and _packing_available()
        )
        return cls(weight, bias, weight.shape[-1] // 2, packable)

    def packed_for(self, shape: tuple[int, ...]) -> Tensor:
        """The weight packed for inputs of ``shape`` (kept; made on the first call)."""
        packed = self.packs.get(shape)
        if packed is None:
            assert self.packable and _REORDER is not None
            with _PACKING:  # the app may sample from several threads
                packed = self.packs.get(shape)  # another thread may have packed it meanwhile
                if packed is None:
                    while len(self.packs) >= MAX_PACKED_SHAPES:
                        del self.packs[next(iter(self.packs))]
                    pad = [self.padding, self.padding]
                    packed = _REORDER(self.weight, pad, [1, 1], [1, 1], 1, list(shape))
                    self.packs[shape] = packed
        return packed

    def __call__(self, x: Tensor, relu: bool = False) -> Tensor:
        """``conv(x)`` (``relu(conv(x))`` with ``relu``); a new tensor."""
        if self.packable and self._packed_runs(x):
            pad, one = [self.padding, self.padding], [1, 1]
            attr = "relu" if relu else "none"
            packed = self.packed_for(tuple(x.shape))
            return _POINTWISE(x, packed, self.bias, pad, one, one, 1, attr, [], "")
        y = F.conv2d(x, self.weight.to(x.dtype), _cast(self.bias, x), padding=self.padding)
        return y.relu_() if relu else y

    @staticmethod
    def _packed_runs(x: Tensor) -> bool:
        return (
            x.device.type == "cpu"
            and x.dtype == torch.float32
            and x.is_contiguous(memory_format=torch.channels_last)
            and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled("cpu")
        )


def _cast(bias: Tensor | None, x: Tensor) -> Tensor | None:
    return None if bias is None else bias.to(x.dtype)


def kept_conv(conv: nn.Conv2d) -> KeptConv:
    """``conv``'s weight and bias as a :class:`KeptConv`, kept on it until they change."""
    sources = tuple(t for t in (conv.weight, conv.bias) if t is not None)
    return folded(conv, "kept", sources, lambda: KeptConv.of(conv.weight, conv.bias))
