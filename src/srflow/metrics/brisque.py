"""BRISQUE no-reference quality score (Mittal, Moorthy, Bovik 2012) with the ``brisque`` model.

Own implementation of the feature extraction and of the RBF epsilon-SVR evaluation; the
trained parameters are the ``brisque`` 0.2.0 wheel's ``models/svm.txt`` (libsvm text model)
and ``models/normalize.pickle`` (per-feature ``min_``/``max_`` lists, read with a restricted
unpickler; a ``normalize.npz`` with the same keys is accepted too). The features follow the
convention that model was trained with:

* gray = ``0.2125 R + 0.7154 G + 0.0721 B`` on [0, 1] (scikit-image ``rgb2gray``);
* MSCN ``(I - mu) / (sigma + 1/255)`` with a normalised 7x7 Gaussian (sigma 7/6), zero-padded
  ``'same'`` filtering, ``sigma = sqrt(|mu^2 - E[I^2]|)``;
* AGGD fits (shape by solving ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) = R_hat``): MSCN ->
  ``(alpha, (s_l^2 + s_r^2) / 2)``; horizontal, vertical, main- and anti-diagonal neighbour
  products (not wrapped) -> ``(alpha, mean, s_l^2, s_r^2)``; 18 features per scale;
* second scale: OpenCV-style bicubic half size (a = -0.75, replicated borders, no antialias);
* features scaled to [-1, 1] with ``min_``/``max_``; score = SVR output (lower = better).
"""

from __future__ import annotations

import io
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srflow.metrics.mscn import gaussian_window_7, mscn
from srflow.metrics.weights import MetricUnavailable, brisque_model_dir

__all__ = ["BRISQUEModel", "load_brisque_model", "brisque", "brisque_features"]

_SKIMAGE_GRAY = np.array([0.2125, 0.7154, 0.0721])
_ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


@dataclass(frozen=True)
class BRISQUEModel:
    """RBF epsilon-SVR (support vectors, coefficients, gamma, rho) and feature ranges."""

    support_vectors: np.ndarray  # (n_sv, 36)
    coefficients: np.ndarray  # (n_sv,)
    gamma: float
    rho: float
    feature_min: np.ndarray  # (36,)
    feature_max: np.ndarray  # (36,)

    def predict(self, features: np.ndarray) -> float:
        """SVR output for raw (unscaled) features."""
        span = self.feature_max - self.feature_min
        scaled = -1.0 + 2.0 * (features - self.feature_min) / span
        sq_dist = np.sum((self.support_vectors - scaled) ** 2, axis=1)
        return float(self.coefficients @ np.exp(-self.gamma * sq_dist) - self.rho)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy array reconstruction."""

    def find_class(self, module: str, name: str) -> type:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def read_libsvm_text(text: str, where: object) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Parse an epsilon-SVR/RBF libsvm text model: ``(svs, coefs, gamma, rho)``."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    start = None
    for index, line in enumerate(lines):
        if line.strip() == "SV":
            start = index + 1
            break
        key, _, value = line.partition(" ")
        header[key] = value.strip()
    if start is None or header.get("kernel_type") != "rbf" or "gamma" not in header:
        raise MetricUnavailable(f"BRISQUE model {where}: not an RBF libsvm model")
    coefficients, rows = [], []
    for line in lines[start:]:
        fields = line.split()
        if not fields:
            continue
        coefficients.append(float(fields[0]))
        rows.append({int(k): float(v) for k, v in (f.split(":") for f in fields[1:])})
    n_features = max((max(r) for r in rows if r), default=0)
    svs = np.zeros((len(rows), n_features))
    for i, row in enumerate(rows):
        for k, v in row.items():
            svs[i, k - 1] = v
    return svs, np.array(coefficients), float(header["gamma"]), float(header["rho"])


def _read_ranges(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(min_, max_)`` from ``normalize.npz`` or (restricted) ``normalize.pickle``."""
    if (directory / "normalize.npz").is_file():
        with np.load(directory / "normalize.npz", allow_pickle=False) as data:
            return np.asarray(data["min_"], float), np.asarray(data["max_"], float)
    raw = (directory / "normalize.pickle").read_bytes()
    ranges = _NumpyOnlyUnpickler(io.BytesIO(raw)).load()
    return np.asarray(ranges["min_"], float).ravel(), np.asarray(ranges["max_"], float).ravel()


def load_brisque_model(directory: str | os.PathLike[str] | None = None) -> BRISQUEModel:
    """Load ``svm.txt`` + ``normalize.pickle``/``.npz`` (search order in ``brisque_model_dir``).

    Raises:
        MetricUnavailable: When the files are missing or malformed.
    """
    folder = brisque_model_dir(directory)
    try:
        svs, coefficients, gamma, rho = read_libsvm_text(
            (folder / "svm.txt").read_text(), folder / "svm.txt"
        )
        low, high = _read_ranges(folder)
    except (OSError, ValueError, KeyError, pickle.UnpicklingError) as error:
        raise MetricUnavailable(f"BRISQUE model in {folder} is unreadable: {error}") from error
    if not (svs.shape[1] == low.size == high.size == 36):
        raise MetricUnavailable(f"BRISQUE model in {folder}: expected 36 features")
    return BRISQUEModel(svs, coefficients, gamma, rho, low, high)


