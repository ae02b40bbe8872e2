"""Decoding many samples of one image without recomputing what does not depend on the sample.

In every conditional flow step most of the arithmetic touches only the conditioning tensor:

* the Affine Injector's shift and scale are a sub-network of the conditioning alone;
* the coupling sub-network's first convolution runs on ``concat(z_half, cond)``; a convolution
  is linear, so it splits into ``conv(z_half, W_z) + conv(cond, W_c)`` and the second term
  (``cond`` has hundreds of channels, ``z_half`` a few) is the same for every sample.

:func:`precompute` evaluates those parts once per image (batch 1) and
:func:`decode_with_cache` decodes a batch of latents with them (broadcast over the batch). The
result equals :meth:`SRFlow.decode` up to float rounding (the summation order differs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.flows.coupling import _shift_and_scale
from srflow.flows.split import SplitPrior
from srflow.flows.step import FlowStep
from srflow.models.srflow import SRFlow


@dataclass(frozen=True)
class StepCache:
    """Sample-independent tensors of one conditional flow step, batch 1.

    Attributes:
        injector_shift: ``(1, C, h, w)`` shift of the Affine Injector.
        injector_scale: ``(1, C, h, w)`` scale of the Affine Injector.
        coupling_cond_term: ``(1, hidden, h, w)`` first coupling convolution of the
            conditioning channels alone (before its ActNorm).
    """

    injector_shift: Tensor
    injector_scale: Tensor
    coupling_cond_term: Tensor


ConditionCache = list[StepCache | None]  # one entry per flow layer (None: nothing to cache)


def precompute(model: SRFlow, conds: list[Tensor]) -> ConditionCache:
    """The sample-independent parts of every conditional step for one image.

    Args:
        model: the SRFlow model.
        conds: per-level conditioning of one LR image (batch 1), from ``model.conditioning``.

    Returns:
        One entry per layer of ``model.flow.layers``.
    """
    if conds[0].shape[0] != 1:
        raise ValueError(f"precompute takes the conditioning of one image, got {conds[0].shape}")
    cache: ConditionCache = []
    for layer, level in zip(model.flow.layers, model.flow.layer_levels, strict=True):
        if not (isinstance(layer, FlowStep) and layer.injector and layer.coupling):
            cache.append(None)
            continue
        cond = conds[level - 1]
        shift, scale = _shift_and_scale(layer.injector.net(cond), layer.injector.eps)
        first = layer.coupling.net[0]
        passive = layer.coupling.passive
        term = F.conv2d(cond, first.weight[:, passive:], padding=first.padding)
        cache.append(StepCache(shift, scale, term))
    return cache


def _coupling_inverse(step: FlowStep, y: Tensor, cached: StepCache) -> Tensor:
    coupling = step.coupling
    assert coupling is not None
    net = coupling.net
    y1, y2 = y[:, : coupling.passive], y[:, coupling.passive :]
    first = net[0]
    h = F.conv2d(y1, first.weight[:, : coupling.passive], padding=first.padding)
    h = F.relu(first.actnorm.normalize(h + cached.coupling_cond_term))
    shift, scale = _shift_and_scale(net[4](net[3](net[2](h))), coupling.eps)
    return torch.cat([y1, y2 / scale - shift], dim=1)


def decode_with_cache(model: SRFlow, latents: list[Tensor], cache: ConditionCache) -> Tensor:
    """Decode latents (encode order, batch ``n``) of one image with its :func:`precompute`.

    Returns:
        ``(n, 3, H, W)`` HR images (no log-determinant is computed).
    """
    x = latents[-1]
    remaining = list(latents[:-1])
    for layer, cached in zip(reversed(model.flow.layers), reversed(cache), strict=True):
        if isinstance(layer, SplitPrior):
            x = layer.inverse(x, remaining.pop())[0]
        elif cached is not None:
            x = _coupling_inverse(layer, x, cached)
            x = x / cached.injector_scale - cached.injector_shift
            x = layer.invconv.inverse(x)[0]
            x = layer.actnorm.inverse(x)[0]
        else:
            x = layer.inverse(x, None)[0]
    return x
