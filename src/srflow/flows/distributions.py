"""Diagonal Gaussian densities and temperature sampling."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from srflow.flows.base import sum_except_batch

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: Tensor, mean: Tensor | None = None, logs: Tensor | None = None) -> Tensor:
    """Per-sample log-density of ``x`` under ``N(mean, exp(logs)^2)`` (standard normal when
    ``mean`` and ``logs`` are ``None``), summed over all but the batch dimension: ``(B,)``."""
    if mean is None or logs is None:
        return sum_except_batch(-0.5 * (x**2 + LOG_2PI))
    return sum_except_batch(
        -0.5 * (logs * 2.0 + (x - mean) ** 2 / torch.exp(logs * 2.0) + LOG_2PI)
    )


MAX_TEMPERATURE = 10.0  # far beyond any useful value (published: 0.8-1.0)


def check_temperature(temperature: float) -> float:
    """``temperature`` as a float if it is finite and in ``[0, MAX_TEMPERATURE]``.

    Raises:
        ValueError: one line saying what is wrong (and, for large values, what was probably
            meant).
    """
    value = float(temperature)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if value > MAX_TEMPERATURE:
        raise ValueError(
            f"temperature {temperature:g} is far outside the useful range (0 to 1; above it "
            f"outputs break into noise; at most {MAX_TEMPERATURE:g}); did you mean --tile?"
        )
    return value


#: Largest seed: the one range every command and the app accept (a signed 64-bit integer).
MAX_SEED = 2**63 - 1


def check_seed(seed: object) -> int:
    """``seed`` as an int if it is a whole number in ``[0, MAX_SEED]``.

    Raises:
        ValueError: one line saying what is wrong.
    """
    try:
        value = float(seed) if isinstance(seed, float) else int(str(seed).strip())
    except ValueError:
        raise ValueError(f"seed must be a whole number, got {seed!r}") from None
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"seed {seed} is outside 0 .. 2**63 - 1")
    return int(value)


def sample_normal(
    shape: tuple[int, ...],
    temperature: float,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Draw ``N(0, temperature^2)`` of the given shape (temperature is SRFlow's "heat").

    Draws on ``generator``'s device and moves the result, so a CPU generator gives the same
    numbers whatever the target device.

    Raises:
        ValueError: for a temperature that is negative, NaN or infinite (every sampler of
            every family draws through here, so this is the one check of the API).
    """
    check_temperature(temperature)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(shape, generator=generator, dtype=dtype, device=gen_device)
    return (z * temperature).to(device)
