"""PSNR and SSIM on HWC images (numpy only; SSIM equals scikit-image's defaults).

Both take two arrays of the same shape, ``(H, W, C)`` or ``(H, W)``, uint8 or float, with the
value range given by ``data_range`` (255 for uint8 images; pass 1.0 for float images in [0, 1]).

* ``crop_border`` removes that many pixels from every side before measuring.
* ``y_channel`` measures the luma of RGB images: ITU-R BT.601 as MATLAB's ``rgb2ycbcr``,
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1] (Y on the 0-255 scale,
  rescaled to ``data_range``). Y is kept in float64 (MATLAB rounds it to uint8 when the input is
  uint8; BasicSR does not round either), so numbers can differ from MATLAB's by ~0.01 dB.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["box_mean_valid", "psnr", "rgb_to_y", "ssim"]

_SSIM_WINDOW = 7
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def rgb_to_y(image: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """BT.601 luma (MATLAB ``rgb2ycbcr`` Y row) of an RGB HWC image, float64, shape (H, W, 1).

    Args:
        image: ``(H, W, 3)`` RGB array with values in ``[0, data_range]``.
        data_range: The full-scale value of ``image``; the result uses the same scale.

    Returns:
        The Y channel in ``[16/255, 235/255] * data_range``, unrounded.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rgb_to_y: expected an (H, W, 3) RGB image, got shape {image.shape}")
    rgb01 = image.astype(np.float64) / data_range
    y255 = 16.0 + rgb01 @ np.array([65.481, 128.553, 24.966])
    return (y255 * (data_range / 255.0))[:, :, None]


def _prepare(
    a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool, data_range: float
) -> tuple[np.ndarray, np.ndarray]:
    """Validate, crop, optionally convert to Y; returns float64 HWC arrays."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C) images, got shape {a.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.size == 0:
        raise ValueError(f"crop_border {crop_border} leaves an empty image")
    if y_channel:
        return rgb_to_y(a, data_range), rgb_to_y(b, data_range)
    return a.astype(np.float64), b.astype(np.float64)


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    data_range: float = 255.0,
) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range² / MSE)`` in dB.

    The MSE is the float64 mean over all pixels and channels (as
    ``skimage.metrics.peak_signal_noise_ratio``). Identical images give ``math.inf``.

    Args:
        a: First image, ``(H, W, C)`` or ``(H, W)``.
        b: Second image, same shape.
        crop_border: Pixels removed from each side first.
        y_channel: Compare the BT.601 luma of RGB images (see module docstring).
        data_range: Full-scale value (255 for uint8, 1.0 for float images in [0, 1]).

    Returns:
        The PSNR in dB.
    """
    x, y = _prepare(a, b, crop_border, y_channel, data_range)
    mse = float(np.mean((x - y) ** 2, dtype=np.float64))
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(data_range**2 / mse))


def box_mean_valid(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over every fully inside ``size``×``size`` window of the leading two axes.

    Args:
        x: ``(H, W, ...)`` float array.
        size: Window side.

    Returns:
        ``(H - size + 1, W - size + 1, ...)`` window means (shifted sums, float64 if ``x`` is).
    """
    height, width = x.shape[0] - size + 1, x.shape[1] - size + 1
    rows = sum(x[i : i + height] for i in range(size))
    boxes = sum(rows[:, j : j + width] for j in range(size))
    return boxes / float(size * size)


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
    data_range: float = 255.0,
) -> float:
    """Mean structural similarity, identical to ``skimage.metrics.structural_similarity``.

    Reproduces skimage's defaults (``channel_axis=2`` for colour): 7×7 uniform window,
    K1 = 0.01, K2 = 0.03, C1 = (K1·R)², C2 = (K2·R)², sample (co)variances scaled by
    49/48, SSIM map averaged over the pixels whose window lies fully inside the image (skimage
    crops ``(7 - 1) // 2 = 3`` pixels per side of its reflect-padded map), then averaged over
    channels.

    Args:
        a: First image, ``(H, W, C)`` or ``(H, W)``, at least 7×7 after cropping.
        b: Second image, same shape.
        crop_border: Pixels removed from each side first.
        y_channel: Compare the BT.601 luma of RGB images (see module docstring).
        data_range: Full-scale value R (255 for uint8, 1.0 for float images in [0, 1]).

    Returns:
        The mean SSIM (1.0 for identical images).
    """
    x, y = _prepare(a, b, crop_border, y_channel, data_range)
    if min(x.shape[:2]) < _SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least 7x7 pixels, got {x.shape[:2]}")
    count = _SSIM_WINDOW**2
    cov_norm = count / (count - 1.0)
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    mean_x, mean_y = box_mean_valid(x, _SSIM_WINDOW), box_mean_valid(y, _SSIM_WINDOW)
    var_x = cov_norm * (box_mean_valid(x * x, _SSIM_WINDOW) - mean_x * mean_x)
    var_y = cov_norm * (box_mean_valid(y * y, _SSIM_WINDOW) - mean_y * mean_y)
    cov_xy = cov_norm * (box_mean_valid(x * y, _SSIM_WINDOW) - mean_x * mean_y)
    numerator = (2.0 * mean_x * mean_y + c1) * (2.0 * cov_xy + c2)
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    ssim_map = numerator / denominator
    per_channel = ssim_map.mean(axis=(0, 1), dtype=np.float64)
    return float(per_channel.mean())
