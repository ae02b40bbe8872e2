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
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(shape, generator=generator, dtype=dtype, device=gen_device)
    return (z * temperature).to(device)
