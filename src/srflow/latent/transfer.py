"""LR-consistent style transfer (SRFlow paper, Sec. 4.2).

The latents of a source HR image (encoded with its own LR) hold its high-frequency "style";
decoding them with *another* LR image gives a super-resolution of that LR with the source's
texture. Since the flow is conditioned on the target LR, the result stays consistent with it.
With a mask only the masked latent positions take the source's latents; the others keep base
latents (drawn at a temperature, or given).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from srflow.latent.code import LatentCode, as_batch, encode_image, pad_lr
from srflow.latent.masks import latent_masks
from srflow.latent.resample import sample_code
from srflow.models.contract import FlowSR


def style_transfer(
    model: FlowSR,
    source_hr: Tensor,
    target_lr: Tensor,
    *,
    mask: Tensor | None = None,
    base: LatentCode | None = None,
    temperature: float | Sequence[float] = 0.8,
    generator: torch.Generator | None = None,
) -> LatentCode:
    """Super-resolve ``target_lr`` with the latents of ``source_hr``.

    Args:
        model: the flow.
        source_hr: HR image ``(3, H, W)`` whose size is ``scale`` times the target LR's.
        target_lr: LR image ``(3, h, w)``.
        mask: optional boolean HR mask ``(H, W)``: only there the source's latents are used.
        base: latents used outside the mask (same target LR); default: drawn at
            ``temperature`` with ``generator``.
        temperature: temperature(s) of the default base latents.
        generator: random source of the default base latents.

    Returns:
        The latent code for ``target_lr``; decode it with :func:`decode_code`.

    Raises:
        ValueError: the source is not ``scale`` times the target LR's size.
    """
    s = model.config.scale
    target = as_batch(target_lr)
    source = as_batch(source_hr)
    want = (target.shape[2] * s, target.shape[3] * s)
    if tuple(source.shape[2:]) != want:
        raise ValueError(
            f"the source HR image is {source.shape[3]}x{source.shape[2]}; it must be "
            f"{want[1]}x{want[0]} ({s}x the target LR)"
        )
    style = encode_image(model, source)
    target_padded = pad_lr(model, target)
    if mask is None:
        latents = style.latents
    else:
        if base is None:
            base = sample_code(model, target, temperature, generator)
        hr_size = (target_padded.shape[2] * s, target_padded.shape[3] * s)
        masks = latent_masks(mask, [tuple(z.shape) for z in style.latents], hr_size)
        latents = [
            torch.where(m, zs, zb) for m, zs, zb in zip(masks, style.latents, base.latents,
                                                        strict=True)
        ]  # fmt: skip
    return LatentCode(latents, target_padded, want, s, style.model_hash, style.noise_level)
