"""The sampling twin's layers: each reference layer's inverse from folded and packed weights.

Each function computes what the reference layer of :mod:`srflow.flows` computes, without
gradients and without log-determinants, for many samples of one conditioning:

* a sub-network runs with every ActNorm and output scale folded into its convolution
  (:mod:`srflow.sampling.folding`), the per-sample convolutions from oneDNN-packed weights
  with the hidden ReLU fused (:mod:`srflow.sampling.packed`);
* an affine injector's shift and scale, and the conditioning part of a coupling's first
  convolution (linear in its input channels), are computed once per image and kept
  (:mod:`srflow.sampling.terms`);
* a flow step's inverse 1x1 convolution and inverse ActNorm are one kept convolution; a split's
  prior convolution gives its mean and log-std as two contiguous halves.

The outputs equal the reference within float rounding (tests/test_sampling_twin.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srflow.flows.coupling import AffineInjector, ConditionalAffineCoupling, broadcast_batch
from srflow.flows.coupling import shift_and_scale as split_shift_scale
from srflow.flows.nets import ActNormSubnet, ConvActNorm2d, DeepSubnet, Subnet, ZeroConv2d
from srflow.flows.split import SplitPrior
from srflow.flows.step import FlowStep
from srflow.sampling.folding import conv_actnorm_params, folded, halves_order, zero_conv_params
from srflow.sampling.packed import KeptConv, kept_conv
from srflow.sampling.terms import LevelTerms

#: ATen's fused ``relu(x + other)`` in place (one pass instead of two, the same values bit for
#: bit); ``None`` where this PyTorch build lacks it.
_ADD_RELU_ = getattr(torch.ops.aten, "_add_relu_", None)
#: The dtypes its kernel takes (bfloat16 and float16 are refused); it has a CPU kernel only.
_ADD_RELU_DTYPES = (torch.float32, torch.float64)


def add_relu_(x: Tensor, other: Tensor) -> Tensor:
    """``x = relu(x + other)`` in place (``other`` broadcasts), without gradients.

    Example:
        >>> x = torch.tensor([-2.0, 1.0])
        >>> add_relu_(x, torch.tensor(0.5))
        tensor([0.0000, 1.5000])
    """
    fused = x.device.type == "cpu" and x.dtype in _ADD_RELU_DTYPES and other.dtype == x.dtype
    if _ADD_RELU_ is not None and fused and not torch.jit.is_tracing():  # ONNX has no such op
        return _ADD_RELU_(x, other)
    return x.add_(other).relu_()


def _zero_conv(conv: ZeroConv2d, x: Tensor) -> Tensor:
    weight, bias = zero_conv_params(conv)
    return F.conv2d(x, weight, bias, padding=conv.padding)


def first_params(net: Subnet) -> tuple[Tensor, Tensor | None]:
    """Weight and bias of a sub-network's first linear map (SRFlow's ActNorm folded in)."""
    if isinstance(net, ActNormSubnet):
        return conv_actnorm_params(net.first)
    return net.first.weight, net.first.bias


def _kept_actnorm_conv(conv: ConvActNorm2d) -> KeptConv:
    sources = (conv.weight, conv.actnorm.bias, conv.actnorm.logs)
    return folded(conv, "params", sources, lambda: KeptConv.of(*conv_actnorm_params(conv)))


def _conv_relus(layers: nn.Sequential, a: Tensor) -> Tensor:
    for conv in list(layers)[::2]:
        assert isinstance(conv, nn.Conv2d)
        a = kept_conv(conv)(a, relu=True)
    return a


def hidden_layers(net: Subnet, a: Tensor) -> Tensor:
    """From the first activation (the ReLU of the first map's output) to the last
    convolution's input, each convolution from its kept weight with the ReLU fused."""
    if isinstance(net, ActNormSubnet):
        for conv in net.hidden_convs:
            a = _kept_actnorm_conv(conv)(a, relu=True)
        return a
    if net.kind == "residual":
        for block in net.hidden:
            a = a + _conv_relus(block, a)
        return a
    if net.kind == "long_skip":
        return _conv_relus(net.hidden, a) + a
    return _conv_relus(net.hidden, a)


def subnet_forward(net: Subnet, x: Tensor) -> Tensor:
    """The sub-network's output from folded weights (the injectors' once-per-image terms)."""
    if isinstance(net, ActNormSubnet):
        for conv in [net.first, *net.hidden_convs]:
            weight, bias = conv_actnorm_params(conv)
            x = F.relu(F.conv2d(x, weight, bias, padding=conv.padding), inplace=True)
        return _zero_conv(net.last, x)
    assert isinstance(net, DeepSubnet)
    a = F.relu(net.first(x), inplace=True)
    return _zero_conv(net.last, hidden_layers(net, a))


def injector_inverse(layer: AffineInjector, y: Tensor, terms: LevelTerms) -> Tensor:
    """``x = y / s(c) - t(c)`` as one fused ``(-t) + y * (1 / s)``, the terms kept per image."""

    def compute(c: Tensor) -> tuple[Tensor, Tensor]:
        shift, scale = split_shift_scale(subnet_forward(layer.net, c), layer.eps)
        return -shift, 1.0 / scale

    neg_shift, inv_scale = terms.term(layer, compute, "inverse")
    batch = y.shape[0]
    return torch.addcmul(broadcast_batch(neg_shift, batch), y, broadcast_batch(inv_scale, batch))


def _layout_of(weight: Tensor) -> torch.memory_format:
    """The memory format of a convolution weight (channels-last once the model is laid out
    for the CPU: :func:`~srflow.inference.pipeline.inference_layout`)."""
    if weight.is_contiguous() or not weight.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


def _coupling_convs(layer: ConditionalAffineCoupling) -> tuple[KeptConv, KeptConv]:
    """The per-sample convolutions of a coupling's folded sub-network, kept and packed: the
    first convolution's part for the passing half (a contiguous copy: oneDNN's fast path
    needs one) and the last convolution giving all of ``-shift``, then the sigmoid's input
    with the ``+ 2`` added (:func:`~srflow.sampling.folding.halves_order`)."""
    net = layer.net

    def compute() -> tuple[KeptConv, KeptConv]:
        weight = first_params(net)[0]
        layout = _layout_of(weight)
        last_weight, last_bias = halves_order(*zero_conv_params(net.last))
        half = last_weight.shape[0] // 2
        last_bias[half:] += 2.0
        last_weight[:half].neg_()
        last_bias[:half].neg_()
        x_weight = weight[:, : layer.passive].contiguous(memory_format=layout)
        return (
            KeptConv.of(x_weight, None),
            KeptConv.of(last_weight.contiguous(memory_format=layout), last_bias),
        )

    sources = (*net.first.parameters(), *net.last.parameters())
    return folded(layer, "sampling", sources, compute)


def coupling_inverse(layer: ConditionalAffineCoupling, y: Tensor, terms: LevelTerms) -> Tensor:
    """``x2 = y2 / s(y1, c) - t(y1, c)``: the conditioning's part of the first convolution
    kept per image, the rest per sample from packed weights, ``x2`` written in place."""
    p = layer.passive
    y1, y2 = y[:, :p], y[:, p:]

    def cond_part(c: Tensor) -> Tensor:
        weight, bias = first_params(layer.net)
        return F.conv2d(c, weight[:, p:], bias, padding=weight.shape[-1] // 2)

    part = broadcast_batch(terms.term(layer, cond_part), y.shape[0])
    x_conv, last_conv = _coupling_convs(layer)
    x1 = y1
    if not x1.is_contiguous(memory_format=torch.channels_last):
        # the passing half of a channels-last tensor is strided; the copy F.conv2d would
        # make lets the packed convolution run
        x1 = x1.contiguous(memory_format=_layout_of(x_conv.weight))
    a = add_relu_(x_conv(x1), part)
    h = last_conv(hidden_layers(layer.net, a))
    half = h.shape[1] // 2
    # the sigmoid of all channels: a contiguous tensor takes the vectorized kernel (a
    # strided half of a channels-last one ran 4x slower, for half the work)
    neg_shift, scale = h[:, :half], torch.sigmoid(h).add_(layer.eps)[:, half:]
    if torch.jit.is_tracing():  # ONNX export: no addcdiv, and a write into a view is lost
        return torch.cat([y1, neg_shift + y2 / scale], dim=1)
    x = torch.empty_like(y)  # both halves written in place: no concatenation copy
    x[:, :p] = y1
    torch.addcdiv(neg_shift, y2, scale, out=x[:, p:])
    return x


def _step_inverse_conv(step: FlowStep) -> KeptConv:
    """The inverse 1x1 convolution and inverse ActNorm as one 1x1 convolution with a bias
    (kept, packed): ``x = diag(exp(-logs)) W^-1 y - bias``."""
    norm, conv = step.actnorm, step.invconv

    def compute() -> KeptConv:
        c = conv.weight.shape[0]
        weight = conv.inverse_weight() * torch.exp(-norm.logs.reshape(c, 1))
        return KeptConv.of(weight.view(c, c, 1, 1), -norm.bias.reshape(c))

    return folded(step, "inverse", (conv.weight, norm.logs, norm.bias), compute)


def step_inverse(
    step: FlowStep, y: Tensor, terms: LevelTerms, noise_terms: LevelTerms | None = None
) -> Tensor:
    """A flow step's inverse: coupling, the noise-conditioned part (NCSR; its noise map's
    part kept per image, like the features'), injector, the overflow bound (in place), then
    the inverse 1x1 convolution and ActNorm as one convolution."""
    if step.injector is not None and step.coupling is not None:
        y = coupling_inverse(step.coupling, y, terms)
        noise_map = None if noise_terms is None else noise_terms.tensor
        if (noise := step.noise_layer(noise_map)) is not None:
            assert noise_terms is not None
            y = coupling_inverse(noise, y, noise_terms)
        y = injector_inverse(step.injector, y, terms)
        bound = torch.finfo(y.dtype).max ** 0.5  # as flows.step.bound_overflow, in place
        y = y.clamp_(-bound, bound)
    return _step_inverse_conv(step)(y)


def split_inverse(split: SplitPrior, kept: Tensor, eps: Tensor) -> Tensor:
    """``concat(kept, mean + exp(logs) * eps)``, the prior's mean and log-std from one folded
    convolution as two contiguous halves."""
    weight, bias = halves_order(*zero_conv_params(split.prior))
    h = F.conv2d(kept, weight, bias, padding=split.prior.padding)
    mean, logs = h[:, : split.factored], h[:, split.factored :]
    z2 = torch.addcmul(mean, torch.exp(logs), eps.to(mean.dtype))
    return torch.cat([kept, z2], dim=1)
