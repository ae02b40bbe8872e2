"""Diversity of a set of SR samples: the SRFlow paper's pixel std and the NTIRE score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["diversity_score", "pixel_std_diversity"]


def pixel_std_diversity(samples: np.ndarray) -> float:
    """Mean over pixels and channels of the per-pixel standard deviation across samples.

    This is the diversity measure of SRFlow's Table 1. The standard deviation is the
    **population** one (``ddof=0``, divide by N), computed in float64 on the [0, 255] scale.

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
    return float(values.std(axis=0, ddof=0).mean())


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
