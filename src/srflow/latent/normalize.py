r"""Latent space normalization (SRFlow paper, Sec. 4.3, Eq. 6).

A latent tensor drawn at temperature :math:`\tau` is i.i.d. :math:`N(0, \tau^2)`. The
latents of a degraded or edited image are not: their statistics reveal the artifact. The
normalization replaces, in each group of :math:`n` latent values, the empirical mean
:math:`\hat\mu` and variance :math:`\hat\sigma^2` by new ones drawn from the distributions that
these statistics have under :math:`N(0, \tau^2)`:

.. math::
    \tilde z = \tilde\mu + \frac{\tilde\sigma}{\hat\sigma} (z - \hat\mu), \qquad
    \tilde\mu \sim N\!\left(0, \frac{\tau^2}{n}\right), \qquad
    \tilde\sigma^2 \sim \Gamma\!\left(k = \frac{n - 1}{2},\ \theta = \frac{2\tau^2}{n}\right)

with :math:`\hat\sigma^2 = \frac1n \sum (z - \hat\mu)^2` (so :math:`n \hat\sigma^2 / \tau^2`
is :math:`\chi^2_{n-1}`, a Gamma with shape :math:`(n-1)/2` and scale 2). Our reading of the
paper: it specifies a normal distribution for the new mean and a gamma distribution for the
new variance, both with temperature; we take exactly the sampling distributions of the
statistics being replaced, so that latents that already are :math:`N(0, \tau^2)` keep that
distribution after normalization.

Groups (each latent tensor is a "level"; each image of a batch separately):

* ``global``: all values of the tensor (channels and positions);
* ``local``: per position, across channels;
* ``spatial``: per channel, across positions.

With a mask only the masked positions form the groups and change; the rest is kept bit for
bit. Groups of fewer than two values are left unchanged (no variance to match). A constant
group becomes its new mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

MODES = ("global", "local", "spatial")
_REDUCE = {"global": (1, 2, 3), "local": (1,), "spatial": (2, 3)}


def draw_moments(
    n: Tensor, temperature: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Draw new means and variances (Eq. 6) for groups of ``n`` values at temperature ``tau``.

    Args:
        n: group sizes (any shape, float64, each at least 2 where the draw is used; smaller
            groups get a placeholder draw).
        temperature: :math:`\\tau`.
        generator: random source (CPU); the results are float64 on the CPU.

    Returns:
        ``(mean, variance)`` of ``n``'s shape: ``mean ~ N(0, tau^2 / n)`` and
        ``variance ~ Gamma(shape=(n - 1) / 2, scale=2 tau^2 / n)``.
    """
    n = n.double().cpu()
    mean = torch.randn(n.shape, generator=generator, dtype=torch.float64)
    mean = mean * temperature / n.sqrt()
    shape = ((n - 1) / 2).clamp(min=0.5)
    chi2 = 2.0 * torch._standard_gamma(shape, generator=generator)  # chi^2 with n - 1 dof
    return mean, chi2 * temperature**2 / n


def normalize_latent(
    z: Tensor,
    mode: str,
    temperature: float,
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Normalize one latent tensor ``(B, C, h, w)``; ``mask`` is ``(B or 1, 1, h, w)`` bool."""
    if mode not in MODES:
        raise ValueError(f"normalization mode must be one of {MODES}, got {mode!r}")
    dims = _REDUCE[mode]
    zd = z.double()
    keep = torch.ones_like(zd) if mask is None else mask.to(zd.device).expand_as(zd).double()
    n = keep.sum(dims, keepdim=True)
    safe_n = n.clamp(min=1)
    mean = (zd * keep).sum(dims, keepdim=True) / safe_n
    var = ((zd - mean) ** 2 * keep).sum(dims, keepdim=True) / safe_n
    new_mean, new_var = draw_moments(n, temperature, generator)
    new_mean, new_var = new_mean.to(zd.device), new_var.to(zd.device)
    ratio = torch.where(var > 0, (new_var / var.clamp(min=1e-300)).sqrt(), 0.0)
    out = new_mean + (zd - mean) * ratio
    change = (keep > 0) & (n >= 2)
    return torch.where(change, out.to(z.dtype), z)


def normalize_latents(
    latents: list[Tensor],
    mode: str,
    temperatures: Sequence[float],
    generator: torch.Generator | None = None,
    masks: list[Tensor] | None = None,
) -> list[Tensor]:
    """Normalize every latent tensor (see the module doc).

    Args:
        latents: latents in encode order.
        mode: ``"global"``, ``"local"`` or ``"spatial"``.
        temperatures: one temperature per latent tensor.
        generator: random source (CPU generator).
        masks: optional boolean masks ``(B or 1, 1, h_i, w_i)``, one per latent.
    """
    if len(temperatures) != len(latents):
        raise ValueError(f"need {len(latents)} temperatures, got {len(temperatures)}")
    return [
        normalize_latent(z, mode, t, generator, None if masks is None else masks[i])
        for i, (z, t) in enumerate(zip(latents, temperatures, strict=True))
    ]
