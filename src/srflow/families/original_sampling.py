"""Reproduce the original implementation's seeded sampling draw for draw."""

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
    generator = torch.Generator().manual_seed(seed)
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
