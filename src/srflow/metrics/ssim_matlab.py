"""SSIM and MS-SSIM as the authors' MATLAB scripts compute them (Wang et al. 2003, 2004).

What many papers quote: the image is converted with MATLAB's ``rgb2gray`` (BT.601 weights
``0.2989, 0.5870, 0.1140``, rounded to uint8), then

* SSIM (``ssim_index.m``): an 11x11 Gaussian window (sigma 1.5, normalised), ``K = (0.01,
  0.03)``, ``L = 255``, ``'valid'`` filtering (no padding), the mean of the SSIM map; without
  the automatic downsampling that later MATLAB ``ssim.m`` versions apply above 256 pixels;
* MS-SSIM (``msssim.m``, ``ssim_index_new.m``): five scales with weights ``(0.0448, 0.2856,
  0.3001, 0.2363, 0.1333)``, each scale's contrast-structure mean (SSIM mean at the last);
  between scales a 2x2 mean (``imfilter(x, ones(2)/4, 'symmetric', 'same')``) and every second
  pixel. The script pools the scales as a product of powers (``method = 'product'``, its
  default) or as a weighted sum (``'wtd_sum'``, weights normalised to sum 1). The reference
  values of ``../shared/reference/iqa_tid2013`` are the weighted sum's to all four printed
  decimals (0.6733 / 0.9996 / 0.9998); the product gives 0.6700 on the first pair. So
  ``ms_ssim_matlab`` pools with the weighted sum by default and with the product on request
  (``srflow metrics --metric ms_ssim_box``); docs/metrics.md, "MS-SSIM".

The default SSIM of ``srflow eval`` stays scikit-image's on RGB (SRFlow's protocol); this one
is ``srflow metrics --metric ssim_matlab`` and ``--ssim matlab`` in evaluation.
"""

from __future__ import annotations

import numpy as np

from srflow.data.resize import imresize
from srflow.metrics.gray import to_gray_255

__all__ = [
    "combine_scales",
    "ms_ssim_matlab",
    "ssim_matlab",
    "weighted_sum",
]

MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable ``filter2(w w^T, x, 'valid')``."""
    n = len(w)
    rows = sum(w[k] * x[k : x.shape[0] - n + 1 + k] for k in range(n))
    return sum(w[k] * rows[:, k : rows.shape[1] - n + 1 + k] for k in range(n))


def _ssim_and_cs(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    w = _gaussian()
    if min(a.shape) < len(w):
        raise ValueError(f"SSIM needs at least 11x11 pixels, got {a.shape[1]}x{a.shape[0]}")
    mu_a, mu_b = _valid(a, w), _valid(b, w)
    var_a = _valid(a * a, w) - mu_a**2
    var_b = _valid(b * b, w) - mu_b**2
    cov = _valid(a * b, w) - mu_a * mu_b
    cs = (2 * cov + _C2) / (var_a + var_b + _C2)
    ssim_map = (2 * mu_a * mu_b + _C1) / (mu_a**2 + mu_b**2 + _C1) * cs
    return float(ssim_map.mean()), float(cs.mean())


def _gray_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"images differ in shape: {np.shape(a)} vs {np.shape(b)}")
    return to_gray_255(a), to_gray_255(b)


def ssim_matlab(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 images as ``ssim_index.m`` on ``rgb2gray`` input (module doc)."""
    return _ssim_and_cs(*_gray_pair(a, b))[0]


def _halve_box(x: np.ndarray) -> np.ndarray:
    """``msssim.m``: the 2x2 mean (symmetric padding at the end), every second pixel."""
    padded = np.pad(x, ((0, 1), (0, 1)), mode="symmetric")
    mean = (padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]) / 4
    return mean[::2, ::2]


def _halve_imresize(x: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(x, 0.5)`` of a double image (bicubic, antialiased, unrounded)."""
    return np.asarray(imresize(x, 0.5), dtype=np.float64)


_HALVE = {"imresize": _halve_imresize, "box": _halve_box}


def ms_ssim_matlab(
    a: np.ndarray, b: np.ndarray, downsample: str = "box", pooling: str = "sum"
) -> float:
    """MS-SSIM of two uint8 images on ``rgb2gray`` input (module doc): scales halved with
    ``msssim.m``'s 2x2 mean (``box``; ``imresize``: MATLAB bicubic instead) and pooled as its
    weighted sum (``sum``, what reproduces the reference values) or product of powers
    (``product``, the script's default method).

    Raises:
        ValueError: if the coarsest scale is smaller than the 11x11 window (images under
            176 pixels a side), or for an unknown ``downsample`` or ``pooling``.
    """
    halve = _HALVE.get(downsample)
    if halve is None:
        raise ValueError(f"unknown downsample {downsample!r} (one of {', '.join(_HALVE)})")
    if pooling not in ("sum", "product"):
        raise ValueError(f"unknown pooling {pooling!r} (sum or product)")
    x, y = _gray_pair(a, b)
    cs_values, ssim_last = [], 0.0
    for scale in range(len(MS_WEIGHTS)):
        ssim_value, cs = _ssim_and_cs(x, y)
        cs_values.append(cs)
        ssim_last = ssim_value
        if scale < len(MS_WEIGHTS) - 1:
            x, y = halve(x), halve(y)
    if pooling == "sum":
        return weighted_sum(cs_values[:-1], ssim_last)
    return combine_scales(cs_values[:-1], ssim_last)


def weighted_sum(cs_values: list[float], ssim_last: float) -> float:
    """``sum(mcs(1:4) .* w(1:4)) + mssim(5) * w(5)`` with ``w`` normalised to sum 1
    (``msssim.m``'s ``'wtd_sum'``)."""
    weights = np.asarray(MS_WEIGHTS) / sum(MS_WEIGHTS)
    return float(np.dot(cs_values, weights[:-1]) + ssim_last * weights[-1])


def combine_scales(cs_values: list[float], ssim_last: float) -> float:
    """``prod(mcs(1:4).^w(1:4)) * mssim(5)^w(5)`` as MATLAB evaluates it.

    A negative mean (contrast-structure or SSIM; images anti-correlated at a coarse scale) to
    a fractional power is complex in MATLAB (the principal value ``|x|^w e^(i pi w)``), so the
    script's result is complex; MATLAB's numeric conversions (``fprintf``, ``sprintf``) print
    only its real part, which is what this returns. Tiny positive means are used as they are.
    """
    result = complex(ssim_last) ** MS_WEIGHTS[-1]
    for cs, weight in zip(cs_values, MS_WEIGHTS[:-1], strict=True):
        result *= complex(cs) ** weight
    return float(result.real)
