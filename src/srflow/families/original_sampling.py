"""Reproduce the original SRFlow-layout implementations' seeded sampling draw for draw (SRFlow,
SRFlow-DA and NCSR draw alike)."""

from __future__ import annotations

import torch
from torch import Tensor

from srflow.models.contract import FlowSR


def original_seeded_latents(
    model: FlowSR, lr: Tensor, temperature: float, seed: int
) -> list[Tensor]:
    """Latents (encode order) exactly as the original ``get_sr_with_z(lq, heat, seed)`` draws
    them on the CPU: ``torch.manual_seed(seed)``, the top latent ``normal(0, heat)`` (zeros at
    heat 0), then one ``normal(zeros, ones * heat)`` per split, deepest level first.

    Uses a private ``torch.Generator`` seeded with ``seed`` instead of the global RNG, which
    yields the same numbers without touching global state.
    """
    return original_latents(model, lr, temperature, torch.Generator().manual_seed(seed))


def original_latents(
    model: FlowSR, lr: Tensor, temperature: float, generator: torch.Generator
) -> list[Tensor]:
    """The original's draws of one ``get_sr`` call from ``generator``'s current state (its
    test scripts seed once and then call ``get_sr`` sample after sample, image after image)."""
    shapes = model.latent_shapes(lr)
    top_shape, split_shapes = shapes[-1], shapes[:-1]
    if temperature > 0:
        top = torch.normal(0.0, temperature, size=top_shape, generator=generator)
    else:
        top = torch.zeros(top_shape)
    splits = [
        torch.normal(torch.zeros(s), torch.ones(s) * temperature, generator=generator)
        for s in reversed(split_shapes)
    ]
    return [t.to(lr.device, lr.dtype) for t in [*reversed(splits), top]]
