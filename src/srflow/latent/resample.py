"""Stochastic SR with per-level temperatures, and resampling of a masked region only."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from srflow.flows.distributions import sample_normal
from srflow.latent.code import LatentCode, model_fingerprint, pad_lr
from srflow.latent.masks import latent_masks
from srflow.models.contract import FlowSR
from srflow.models.temperature import Temperature


def sample_code(
    model: FlowSR,
    lr: Tensor,
    temperature: Temperature = 0.8,
    generator: torch.Generator | None = None,
) -> LatentCode:
    """Draw latents ``N(0, T^2)`` for LR image(s) ``(3, h, w)`` or ``(B, 3, h, w)``, as
    sampling draws them (:meth:`~srflow.models.contract.FlowSR.sample_latents`).

    ``temperature`` is one value, one per flow level or one per latent tensor (see
    :mod:`srflow.models.temperature`). The LR is padded to the model's size multiple.
    """
    lr_padded = pad_lr(model, lr)
    shapes = model.latent_shapes(lr_padded)
    latents = model.sample_latents(
        shapes, temperature, generator, dtype=lr_padded.dtype, device=lr.device
    )
    s = model.config.scale
    size = (lr.shape[-2] * s, lr.shape[-1] * s)
    return LatentCode(latents, lr_padded, size, s, model_fingerprint(model))


def resample_latents(
    latents: list[Tensor],
    temperatures: Sequence[float],
    generator: torch.Generator | None = None,
    masks: list[Tensor] | None = None,
) -> list[Tensor]:
    """Redraw latents ``N(0, T_i^2)`` inside ``masks``; elsewhere they are kept bit for bit.

    Args:
        latents: latents in encode order, ``(B, C_i, h_i, w_i)``.
        temperatures: one temperature per latent tensor.
        generator: random source. Whole tensors are drawn (then masked), so a given generator
            state gives the same new values whatever the mask.
        masks: one boolean ``(B or 1, 1, h_i, w_i)`` mask per latent (see
            :func:`srflow.latent.masks.latent_masks`); ``None`` redraws everything.
    """
    if len(temperatures) != len(latents):
        raise ValueError(f"need {len(latents)} temperatures, got {len(temperatures)}")
    out = []
    for i, (z, t) in enumerate(zip(latents, temperatures, strict=True)):
        fresh = sample_normal(
            tuple(z.shape), t, generator=generator, dtype=z.dtype, device=z.device
        )
        out.append(fresh if masks is None else torch.where(masks[i].to(z.device), fresh, z))
    return out


def resample_code(
    model: FlowSR,
    code: LatentCode,
    temperature: Temperature = 0.8,
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
) -> LatentCode:
    """Redraw a code's latents inside an HR mask ``(H, W)`` (everywhere when ``None``).

    Latents outside the mask are kept bit for bit, so the decoded image changes only within
    :func:`srflow.latent.receptive.affected_region` of the mask's latent positions.
    """
    temps = model.latent_temperatures(temperature)
    masks = None
    if mask is not None:
        masks = latent_masks(mask, [tuple(z.shape) for z in code.latents], code.padded_size)
    return code.with_latents(resample_latents(code.latents, temps, generator, masks))
