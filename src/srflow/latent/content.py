"""Image content transfer (SRFlow paper, Sec. 4.4).

Paste content into an HR image (for example an SR sample), encode the edited image, normalize
the latents only where the content was pasted (local normalization by default), decode. The
pasted region's latents, untypical for the conditioning LR, are brought back to the latent
distribution, which blends the new content into the image while the rest of the latents (and
the image outside the region's receptive field) stays as it was.

The LR used for encoding is the edited image's own downscale by default (our choice: the
paper's text available to us does not say), or a given LR (e.g. the LR an SR sample was made
from, to stay consistent with it). What each gives (measured, docs/latent-tools.md): with its
own LR the pasted content stays, but so does its seam (the LR carries it, and normalization
only redraws detail); with the original LR the output is consistent with that LR, which does
not hold the content: only its fine detail survives. ``feather`` (LR pixels) with a given LR
takes the middle way: the LR is the original outside the region and the edited image's own
inside, blended across its border by a Gaussian of that width, and the normalized region grows
by three widths: the content stays and its border is blended.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.latent.code import LatentCode, as_batch, downscale, encode_image
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
    feather: float = 0.0,
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
        feather: with ``lr``: blend it with the edited image's own LR across the region's
            border, a Gaussian of this many LR pixels (:func:`feathered_lr`); 0: as given.

    Returns:
        The normalized latent code; decode it with :func:`decode_code`.
    """
    hr, content = as_batch(hr), as_batch(content)
    if hr.shape != content.shape:
        raise ValueError(f"content {tuple(content.shape)} and image {tuple(hr.shape)} differ")
    edited = torch.where(mask.to(hr.device), content, hr)
    if feather > 0 and lr is not None:
        lr, mask = feathered_lr(model, edited, lr, mask, feather)
    code = encode_image(model, edited, lr)
    return normalize_code(model, code, mode, temperature, generator, mask)


def feathered_lr(
    model: FlowSR, edited: Tensor, lr: Tensor, mask: Tensor, feather: float
) -> tuple[Tensor, Tensor]:
    """``(LR, grown mask)`` for content transfer with a feathered border: ``lr`` outside the
    HR ``mask``, the edited image's own downscale inside, blended by the mask blurred with a
    Gaussian of ``feather`` LR pixels; the mask grown by ``3 * feather`` LR pixels (in HR
    pixels: times the scale), so that the blended band is normalized too."""
    s = model.config.scale
    edited, lr = as_batch(edited), as_batch(lr)
    own = downscale(edited, s)
    if own.shape != lr.shape:
        raise ValueError(f"the LR is {tuple(lr.shape[2:])}, the edited image downscales to "
                         f"{tuple(own.shape[2:])}")  # fmt: skip
    region = F.interpolate(mask.to(lr)[None, None], size=lr.shape[2:], mode="area")
    radius = max(1, round(3 * feather))
    taps = torch.arange(-radius, radius + 1, dtype=lr.dtype, device=lr.device)
    kernel = torch.exp(-(taps**2) / (2 * feather**2))
    kernel = kernel / kernel.sum()
    soft = F.conv2d(F.pad(region, (radius, radius, 0, 0), mode="replicate"),
                    kernel.view(1, 1, 1, -1))  # fmt: skip
    soft = F.conv2d(F.pad(soft, (0, 0, radius, radius), mode="replicate"),
                    kernel.view(1, 1, -1, 1))  # fmt: skip
    band = radius * s
    grown = F.max_pool2d(mask.float()[None, None], 2 * band + 1, 1, band)[0, 0] > 0
    return lr * (1 - soft) + own * soft, grown.to(mask.device)
