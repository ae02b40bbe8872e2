"""The MSCN (mean-subtracted contrast-normalised) coefficients that NIQE, BRISQUE and PIQE
start from: a local weighted mean and deviation over a 7x7 Gaussian window, with MATLAB's
border conventions, and the releases' rounding residue rule (docs/metrics.md, "The rounding
residue of flat neighbourhoods")."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

__all__ = [
    "RESIDUE",
    "ResidueSigns",
    "filter_window",
    "gaussian_window_7",
    "is_residue",
    "local_mean_and_deviation",
    "mscn",
    "release_mscn",
]


def filter_window(image: np.ndarray, window: np.ndarray, padding: str = "replicate") -> np.ndarray:
    """2-D correlation with a centred odd window, borders ``"replicate"``-d (``imfilter(...,
    'replicate')``, NIQE) or ``"zero"``-padded (``filter2(..., 'same')``, BRISQUE)."""
    kh, kw = window.shape
    mode = {"replicate": "edge", "zero": "constant"}[padding]
    padded = np.pad(image, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode=mode)
    out = np.zeros_like(image, dtype=np.float64)
    height, width = image.shape
    for i in range(kh):
        for j in range(kw):
            out += window[i, j] * padded[i : i + height, j : j + width]
    return out


def local_mean_and_deviation(
    image: np.ndarray, window: np.ndarray, padding: str = "replicate"
) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` and ``sigma = sqrt(|E[I^2] - mu^2|)`` over the window (:func:`filter_window`)."""
    mu = filter_window(image, window, padding)
    return mu, np.sqrt(np.abs(filter_window(image * image, window, padding) - mu * mu))


def mscn(
    image: np.ndarray, window: np.ndarray, c: float = 1.0, padding: str = "replicate"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients and the local deviation ``sigma``,
    the residue as computed (PIQE's convention; the ``brisque`` package's with zero padding
    and ``c = 1/255``)."""
    mu, sigma = local_mean_and_deviation(image, window, padding)
    return (image - mu) / (sigma + c), sigma


#: ``|I - mu|`` at or below this fraction of ``max(|I|, 1)`` is the rounding residue of the
#: 49-term weighted mean (a few units in the last place, about 1e-13 at 255), not a difference.
RESIDUE = 1e-12

#: Signs of MATLAB's rounding residue ``I - mu`` per gray level (-1, 0 or 1); see
#: :func:`release_mscn`.
ResidueSigns = Mapping[float, int]


def is_residue(image: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """Where ``I - mu`` is only the rounding residue (:data:`RESIDUE`)."""
    return np.abs(centred) <= RESIDUE * np.maximum(np.abs(image), 1.0)


def release_mscn(
    image: np.ndarray,
    window: np.ndarray,
    padding: str = "replicate",
    residue_signs: ResidueSigns | None = None,
) -> np.ndarray:
    """The MSCN of the NIQE and BRISQUE releases, ``(I - mu) / (sigma + 1)``, with their
    rounding residue settled.

    Where ``I - mu`` is 0 in exact arithmetic (a flat 7x7 neighbourhood, or one whose weighted
    differences cancel), floating point leaves a residue of a few units in the last place. Its
    sign decides which side of the asymmetric fits the pixel and its neighbour products fall
    on, and it depends on how the filter sums: MATLAB's pattern is not ours and cannot be
    derived (docs/metrics.md, "the rounding residue"). It is taken as 0 here, or, where
    ``residue_signs`` gives a sign for the pixel's gray level, as one unit in the last place of
    that sign (to replay a MATLAB run whose signs are known).
    """
    mu, sigma = local_mean_and_deviation(image, window, padding)
    centred = image - mu
    residue = is_residue(image, centred)
    centred[residue] = 0.0
    for level, sign in (residue_signs or {}).items():
        at_level = residue & (image == level)
        centred[at_level] = sign * np.spacing(max(abs(level), 1.0))
    return centred / (sigma + 1)


@functools.lru_cache(maxsize=1)
def gaussian_window_7() -> np.ndarray:
    """``fspecial('gaussian', 7, 7/6)`` normalised: the window of the BRISQUE release, PIQE
    and the ``brisque`` package (NIQE's parameter file stores it to 1e-16)."""
    x = np.arange(-3, 4)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    return g / g.sum()
