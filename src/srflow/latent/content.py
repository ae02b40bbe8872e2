"""Image content transfer (SRFlow paper, Sec. 4.4).

Paste content into an HR image (for example an SR sample), encode the edited image, normalize
the latents only where the content was pasted (local normalization by default), decode. The
pasted region's latents, untypical for the conditioning LR, are brought back to the latent
distribution, which blends the new content into the image while the rest of the latents (and
the image outside the region's receptive field) stays as it was.

The LR used for encoding is the edited image's own downscale by default (our choice: the
paper's text available to us does not say), or a given LR (e.g. the LR an SR sample was made
from, to stay consistent with it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from srflow.latent.code import LatentCode, as_batch, encode_image
from srflow.latent.masks import latent_masks
from srflow.latent.normalize import normalize_latents
from srflow.models.contract import FlowSR


def normalize_code(
    model: FlowSR,
    code: LatentCode,
    mode: str,
    temperature: float | Sequence[float],
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
) -> LatentCode:
    """Normalize a code's latents (Sec. 4.3), optionally only inside an HR mask ``(H, W)``."""
    masks = None
    if mask is not None:
        masks = latent_masks(mask, [tuple(z.shape) for z in code.latents], code.padded_size)
    temps = model.latent_temperatures(temperature)
    return code.with_latents(normalize_latents(code.latents, mode, temps, generator, masks))


def content_transfer(
    model: FlowSR,
    hr: Tensor,
    content: Tensor,
    mask: Tensor,
    *,
    lr: Tensor | None = None,
    temperature: float | Sequence[float] = 0.8,
    mode: str = "local",
    generator: torch.Generator | None = None,
) -> LatentCode:
    """Paste ``content`` into ``hr`` where ``mask`` is set, encode, normalize there.

    Args:
        model: the flow.
        hr: HR image ``(3, H, W)`` in ``[0, 1]``.
        content: image of the same size holding the content to paste.
        mask: boolean ``(H, W)``: where to paste (and normalize).
        lr: LR to encode with (default: the edited image's own downscale).
        temperature: normalization temperature(s).
        mode: normalization mode (``"local"`` as in the paper, or ``"global"``/``"spatial"``).
        generator: random source.

    Returns:
        The normalized latent code; decode it with :func:`decode_code`.
    """
    hr, content = as_batch(hr), as_batch(content)
    if hr.shape != content.shape:
        raise ValueError(f"content {tuple(content.shape)} and image {tuple(hr.shape)} differ")
    edited = torch.where(mask.to(hr.device), content, hr)
    code = encode_image(model, edited, lr)
    return normalize_code(model, code, mode, temperature, generator, mask)
