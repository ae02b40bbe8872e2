"""The one metric registry: every metric's name, convention and display, and one loader of
the networks and model files they need, shared by ``srflow metrics`` and ``srflow eval``.

Names follow the conventions users know from pyiqa where they exist (``psnr``, ``ssim``,
``ms_ssim``, ``lpips``, ``niqe``, ``brisque``, ``piqe``); variants carry a suffix
(``psnr_y``, ``ssim_matlab``, ``lpips_spatial``). Per-image metrics are what ``srflow metrics``
computes (full-reference ones take the reference image; the others ignore it); the evaluation
also reports metrics of a set of samples (LR-PSNR against the LR, the diversity scores), which
need more than one image. Networks and model files load once, on first use
(:class:`MetricModels`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srflow.metrics.psnr_ssim import psnr, ssim
from srflow.metrics.ssim_matlab import ms_ssim_matlab, ssim_matlab

__all__ = [
    "METRICS",
    "METRIC_SPECS",
    "MetricModels",
    "MetricRunner",
    "MetricSpec",
    "format_value",
    "ordered_keys",
]


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Attributes:
        name: the key (``psnr``, ``lpips_spatial``, ``div_lpips``).
        label: column title in tables.
        digits: decimal places in tables.
        higher_is_better: direction (``None``: neither; diversity is a trade-off).
        full_reference: needs the ground truth.
        convention: what exactly is computed on one image (``srflow metrics --list``).
        per_image: computable on one image (``srflow metrics``); ``False``: a set-level
            evaluation column.
        summary: the legend of an evaluation report's column (its convention depends on the
            evaluation's settings, which the report lists); the convention when not given.
    """

    name: str
    label: str
    digits: int
    higher_is_better: bool | None
    full_reference: bool
    convention: str
    per_image: bool = True
    summary: str = ""

    @property
    def legend(self) -> str:
        """:attr:`summary`, or the convention."""
        return self.summary or self.convention


def _spec(name: str, label: str, digits: int, better: bool | None, reference: bool,
          convention: str, per_image: bool = True, summary: str = "") -> MetricSpec:  # fmt: skip
    return MetricSpec(name, label, digits, better, reference, convention, per_image, summary)


#: Every metric, in the order of report columns.
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in (
    _spec("psnr", "PSNR", 2, True, True, "dB on RGB uint8, peak 255, no crop (scikit-image)",
          summary="dB vs the ground truth, mean over samples"),
    _spec("psnr_y", "PSNR-Y", 2, True, True, "dB on BT.601 Y (MATLAB rgb2ycbcr, 16-235), no crop"),
    _spec("ssim", "SSIM", 4, True, True, "scikit-image SSIM on RGB (SRFlow's protocol)",
          summary="vs the ground truth, mean over samples"),
    _spec("ssim_matlab", "SSIM (MATLAB)", 4, True, True, "Wang's ssim_index.m on MATLAB rgb2gray"),
    _spec("ms_ssim", "MS-SSIM", 4, True, True,
          "Wang's msssim.m on MATLAB rgb2gray, 5 scales, weighted-sum pooling"),
    _spec("ms_ssim_box", "MS-SSIM (product)", 4, True, True,
          "Wang's msssim.m on MATLAB rgb2gray, product pooling (its default method)"),
    _spec("lr_psnr", "LR-PSNR", 2, True, True,
          "dB, bicubic(SR) vs bicubic(GT), uint8 (challenge), mean", per_image=False),
    _spec("lr_psnr_worst", "LR-PSNR min", 2, True, True, "dB, worst sample", per_image=False),
    _spec("lpips", "LPIPS", 4, False, True, "AlexNet v0.1, layer mean (lpips default), [-1, 1]",
          summary="AlexNet v0.1 (see settings), mean over samples"),
    _spec("lpips_spatial", "LPIPS (map)", 4, False, True,
          "AlexNet v0.1, mean of the spatial map (NTIRE)"),
    _spec("lpips_vgg", "LPIPS (VGG)", 4, False, True, "VGG16 v0.1, layer mean (lpips net='vgg')"),
    _spec("div_lpips", "Div. LPIPS %", 2, None, True,
          "challenge diversity score (G - Lc) / G on LPIPS maps", per_image=False),
    _spec("div_mse", "Div. MSE %", 2, None, True,
          "same score on 16x16 box-filtered squared-error maps (2022 kit)", per_image=False),
    _spec("pixel_std", "Pixel std", 3, None, False,
          "per-pixel std over samples, 0-255 (SRFlow)", per_image=False),
    _spec("niqe", "NIQE", 3, False, False, "authors' release (pristine model), MATLAB gray",
          summary="no-reference, lower is better, mean over samples"),
    _spec("brisque", "BRISQUE", 2, False, False, "authors' MATLAB release (allmodel), MATLAB gray",
          summary="no-reference, lower is better, mean"),
    _spec("brisque_package", "BRISQUE (package)", 2, False, False,
          "model + features of the brisque 0.2.0 package"),
    _spec("piqe", "PIQE", 2, False, False, "MATLAB piqe() (PIQUE)",
          summary="no-reference (PIQUE), lower is better, mean"),
)}  # fmt: skip
#: The metrics ``srflow metrics`` computes on one image.
METRIC_SPECS: dict[str, MetricSpec] = {k: s for k, s in METRICS.items() if s.per_image}


