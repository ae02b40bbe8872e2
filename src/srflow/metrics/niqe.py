"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan, Bovik 2013), as the
authors' MATLAB release computes it (``computequality.m``, ``computefeature.m``,
``estimateaggdparam.m``). Own implementation; each step and its test: docs/metrics.md#niqe.

* RGB -> gray with MATLAB ``rgb2gray`` (uint8 result, rounded); float input in [0, 1] is
  scaled to [0, 255]. The image is cropped to whole 96x96 blocks (``blkproc``, no overlap):
  the partial blocks at the bottom and right are dropped.
* Two scales; the second is MATLAB bicubic ``imresize(im, 0.5)`` (antialiased, unrounded)
  of the cropped image, cut in 48x48 blocks.
* MSCN: ``(I - mu) / (sigma + 1)``, mu/sigma from the 7x7 Gaussian window (sigma 7/6, stored
  in the parameter file) with replicate borders (``imfilter(..., 'replicate')``); where
  ``I - mu`` is 0 in exact arithmetic its rounding residue is 0
  (:func:`~srflow.metrics.mscn.release_mscn`).
* Per block and scale, 18 features: AGGD fit of the MSCN block ``(alpha, (beta_l+beta_r)/2)``
  and, for the 4 products with the block ``circshift``-ed by ``[0 1]``, ``[1 0]``, ``[1 1]``,
  ``[1 -1]`` (wrapped inside the block), ``(alpha, mean, beta_l, beta_r)``; alpha by grid
  search over 0.2:0.001:10, 0.2 where a side is empty (:func:`aggd_fit`).
* Every block counts at test time: the release computes a sharpness per block but uses it
  only when fitting the pristine model. Score: ``sqrt((mu_p - mu_d)^T pinv((C_p + C_d) / 2)
  (mu_p - mu_d))`` with ``nanmean`` and ``nancov`` (:func:`mvg_distance`).

Parameters: ``niqe_pris_params.npz`` (keys ``mu_pris_param``, ``cov_pris_param``,
``gaussian_window``; the release's ``modelparameters.mat`` as BasicSR 1.4.2 stores it,
Apache-2.0, see ``data/NOTICE``).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from srflow.metrics.gray import to_gray_255
from srflow.metrics.mscn import (
    ResidueSigns,
    filter_window,
    gaussian_window_7,
    is_residue,
    release_mscn,
)
from srflow.metrics.weights import MetricUnavailable, niqe_params_path

__all__ = [
    "NIQEParams",
    "load_niqe_params",
    "niqe",
    "niqe_features",
    "residue_share",
    "aggd_fit",
    "aggd_shape",
    "alpha_grid",
    "mvg_distance",
]

_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class NIQEParams:
    """The pristine multivariate Gaussian model and the MSCN window."""

    mu: np.ndarray  # (36,)
    cov: np.ndarray  # (36, 36)
    window: np.ndarray  # (7, 7), sums to 1


def load_niqe_params(path: str | os.PathLike[str] | None = None) -> NIQEParams:
    """Load the pristine NIQE model (search order in :func:`niqe_params_path`).

    Raises:
        MetricUnavailable: When the file is missing or lacks the expected arrays.
    """
    file = niqe_params_path(path)
    try:
        with np.load(file, allow_pickle=False) as data:
            params = NIQEParams(
                mu=np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(-1),
                cov=np.asarray(data["cov_pris_param"], dtype=np.float64),
                window=np.asarray(data["gaussian_window"], dtype=np.float64),
            )
    except (KeyError, ValueError, OSError) as error:
        raise MetricUnavailable(f"NIQE parameter file {file} is unreadable: {error}") from error
    if params.mu.shape != (36,) or params.cov.shape != (36, 36):
        raise MetricUnavailable(f"NIQE parameter file {file}: unexpected array shapes")
    return params


def residue_share(image: np.ndarray) -> float:
    """Share of the pixels whose ``I - mu`` is 0 in exact arithmetic at a gray level other
    than 0 (level 0 is exact in any arithmetic): where NIQE and BRISQUE may differ from the
    MATLAB releases by the rounding residue's unknown sign
    (:func:`~srflow.metrics.mscn.release_mscn`)."""
    gray = to_gray_255(image)
    centred = gray - filter_window(gray, gaussian_window_7(), "replicate")
    return float(np.mean(is_residue(gray, centred) & (gray != 0)))


