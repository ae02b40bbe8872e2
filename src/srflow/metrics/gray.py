"""MATLAB ``rgb2gray``: the gray image that every MATLAB-defined metric here starts from
(NIQE, BRISQUE, PIQE, SSIM and MS-SSIM)."""

from __future__ import annotations

import numpy as np

__all__ = ["RGB2GRAY_WEIGHTS", "to_gray_255"]

#: ``rgb2gray``'s weights (BT.601 luma, as MATLAB writes them).
RGB2GRAY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def to_gray_255(image: np.ndarray) -> np.ndarray:
    """Float64 gray image on the [0, 255] scale (MATLAB ``rgb2gray`` for RGB input).

    For uint8 RGB the weighted sum is rounded half up to uint8 values, as MATLAB does. No
    color's exact sum lies within 1e-9 of a half, so the rounding does not depend on the
    order in which the three products are added.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)``; uint8, or float in [0, 1].

    Returns:
        ``(H, W)`` float64.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    if image.dtype == np.uint8:
        values = image.astype(np.float64)
        if values.ndim == 3:
            values = np.floor(values @ RGB2GRAY_WEIGHTS + 0.5)
        return values
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected a uint8 or float image, got dtype {image.dtype}")
    values = image.astype(np.float64) * 255.0
    return values @ RGB2GRAY_WEIGHTS if values.ndim == 3 else values
