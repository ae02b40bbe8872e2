"""Masks: image files -> HR masks -> one boolean mask per latent tensor.

A mask file is an image whose white pixels (mean of R, G, B at least 0.5, and alpha at least
0.5 when it has one) select a region. It must have the HR image's size or an integer factor
of it (the same factor for both sides): a smaller mask is enlarged by pixel repetition, a
larger one reduced with the "any" rule (an HR pixel is selected if any mask pixel over it is).

Latent masks use the same "any" rule: a latent position is inside the mask if **any** HR
pixel of its footprint is. A latent of flow level ``l`` has one position per
``2**l x 2**l`` block of HR pixels (one squeeze per level), so its mask is a max-pooling of
the HR mask by that block size.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from srflow.data.image_io import ImageReadError, read_image


def fit_mask(mask: Tensor, hr_size: tuple[int, int], name: str = "mask") -> Tensor:
    """Bring a boolean mask ``(h, w)`` to the HR size ``(H, W)`` (see the module doc).

    Raises:
        ValueError: ``name``: the size is not the HR size nor an integer factor of it.
    """
    h, w = mask.shape
    big_h, big_w = hr_size
    if (h, w) == (big_h, big_w):
        return mask.bool()
    if big_h % h == 0 and big_w % w == 0 and big_h // h == big_w // w:
        k = big_h // h
        return mask.bool().repeat_interleave(k, 0).repeat_interleave(k, 1)
    if h % big_h == 0 and w % big_w == 0 and h // big_h == w // big_w:
        k = h // big_h
        return F.max_pool2d(mask.float()[None, None], k)[0, 0] > 0
    raise ValueError(
        f"{name}: the mask is {w}x{h}, which does not fit the {big_w}x{big_h} HR image "
        "(it needs the same size or an integer factor of it)"
    )


def read_mask(path: str | Path, hr_size: tuple[int, int]) -> Tensor:
    """Read a mask image file as a boolean ``(H, W)`` mask at the HR size.

    Raises:
        ImageReadError: the file cannot be read, does not fit, or selects nothing.
    """
    loaded = read_image(path)
    selected = loaded.rgb.mean(0) >= 0.5
    if loaded.alpha is not None:
        selected &= loaded.alpha[0] >= 0.5
    try:
        mask = fit_mask(selected, hr_size, str(path))
    except ValueError as exc:
        raise ImageReadError(str(exc)) from None
    if not mask.any():
        raise ImageReadError(f"{path}: the mask selects no pixel (white selects)")
    return mask


def latent_masks(mask: Tensor, shapes: list[tuple[int, ...]], hr_size: tuple[int, int]) -> list[
    Tensor
]:  # fmt: skip
    """One boolean mask ``(B, 1, h_i, w_i)`` per latent shape ``(B, C_i, h_i, w_i)``.

    Args:
        mask: boolean HR mask ``(H, W)`` (all images) or ``(B, H, W)``; when smaller than
            ``hr_size`` (an unpadded image) the padding is outside the mask.
        shapes: latent shapes in encode order.
        hr_size: ``(H, W)`` of the padded HR image the latents describe.
    """
    m = mask.bool()
    m = m[None] if m.dim() == 2 else m
    pad_h, pad_w = hr_size[0] - m.shape[1], hr_size[1] - m.shape[2]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"mask {tuple(m.shape[1:])} is larger than the HR size {hr_size}")
    m = F.pad(m.float(), (0, pad_w, 0, pad_h))[:, None]
    out = []
    for shape in shapes:
        k = hr_size[0] // shape[2]
        if (shape[2] * k, shape[3] * k) != tuple(hr_size):
            raise ValueError(f"latent shape {shape} is not a block grid of the HR size {hr_size}")
        pooled = F.max_pool2d(m, k) > 0
        out.append(pooled.expand(shape[0], 1, -1, -1))
    return out
