"""Temperatures, the one helper: one number, one per flow level or one per latent tensor.

Each latent tensor belongs to one flow level (SRFlow: the split-off tensors and the top
latent; HCFlow: one per level). A temperature is the standard deviation its latents are
drawn with. A list with one value per flow level gives each latent its level's value (a level
without a latent of its own leaves its value unused); a list with one value per latent tensor
is taken as it is. Every value must be finite, at least 0 and at most
:data:`~srflow.flows.distributions.MAX_TEMPERATURE`.
"""

from __future__ import annotations

from collections.abc import Sequence

from srflow.flows.distributions import check_temperature

Temperature = float | Sequence[float]


def latent_temperatures(levels: list[int], flow_levels: int, temperature: Temperature) -> list[
    float
]:  # fmt: skip
    """One temperature per latent tensor.

    Args:
        levels: the flow level (1-based) of each latent tensor, in encode order.
        flow_levels: the number of flow levels.
        temperature: one number, one per flow level or one per latent tensor.

    Raises:
        ValueError: a value out of range, or a list that is neither one per level nor one per
            latent tensor (one line saying which counts fit).

    Example:
        >>> latent_temperatures([1, 3], 3, 0.8)
        [0.8, 0.8]
        >>> latent_temperatures([1, 3], 3, [0.5, 0.6, 0.7])   # per level: levels 1 and 3
        [0.5, 0.7]
        >>> latent_temperatures([1, 3], 3, [0.5, 0.7])         # per latent tensor
        [0.5, 0.7]
    """
    if isinstance(temperature, int | float):
        return [check_temperature(temperature)] * len(levels)
    temps = [check_temperature(t) for t in temperature]
    if len(temps) == flow_levels:
        return [temps[level - 1] for level in levels]
    if len(temps) == len(levels):
        return temps
    raise ValueError(
        f"give one temperature, one per flow level ({flow_levels}) or one per latent tensor "
        f"({len(levels)}); got {len(temps)}"
    )
