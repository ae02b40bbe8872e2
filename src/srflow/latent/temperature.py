"""Per-level temperatures: which flow level each latent tensor belongs to.

SRFlow's latents are the split-off tensors (one per level that has a split) and the top
latent (the last level); HCFlow has one latent tensor per level, the finest first.
Temperatures may be given as one number, one per latent tensor, or one per flow level
``1..L`` (each latent takes its level's value; levels without a split have no latent of their
own, so their value is unused).
"""

from __future__ import annotations

from collections.abc import Sequence

from srflow.flows.split import SplitPrior
from srflow.models.hcflow import HCFlow
from srflow.models.protocol import FlowModel
from srflow.models.srflow import SRFlow


def flow_levels(model: FlowModel) -> int:
    """The number of flow levels ``L`` (HCFlow: one latent tensor per level)."""
    if isinstance(model, HCFlow):
        return model.config.levels
    assert isinstance(model, SRFlow)
    return model.config.flow.levels


def latent_levels(model: FlowModel) -> list[int]:
    """Flow level (1-based) of each latent tensor, in encode order (HCFlow: finest first)."""
    if isinstance(model, HCFlow):
        return list(range(1, model.config.levels + 1))
    assert isinstance(model, SRFlow)
    flow = model.flow
    levels = [
        level
        for layer, level in zip(flow.layers, flow.layer_levels, strict=True)
        if isinstance(layer, SplitPrior)
    ]
    return [*levels, model.config.flow.levels]


def per_latent_temperatures(model: FlowModel, temperature: float | Sequence[float]) -> list[float]:
    """One temperature per latent tensor from a number, per-latent or per-level values.

    Raises:
        ValueError: the number of values is neither the number of levels nor of latents.
    """
    levels = latent_levels(model)
    if isinstance(temperature, int | float):
        return [float(temperature)] * len(levels)
    temps = [float(t) for t in temperature]
    if any(t < 0 for t in temps):
        raise ValueError(f"temperatures must be >= 0, got {temps}")
    n_levels = flow_levels(model)
    if len(temps) == n_levels:
        return [temps[level - 1] for level in levels]
    if len(temps) == len(levels):
        return temps
    raise ValueError(
        f"give one temperature, one per flow level ({n_levels}) or one per latent tensor "
        f"({len(levels)}); got {len(temps)}"
    )