def _gray01(image: np.ndarray) -> np.ndarray:
    """Gray float64 in [0, 1] from ``(H, W)``/``(H, W, 3)`` uint8 or float [0, 1] images."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"BRISQUE: expected an (H, W) or (H, W, 3) image, got {image.shape}")
    values = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f"BRISQUE: expected a uint8 or float image, got {image.dtype}")
    return values.astype(np.float64) @ _SKIMAGE_GRAY if values.ndim == 3 else values


def _shape_ratio(alpha: float) -> float:
    """``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))``, increasing from 0 to 3/4."""
    return math.exp(2 * math.lgamma(2 / alpha) - math.lgamma(1 / alpha) - math.lgamma(3 / alpha))


def _aggd(values: np.ndarray) -> tuple[float, float, float, float]:
    """AGGD fit ``(alpha, mean, sigma_l, sigma_r)`` (sigma_r over values >= 0)."""
    values = values.ravel()
    left, right = values[values < 0], values[values >= 0]
    sigma_l = math.sqrt(float(np.mean(left * left))) if left.size else 0.0
    sigma_r = math.sqrt(float(np.mean(right * right))) if right.size else 0.0
    mean_sq = float(np.mean(values * values))
    if sigma_l == 0.0 or sigma_r == 0.0 or mean_sq == 0.0:
        return math.nan, math.nan, sigma_l, sigma_r
    gamma_hat = sigma_l / sigma_r
    r_hat = float(np.mean(np.abs(values))) ** 2 / mean_sq
    target = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    lo, hi = math.log(0.05), math.log(50.0)  # bisection on log(alpha); ratio is monotone
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _shape_ratio(math.exp(mid)) < target else (lo, mid)
    alpha = math.exp(0.5 * (lo + hi))
    scale = math.exp(0.5 * (math.lgamma(1 / alpha) - math.lgamma(3 / alpha)))
    mean = (sigma_r - sigma_l) * scale * math.exp(math.lgamma(2 / alpha) - math.lgamma(1 / alpha))
    return alpha, mean, sigma_l, sigma_r


def _scale_features(gray: np.ndarray) -> list[float]:
    """The 18 features of one scale."""
    c, _ = mscn(gray, gaussian_window_7(), 1.0 / 255.0, "zero")  # the package's C = 1/255
    alpha, _, sigma_l, sigma_r = _aggd(c)
    features = [alpha, (sigma_l**2 + sigma_r**2) / 2]
    products = (
        c[:, :-1] * c[:, 1:],
        c[:-1, :] * c[1:, :],
        c[:-1, :-1] * c[1:, 1:],
        c[1:, :-1] * c[:-1, 1:],
    )
    for product in products:
        alpha, mean, sigma_l, sigma_r = _aggd(product)
        features += [alpha, mean, sigma_l**2, sigma_r**2]
    return features


def _bicubic_half_opencv(image: np.ndarray) -> np.ndarray:
    """Half-size bicubic as OpenCV ``INTER_CUBIC`` (a = -0.75, edge clamp, size rounded)."""
    weights = np.array([-0.09375, 0.59375, 0.59375, -0.09375])

    def along_rows(array: np.ndarray) -> np.ndarray:
        n = array.shape[0]
        out_n = int(np.rint(n * 0.5))
        taps = 2 * np.arange(out_n)[:, None] + np.arange(-1, 3)[None, :]
        return np.tensordot(weights, array[np.clip(taps, 0, n - 1).T], axes=1)

    return along_rows(along_rows(image).T).T


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features (18 at full size, 18 at half size) of an image."""
    gray = _gray01(image)
    if min(gray.shape) < 8:
        raise ValueError(f"BRISQUE: image too small ({gray.shape})")
    return np.array(_scale_features(gray) + _scale_features(_bicubic_half_opencv(gray)))


def brisque(
    image: np.ndarray,
    model: BRISQUEModel | None = None,
    model_dir: str | os.PathLike[str] | None = None,
) -> float:
    """BRISQUE score (lower = better; roughly 0-100 on natural images).

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` RGB, uint8 or float in [0, 1].
        model: Preloaded model (else loaded from ``model_dir``/the search order).
        model_dir: Folder with ``svm.txt`` and ``normalize.pickle``.

    Raises:
        MetricUnavailable: When the model files cannot be found.
        ValueError: On a bad image.
    """
    model = model if model is not None else load_brisque_model(model_dir)
    return model.predict(brisque_features(image))
