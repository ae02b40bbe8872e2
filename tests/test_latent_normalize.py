"""Latent space normalization (Sec. 4.3): the new moments follow Eq. 6's distributions.

For groups of ``n`` values at temperature ``tau`` the new mean is ``N(0, tau^2 / n)`` and the
new (biased) variance ``Gamma(shape=(n - 1) / 2, scale=2 tau^2 / n)``. The checks draw many
groups with a fixed generator and compare the empirical distributions with these laws: the
moments within 5 standard errors and the whole CDF by a Kolmogorov-Smirnov distance below
the 0.1 % critical value ``1.95 / sqrt(N)``.
"""

from __future__ import annotations

import math

import pytest
import torch

from srflow.latent import draw_moments, normalize_latent, normalize_latents


def _ks_distance(samples: torch.Tensor, cdf: torch.Tensor) -> float:
    """sup |ECDF - CDF| given the sorted samples' theoretical CDF values."""
    n = samples.numel()
    upper = torch.arange(1, n + 1, dtype=torch.float64) / n
    return float(torch.maximum(upper - cdf, cdf - (upper - 1 / n)).abs().max())


def _check_eq6(means: torch.Tensor, variances: torch.Tensor, n: int, tau: float) -> None:
    count = means.numel()
    crit = 1.95 / math.sqrt(count)
    # mean ~ N(0, tau^2 / n)
    sd = tau / math.sqrt(n)
    assert abs(float(means.mean())) < 5 * sd / math.sqrt(count)
    assert abs(float(means.var()) / sd**2 - 1) < 5 * math.sqrt(2 / count)
    m = means.sort().values
    assert _ks_distance(m, torch.special.ndtr(m / sd)) < crit
    # variance ~ Gamma(k = (n - 1) / 2, theta = 2 tau^2 / n)
    k, theta = (n - 1) / 2, 2 * tau**2 / n
    assert abs(float(variances.mean()) / (k * theta) - 1) < 5 * math.sqrt(1 / (k * count))
    assert abs(float(variances.var()) / (k * theta**2) - 1) < 0.1
    v = variances.sort().values
    assert _ks_distance(v, torch.special.gammainc(torch.tensor(k), v / theta)) < crit


@pytest.mark.parametrize(("n", "tau"), [(2, 1.0), (12, 0.8), (400, 0.5)])
def test_drawn_moments_follow_eq6(n: int, tau: float) -> None:
    g = torch.Generator().manual_seed(n)
    means, variances = draw_moments(torch.full((20000,), float(n)), tau, g)
    _check_eq6(means, variances, n, tau)


def _group_moments(z: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    mean = z.mean(dims)
    return mean.flatten(), ((z - z.mean(dims, keepdim=True)) ** 2).mean(dims).flatten()


@pytest.mark.parametrize(
    ("mode", "shape", "dims", "n"),
    [
        ("local", (1, 12, 60, 60), (1,), 12),  # per position across channels: 3600 groups
        ("spatial", (2, 2000, 4, 4), (2, 3), 16),  # per channel across positions: 4000 groups
        ("global", (3000, 3, 2, 2), (1, 2, 3), 12),  # per image and tensor: 3000 groups
    ],
)
def test_normalized_groups_have_eq6_moments(mode: str, shape: tuple, dims: tuple, n: int) -> None:
    """Whatever the input statistics, each group ends with a freshly drawn mean/variance."""
    g = torch.Generator().manual_seed(3)
    z = 4.0 + 3.0 * torch.randn(shape, generator=g, dtype=torch.float64) ** 3  # skewed, offset
    out = normalize_latent(z, mode, 0.7, torch.Generator().manual_seed(4))
    _check_eq6(*_group_moments(out, dims), n, 0.7)
    again = normalize_latent(z, mode, 0.7, torch.Generator().manual_seed(4))
    assert torch.equal(out, again)  # same generator state, same result


def test_masked_normalization_uses_only_the_masked_positions() -> None:
    g = torch.Generator().manual_seed(5)
    z = 2.0 + torch.randn(1, 3000, 6, 6, generator=g, dtype=torch.float64)
    mask = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    mask[..., 1:4, 2:5] = True  # 9 positions
    out = normalize_latent(z, "spatial", 0.9, torch.Generator().manual_seed(6), mask)
    assert torch.equal(out[~mask.expand_as(z)], z[~mask.expand_as(z)])
    inside = out[:, :, 1:4, 2:5]
    _check_eq6(*_group_moments(inside, (2, 3)), 9, 0.9)


def test_gaussian_latents_stay_gaussian() -> None:
    """Latents already N(0, tau^2) keep that law: the replaced statistics are redrawn from
    their own sampling distributions (mean and variance of all values, and their kurtosis)."""
    tau = 0.6
    z = tau * torch.randn(4, 8, 64, 64, generator=torch.Generator().manual_seed(7))
    out = normalize_latents([z], "local", [tau], torch.Generator().manual_seed(8))[0].double()
    assert abs(float(out.mean())) < 5 * tau / math.sqrt(out.numel())
    assert abs(float(out.var()) / tau**2 - 1) < 5 * math.sqrt(2 / out.numel())
    kurtosis = float(((out - out.mean()) ** 4).mean() / out.var() ** 2)
    assert abs(kurtosis - 3) < 0.05


def test_bad_mode_and_tiny_groups() -> None:
    with pytest.raises(ValueError, match="normalization mode"):
        normalize_latent(torch.zeros(1, 2, 2, 2), "per-pixel", 1.0)
    z = torch.randn(1, 1, 3, 3, dtype=torch.float64)  # local groups of one channel: unchanged
    assert torch.equal(normalize_latent(z, "local", 1.0, torch.Generator()), z)
