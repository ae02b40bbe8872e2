"""Every image metric by name, with its convention: what ``srflow metrics`` computes.

Names follow the conventions users know from pyiqa where they exist (``psnr``, ``ssim``,
``ms_ssim``, ``lpips``, ``niqe``, ``brisque``, ``piqe``); variants carry a suffix
(``psnr_y``, ``ssim_matlab``, ``lpips_spatial``). Full-reference metrics take the reference
image; the others ignore it. Networks and model files are loaded once, on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from srflow.metrics.psnr_ssim import psnr, ssim
from srflow.metrics.ssim_matlab import ms_ssim_matlab, ssim_matlab

__all__ = ["METRIC_SPECS", "MetricSpec", "MetricRunner"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: whether it needs a reference, its direction and its convention."""

    name: str
    full_reference: bool
    higher_is_better: bool
    convention: str


METRIC_SPECS: dict[str, MetricSpec] = {spec.name: spec for spec in (
    MetricSpec("psnr", True, True, "dB on RGB uint8, peak 255, no crop (scikit-image)"),
    MetricSpec("psnr_y", True, True, "dB on BT.601 Y (MATLAB rgb2ycbcr, 16-235), no crop"),
    MetricSpec("ssim", True, True, "scikit-image SSIM on RGB (SRFlow's protocol)"),
    MetricSpec("ssim_matlab", True, True, "Wang's ssim_index.m on MATLAB rgb2gray"),
    MetricSpec("ms_ssim", True, True, "MATLAB MS-SSIM on rgb2gray, 5 scales, imresize halving"),
    MetricSpec("ms_ssim_box", True, True, "Wang's msssim.m on MATLAB rgb2gray (2x2-mean halving)"),
    MetricSpec("lpips", True, False, "AlexNet v0.1, layer mean (lpips default), [-1, 1]"),
    MetricSpec("lpips_spatial", True, False, "AlexNet v0.1, mean of the spatial map (NTIRE)"),
    MetricSpec("lpips_vgg", True, False, "VGG16 v0.1, layer mean (lpips net='vgg')"),
    MetricSpec("niqe", False, False, "authors' release (pristine model), MATLAB gray"),
    MetricSpec("brisque", False, False, "authors' MATLAB release (allmodel), MATLAB gray"),
    MetricSpec("brisque_package", False, False, "model + features of the brisque 0.2.0 package"),
    MetricSpec("piqe", False, False, "MATLAB piqe() (PIQUE)"),
)}  # fmt: skip


@dataclass
class MetricRunner:
    """Computes metrics by name on uint8 ``(H, W, 3)`` images, loading models lazily."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _cache: dict[str, Any] = field(default_factory=dict)

    def _lpips(self, spatial: bool, net: str) -> Any:
        key = f"lpips_{spatial}_{net}"
        if key not in self._cache:
            from srflow.metrics.lpips import LPIPS

            self._cache[key] = LPIPS.from_files(spatial=spatial, net=net).to(self.device)
        return self._cache[key]

    def _brisque_release(self) -> Any:
        if "brisque" not in self._cache:
            from srflow.metrics.brisque_release import load_brisque_release

            self._cache["brisque"] = load_brisque_release()
        return self._cache["brisque"]

    def _lpips_value(
        self, image: np.ndarray, ref: np.ndarray, spatial: bool, net: str = "alex"
    ) -> float:
        a, b = (torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(self.device)
                for x in (image, ref))  # fmt: skip
        with torch.no_grad():
            return float(self._lpips(spatial, net).score(a, b)[0])

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
            "ms_ssim_box": lambda a, r: ms_ssim_matlab(a, r, downsample="box"),
            "lpips": lambda a, r: self._lpips_value(a, r, spatial=False),  # type: ignore[arg-type]
            "lpips_spatial": lambda a, r: self._lpips_value(a, r, spatial=True),  # type: ignore[arg-type]
            "lpips_vgg": lambda a, r: self._lpips_value(a, r, False, "vgg"),  # type: ignore[arg-type]
            "niqe": lambda a, r: niqe(a),
            "brisque": lambda a, r: brisque_release(a, self._brisque_release()),
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
