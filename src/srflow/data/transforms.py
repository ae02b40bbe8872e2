"""Patch sampling and augmentation on uint8 ``(H, W, 3)`` numpy images.

Every random choice takes an explicit :class:`numpy.random.Generator`; nothing here touches a
global random state. LR patches are made from the uint8 HR patch with the MATLAB-compatible
bicubic (:func:`srflow.data.resize.imresize`), as the original's data preparation did.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.data.resize import imresize


def modcrop(image: np.ndarray, multiple: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``multiple``."""
    h, w = image.shape[0] - image.shape[0] % multiple, image.shape[1] - image.shape[1] % multiple
    return image[:h, :w]


def center_crop(image: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Centre crop of at most ``size`` x ``size`` (0: no crop), then :func:`modcrop`.

    The crop origin is a multiple of ``multiple`` so that a paired LR crop stays aligned.
    """
    h, w = image.shape[:2]
    if size:
        ch, cw = min(size, h), min(size, w)
        top = (h - ch) // 2 // multiple * multiple
        left = (w - cw) // 2 // multiple * multiple
        image = image[top : top + ch, left : left + cw]
    return modcrop(image, multiple)


def random_crop_origin(
    height: int, width: int, patch: int, align: int, rng: np.random.Generator
) -> tuple[int, int]:
    """Top-left corner of a random ``patch`` x ``patch`` crop, on a grid of step ``align``.

    Raises:
        ValueError: if the image is smaller than the patch.
    """
    if height < patch or width < patch:
        raise ValueError(f"image {height}x{width} is smaller than the {patch}x{patch} patch")
    top = int(rng.integers(0, (height - patch) // align + 1)) * align
    left = int(rng.integers(0, (width - patch) // align + 1)) * align
    return top, left


def dihedral(image: np.ndarray, rotations: int, flip: bool) -> np.ndarray:
    """Rotate by ``rotations`` x 90 degrees (counter-clockwise), then maybe flip left-right."""
    out = np.rot90(image, rotations, axes=(0, 1)) if rotations % 4 else image
    return out[:, ::-1] if flip else out


def random_dihedral(rng: np.random.Generator, flips: bool, rotations: bool) -> tuple[int, bool]:
    """Draw ``(rotations, flip)`` for :func:`dihedral` (always draws, so streams stay aligned)."""
    k, f = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    return (k if rotations else 0), (f if flips else False)


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """uint8 LR image ``imresize(hr, 1 / scale)`` (MATLAB bicubic, quantized per pass)."""
    lr = imresize(hr, 1.0 / scale)
    assert isinstance(lr, np.ndarray)
    return lr


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """uint8 MATLAB-bicubic upscale (for the 'LR' column of sample grids)."""
    up = imresize(lr, float(scale))
    assert isinstance(up, np.ndarray)
    return up


def to_chw_uint8(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 array -> contiguous ``(3, H, W)`` uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def to_hwc_uint8(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float tensor in [0, 1] -> ``(H, W, 3)`` uint8 (round half to even)."""
    values = torch.round(image.detach().float().clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return values.permute(1, 2, 0).cpu().numpy()


def quantize_8bit(x: Tensor) -> Tensor:
    """``round(clamp(x, 0, 1) * 255) / 255`` (the original's LR quantization), with a
    straight-through gradient (the identity), as the original trains through it."""
    quantized = torch.round(x.clamp(0, 1) * 255.0) / 255.0
    return x + (quantized - x).detach() if x.requires_grad else quantized


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``(B, C, H, W)`` at the bottom and right so that both sides are multiples of
    ``multiple``: the one padding rule of every model input (an LR before super-resolution or
    sampling, an HR before encoding or downscaling). Mirrored (``reflect``), as the original
    test scripts of SRFlow, SRFlow-DA and NCSR pad their LR inputs; a side no longer than its
    padding, which cannot be mirrored, repeats its edge pixels (``replicate``). Outputs are
    cropped back by the callers.

    Example:
        >>> pad_to_multiple(torch.tensor([[[[1.0, 2.0, 3.0]]]]), 2).tolist()  # 1 row: repeated
        [[[[1.0, 2.0, 3.0, 2.0], [1.0, 2.0, 3.0, 2.0]]]]
    """
    pad_h, pad_w = -x.shape[2] % multiple, -x.shape[3] % multiple
    if pad_w:
        x = F.pad(x, (0, pad_w, 0, 0), mode=_mode(pad_w, x.shape[3]))
    if pad_h:
        x = F.pad(x, (0, 0, 0, pad_h), mode=_mode(pad_h, x.shape[2]))
    return x


def _mode(pad: int, side: int) -> str:
    return "reflect" if pad < side else "replicate"
