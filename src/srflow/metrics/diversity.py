"""Diversity of a set of SR samples: the SRFlow paper's pixel std and the NTIRE scores.

* :func:`pixel_std_diversity`: SRFlow Table 1 (and HCFlow's "diversity").
* :func:`diversity_score` on spatial LPIPS maps: the NTIRE 2021/2022 ``measure.py`` score.
* :func:`diversity_score` on :func:`mse_local_map` maps: the MSE analogue of the 2022 kit's
  ``measure_full.py`` (needs no network weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from srflow.metrics.psnr_ssim import box_mean_valid

__all__ = ["MSE_BOX_SIZE", "diversity_score", "mse_local_map", "pixel_std_diversity",
           "pixel_std_map"]

MSE_BOX_SIZE = 16


def pixel_std_diversity(samples: np.ndarray, *, unbiased: bool = False) -> float:
    """Mean over pixels and channels of the per-pixel standard deviation across samples.

    This is the diversity measure of SRFlow's Table 1. The standard deviation is the
    **population** one (``ddof=0``, divide by N), computed in float64 on the [0, 255] scale;
    ``unbiased`` divides by N - 1 instead (HCFlow's test script; NaN for one sample, as there).

    Args:
        samples: ``(N, H, W, C)`` (or ``(N, H, W)``) array of N samples; uint8 values are used
            as they are, float values are taken to be in [0, 1] and multiplied by 255.

    Returns:
        The mean standard deviation (0 for identical samples or a single sample).

    Raises:
        ValueError: If there are no samples or the array has fewer than 3 dimensions.
    """
    samples = np.asarray(samples)
    if samples.ndim < 3 or samples.shape[0] == 0:
        raise ValueError(f"expected (N, H, W[, C]) samples with N >= 1, got {samples.shape}")
    values = samples.astype(np.float64)
    if samples.dtype != np.uint8:
        values = values * 255.0
    if unbiased and samples.shape[0] == 1:
        return math.nan
    return float(values.std(axis=0, ddof=1 if unbiased else 0).mean())


def pixel_std_map(samples: np.ndarray) -> np.ndarray:
    """Where samples differ: the per-pixel standard deviation across samples, averaged over
    the channels (float64, on the [0, 255] scale; population std as in
    :func:`pixel_std_diversity`, which is this map's mean).

    Args:
        samples: ``(N, H, W, C)`` or ``(N, H, W)``; uint8 as is, floats in [0, 1].

    Returns:
        The ``(H, W)`` map (zeros for a single sample).

    Raises:
        ValueError: If there are no samples or the array has fewer than 3 dimensions.
    """
    samples = np.asarray(samples)
    if samples.ndim < 3 or samples.shape[0] == 0:
        raise ValueError(f"expected (N, H, W[, C]) samples with N >= 1, got {samples.shape}")
    values = samples.astype(np.float64) * (1.0 if samples.dtype == np.uint8 else 255.0)
    std = values.std(axis=0)
    return std.mean(axis=2) if std.ndim == 3 else std


def diversity_score(global_scores: Sequence[float], local_maps: np.ndarray) -> float:
    """NTIRE "Learning the SR space" diversity score ``S = (G - Lc) / G * 100`` in percent.

    ``G`` is the best (minimum) global score of the samples, ``Lc`` the spatial mean of the
    per-pixel minimum over the samples' local score maps (e.g. spatial LPIPS maps whose means are
    the global scores). Identical samples give 0; ``G == 0`` gives 0.

    Args:
        global_scores: One global score per sample (lower is better).
        local_maps: ``(N, H, W)`` local score maps, one per sample (extra singleton axes are ok).

    Returns:
        The diversity score in percent.

    Raises:
        ValueError: If the number of maps and scores differ or there are none.
    """
    scores = np.asarray(global_scores, dtype=np.float64).ravel()
    maps = np.asarray(local_maps, dtype=np.float64)
    if scores.size == 0 or maps.ndim < 2 or maps.shape[0] != scores.size:
        raise ValueError(f"need N global scores and N maps, got {scores.size} and {maps.shape}")
    best_global = float(scores.min())
    if best_global == 0.0:
        return 0.0
    best_local = float(maps.min(axis=0).mean())
    return (best_global - best_local) / best_global * 100.0


def mse_local_map(sr_uint8_hwc: np.ndarray, gt_uint8_hwc: np.ndarray) -> np.ndarray:
    """Local squared-error map of the NTIRE 2022 kit's ``measure_full.py`` (MSE score).

    The per-pixel squared error on the [0, 255] scale, averaged over the RGB channels, is
    filtered with a 16×16 box of weights 1/256 in "full" mode (``scipy.signal.convolve2d``'s
    default: zero padding, output ``(H + 15, W + 15)``). The global MSE of a sample is the mean
    of this map; :func:`diversity_score` over N maps gives the kit's ``MSE_score``.

    Args:
        sr_uint8_hwc: Super-resolved image ``(H, W, 3)`` (uint8, or float on the 0-255 scale).
        gt_uint8_hwc: Ground truth of the same shape.

    Returns:
        The float64 map, shape ``(H + 15, W + 15)``.

    Raises:
        ValueError: If the shapes differ or the images are not ``(H, W, C)``.
    """
    sr, gt = np.asarray(sr_uint8_hwc), np.asarray(gt_uint8_hwc)
    if sr.shape != gt.shape or sr.ndim != 3:
        raise ValueError(f"expected two (H, W, C) images of one shape, got {sr.shape}, {gt.shape}")
    error = ((sr.astype(np.float64) - gt.astype(np.float64)) ** 2).mean(axis=2)
    pad = MSE_BOX_SIZE - 1
    return box_mean_valid(np.pad(error, pad), MSE_BOX_SIZE)