def ordered_keys(keys: set[str] | list[str]) -> list[str]:
    """The given metric keys in the canonical column order."""
    present = set(keys)
    return [key for key in METRICS if key in present]


def format_value(key: str, value: float | None) -> str:
    """Table text: fixed decimals, ``inf``, or ``-`` for a missing/NaN value."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{METRICS[key].digits}f}"


@dataclass
class MetricModels:
    """The networks and parameter files of the metrics, each loaded once on first use from
    the given paths (``None``: the default places, docs/metrics.md#parameter-files).

    Every loader raises :class:`~srflow.metrics.weights.MetricUnavailable` (naming the missing
    file and where to put it) when a file is missing.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    lpips_backbone: Path | None = None
    lpips_linear: Path | None = None
    niqe_params_file: Path | None = None
    brisque_model_file: Path | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def _once(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def lpips(self, spatial: bool = False, net: str = "alex") -> Any:
        """The LPIPS network (AlexNet, or VGG16 with ``net="vgg"``), on :attr:`device`."""
        from srflow.metrics.lpips import LPIPS

        files = (self.lpips_backbone, self.lpips_linear) if net == "alex" else (None, None)
        return self._once(f"lpips_{spatial}_{net}", lambda: LPIPS.from_files(
            *files, spatial=spatial, net=net).to(self.device))  # fmt: skip

    def niqe_params(self) -> Any:
        """NIQE's pristine model."""
        from srflow.metrics.niqe import load_niqe_params

        return self._once("niqe", lambda: load_niqe_params(self.niqe_params_file))

    def brisque_release(self) -> Any:
        """The BRISQUE release's SVM model and feature ranges."""
        from srflow.metrics.brisque_release import load_brisque_release

        return self._once("brisque", lambda: load_brisque_release(self.brisque_model_file))


@dataclass
class MetricRunner:
    """Computes per-image metrics by name on uint8 ``(H, W, 3)`` images."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    models: MetricModels = field(init=False)

    def __post_init__(self) -> None:
        self.models = MetricModels(self.device)

    def _lpips_value(
        self, image: np.ndarray, ref: np.ndarray, spatial: bool, net: str = "alex"
    ) -> float:
        a, b = (torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(self.device)
                for x in (image, ref))  # fmt: skip
        with torch.no_grad():
            return float(self.models.lpips(spatial, net).score(a, b)[0])

    def _functions(self) -> dict[str, Callable[[np.ndarray, np.ndarray | None], float]]:
        from srflow.metrics.brisque import brisque
        from srflow.metrics.brisque_release import brisque_release
        from srflow.metrics.niqe import niqe
        from srflow.metrics.pique import piqe

        return {
            "psnr": lambda a, r: psnr(a, r),
            "psnr_y": lambda a, r: psnr(a, r, y_channel=True),
            "ssim": lambda a, r: ssim(a, r),
            "ssim_matlab": lambda a, r: ssim_matlab(a, r),
            "ms_ssim": lambda a, r: ms_ssim_matlab(a, r),
            "ms_ssim_box": lambda a, r: ms_ssim_matlab(a, r, pooling="product"),
            "lpips": lambda a, r: self._lpips_value(a, r, spatial=False),  # type: ignore[arg-type]
            "lpips_spatial": lambda a, r: self._lpips_value(a, r, spatial=True),  # type: ignore[arg-type]
            "lpips_vgg": lambda a, r: self._lpips_value(a, r, False, "vgg"),  # type: ignore[arg-type]
            "niqe": lambda a, r: niqe(a, self.models.niqe_params()),
            "brisque": lambda a, r: brisque_release(a, self.models.brisque_release()),
            "brisque_package": lambda a, r: brisque(a),
            "piqe": lambda a, r: piqe(a),
        }

    def compute(self, name: str, image: np.ndarray, ref: np.ndarray | None) -> float:
        """One metric of ``image`` (against ``ref`` for full-reference metrics).

        Raises:
            ValueError: unknown metric, missing or mis-sized reference, image too small.
            MetricUnavailable: a parameter file is missing (the message says which).
        """
        spec = METRIC_SPECS.get(name)
        if spec is None:
            raise ValueError(f"unknown metric {name!r} (see srflow metrics --list)")
        if spec.full_reference:
            if ref is None:
                raise ValueError(f"{name} needs a reference image (--ref)")
            if ref.shape != image.shape:
                raise ValueError(f"{name}: the reference is {ref.shape[1]}x{ref.shape[0]}, "
                                 f"the image {image.shape[1]}x{image.shape[0]}")  # fmt: skip
        return float(self._functions()[name](image, ref))