@functools.lru_cache(maxsize=1)
def alpha_grid() -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's grid ``0.2:0.001:10`` and ``gamma(2./a).^2 ./ (gamma(1./a).*gamma(3./a))`` on it,
    evaluated as the releases write it (no overflow on this grid)."""
    alphas = 0.2 + 0.001 * np.arange(9801)
    gamma = np.vectorize(math.gamma)
    return alphas, gamma(2 / alphas) ** 2 / (gamma(1 / alphas) * gamma(3 / alphas))


def aggd_shape(values: np.ndarray) -> tuple[float, float, float]:
    """``estimateaggdparam`` of the NIQE and BRISQUE releases: ``(alpha, left_std,
    right_std)``, the deviations over the negative and the positive values (zeros belong to
    neither side) and the grid shape nearest their moment ratio.

    A side with no values has a NaN deviation (MATLAB's mean of nothing); the shape is then
    NaN in every grid entry and MATLAB's ``min`` returns the first one, ``alpha = 0.2``, while
    the other side's deviation stays finite.
    """
    values = values.reshape(-1)
    left, right = values[values < 0], values[values > 0]
    left_std = math.sqrt(np.mean(left * left)) if left.size else math.nan
    right_std = math.sqrt(np.mean(right * right)) if right.size else math.nan
    alphas, ratio = alpha_grid()
    if not (left.size and right.size):  # some term is NaN, so r_norm is NaN (as 0/0 is)
        return float(alphas[0]), left_std, right_std
    gamma_hat = left_std / right_std
    r_hat = float(np.mean(np.abs(values))) ** 2 / float(np.mean(values * values))
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    return float(alphas[np.argmin((ratio - r_norm) ** 2)]), left_std, right_std


def aggd_fit(values: np.ndarray) -> tuple[float, float, float]:
    """NIQE's asymmetric generalised Gaussian fit ``(alpha, beta_l, beta_r)``: the
    deviations of :func:`aggd_shape` scaled by ``sqrt(gamma(1/a) / gamma(3/a))``. A block of
    zeros gives ``(0.2, NaN, NaN)``."""
    alpha, left_std, right_std = aggd_shape(values)
    factor = math.exp(0.5 * (math.lgamma(1 / alpha) - math.lgamma(3 / alpha)))
    return alpha, left_std * factor, right_std * factor


def _block_features(block: np.ndarray) -> list[float]:
    """The 18 NIQE features of one MSCN block."""
    alpha, beta_l, beta_r = aggd_fit(block)
    features = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        product = block * np.roll(block, shift, axis=(0, 1))
        alpha, beta_l, beta_r = aggd_fit(product)
        ratio = math.exp(math.lgamma(2 / alpha) - math.lgamma(1 / alpha))
        features += [alpha, (beta_r - beta_l) * ratio, beta_l, beta_r]
    return features


def niqe_features(
    gray: np.ndarray,
    window: np.ndarray,
    block_size: int = 96,
    residue_signs: ResidueSigns | None = None,
) -> np.ndarray:
    """Per-block NIQE features ``(n_blocks, 36)`` of a gray [0, 255] float image
    (``residue_signs``: :func:`~srflow.metrics.mscn.release_mscn`)."""
    from srflow.data.resize import imresize

    rows, cols = gray.shape[0] // block_size, gray.shape[1] // block_size
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs an image of at least {block_size}x{block_size} pixels")
    image = gray[: rows * block_size, : cols * block_size].astype(np.float64)
    per_scale = []
    for scale in (1, 2):
        coefficients = release_mscn(image, window, "replicate", residue_signs)
        size = block_size // scale
        per_scale.append(
            np.array(
                [
                    _block_features(
                        coefficients[r * size : (r + 1) * size, c * size : (c + 1) * size]
                    )
                    for r in range(rows)
                    for c in range(cols)
                ]
            )
        )
        if scale == 1:
            image = np.asarray(imresize(image, 0.5), dtype=np.float64)
    return np.concatenate(per_scale, axis=1)


def niqe(
    image: np.ndarray,
    params: NIQEParams | None = None,
    params_path: str | os.PathLike[str] | None = None,
    residue_signs: ResidueSigns | None = None,
) -> float:
    """NIQE score (lower = more natural).

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` RGB, uint8 or float in [0, 1]; at least 96x96.
        params: Preloaded parameters (else loaded via ``params_path``/the search order).
        params_path: Explicit path of ``niqe_pris_params.npz``.
        residue_signs: MATLAB's rounding residue signs per gray level
            (:func:`~srflow.metrics.mscn.release_mscn`; by default the residue is 0).

    Returns:
        The score; NaN when a feature is undefined in every block (e.g. a constant image).

    Raises:
        MetricUnavailable: When the parameter file cannot be found.
        ValueError: On a bad image shape/dtype.
    """
    params = params if params is not None else load_niqe_params(params_path)
    features = niqe_features(to_gray_255(image), params.window, residue_signs=residue_signs)
    return mvg_distance(params, features)


def mvg_distance(params: NIQEParams, features: np.ndarray) -> float:
    """``computequality``'s last step: the distance of the blocks' Gaussian to the pristine one.

    ``nanmean`` per feature; ``nancov`` over the blocks without a NaN (normalised by
    ``n - 1``, by ``n`` for one block); MATLAB ``pinv`` (singular values above
    ``max(size) * eps(largest)`` kept). NaN when a feature is NaN in every block.
    """
    if np.isnan(features).all(axis=0).any():
        return math.nan
    mu_dist = np.nanmean(features, axis=0)
    valid = features[~np.isnan(features).any(axis=1)]
    cov_dist = np.cov(valid, rowvar=False) if len(valid) > 1 else np.zeros((36, 36))
    diff = params.mu - mu_dist
    inv = _pinv_matlab((params.cov + cov_dist) / 2)
    return float(np.sqrt(diff @ inv @ diff))


def _pinv_matlab(matrix: np.ndarray) -> np.ndarray:
    """MATLAB ``pinv``: drop singular values at or below ``max(size) * eps(s_max)``."""
    u, s, vt = np.linalg.svd(matrix)
    keep = s > max(matrix.shape) * np.spacing(s[0])
    return (vt[keep].T / s[keep]) @ u[:, keep].T
