"""Score a set of SR samples of one image with every available metric.

Per sample: PSNR, SSIM (selected conventions), LR-PSNR, LPIPS, NIQE, BRISQUE, PIQE. Per set:
the mean of each, the worst LR-PSNR, the challenge's diversity score on the spatial LPIPS maps,
its MSE analogue, and the pixel-std diversity. Metrics whose parameter files are missing are
skipped with one warning naming the file (:class:`MetricUnavailable`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from srflow.data.image_io import to_uint8_round, to_uint8_truncate
from srflow.evaluation.config import EvalConfig
from srflow.metrics.brisque_release import brisque_release
from srflow.metrics.consistency import lr_psnr, lr_psnr_float
from srflow.metrics.diversity import diversity_score, mse_local_map, pixel_std_diversity
from srflow.metrics.lpips import LPIPS
from srflow.metrics.niqe import niqe
from srflow.metrics.pique import piqe
from srflow.metrics.psnr_ssim import psnr, ssim
from srflow.metrics.registry import METRICS, MetricModels
from srflow.metrics.ssim_matlab import ssim_matlab
from srflow.metrics.weights import MetricUnavailable

__all__ = ["MetricSuite", "SetScores", "outputs_as_uint8"]

logger = logging.getLogger(__name__)


def outputs_as_uint8(samples: np.ndarray, mode: str) -> np.ndarray:
    """uint8 outputs: uint8 input unchanged, float [0, 1] truncated (``truncate``) or rounded.

    Args:
        samples: ``(N, H, W, 3)`` uint8, or float in [0, 1].
        mode: The ``uint8`` convention (``float`` rounds here: it only affects PSNR/SSIM).
    """
    if samples.dtype == np.uint8:
        return samples
    return to_uint8_truncate(samples) if mode == "truncate" else to_uint8_round(samples)


@dataclass(frozen=True)
class SetScores:
    """Scores of the N samples of one image and method.

    Attributes:
        metrics: Per-set values (means over samples, worst LR-PSNR, diversities).
        per_sample: The per-sample values behind the means, N per metric.
    """

    metrics: dict[str, float]
    per_sample: dict[str, list[float]]


class MetricSuite:
    """Loads the optional metrics once (the registry's :class:`MetricModels`, from the
    configured files) and scores sample sets.

    Args:
        config: Conventions, parameter files and skipped metrics.
        device: Where LPIPS runs.
    """

    def __init__(self, config: EvalConfig, device: torch.device | str = "cpu") -> None:
        self.conventions = config.conventions
        self.skip = set(config.skip_metrics)
        self.unavailable: dict[str, str] = {}
        files = config.files
        models = MetricModels(
            torch.device(device), files.lpips_backbone, files.lpips_linear, files.niqe_params,
            files.brisque_model,
        )  # fmt: skip
        self.lpips: LPIPS | None = self._load("lpips", lambda: models.lpips(spatial=True))
        self.niqe_params = self._load("niqe", models.niqe_params)
        self.brisque_model = self._load("brisque", models.brisque_release)
        self.no_reference: dict[str, Callable[[np.ndarray], float]] = {}
        if self.niqe_params is not None:
            self.no_reference["niqe"] = lambda im: niqe(im, self.niqe_params)
        if self.brisque_model is not None:
            self.no_reference["brisque"] = lambda im: brisque_release(im, self.brisque_model)
        if "piqe" in self.skip:
            self.unavailable["piqe"] = "not requested"
        else:
            self.no_reference["piqe"] = piqe

    def _load(self, name: str, loader: Callable[[], Any]) -> Any:
        if name in self.skip:
            self.unavailable[name] = "not requested"
            return None
        try:
            return loader()
        except MetricUnavailable as exc:
            logger.warning("%s skipped: %s", METRICS[name].label, exc)
            self.unavailable[name] = str(exc)
            return None

    def _quantise(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(uint8 samples, samples for PSNR/SSIM, their data range)."""
        as_uint8 = outputs_as_uint8(samples, self.conventions.uint8)
        if samples.dtype != np.uint8 and self.conventions.uint8 == "float":
            return as_uint8, samples.astype(np.float64), 1.0
        return as_uint8, as_uint8, 255.0

    def _no_reference(self, name: str, image: np.ndarray) -> float:
        try:
            return self.no_reference[name](image)
        except ValueError as exc:  # e.g. smaller than NIQE's 96x96 block
            logger.warning("%s skipped: %s", METRICS[name].label, exc)
            self.unavailable[name] = str(exc)
            del self.no_reference[name]
            return math.nan

    def score(
        self, gt_uint8: np.ndarray, lr_reference: np.ndarray, scale: int, samples: np.ndarray
    ) -> SetScores:
        """Score N samples of one image.

        Args:
            gt_uint8: Ground truth, uint8 ``(H, W, 3)``.
            lr_reference: uint8 LR the LR-PSNR compares with (``imresize(GT, 1/s)`` for the
                challenge protocol, else the model's input), or a float one in [0, 1]
                (HCFlow's float "bicHR" PSNR).
            scale: Super-resolution factor.
            samples: ``(N, H, W, 3)``: float in [0, 1] (converted by the uint8 convention) or
                uint8 (used as is, e.g. the bicubic reference).

        Returns:
            The per-set metrics and the per-sample values.
        """
        as_uint8, fidelity, data_range = self._quantise(samples)
        gt_fidelity = gt_uint8 / 255.0 if data_range == 1.0 else gt_uint8
        options = {
            "crop_border": self.conventions.crop_border,
            "y_channel": self.conventions.y_channel,
            "data_range": data_range,
        }
        per_sample: dict[str, list[float]] = {"psnr": [], "ssim": [], "lr_psnr": []}
        lpips_maps, lpips_scores, mse_maps = [], [], []
        for index, sr in enumerate(as_uint8):
            per_sample["psnr"].append(psnr(fidelity[index], gt_fidelity, **options))
            if self.conventions.ssim_matlab:
                per_sample["ssim"].append(_ssim_matlab(sr, gt_uint8, options["crop_border"]))
            else:
                per_sample["ssim"].append(ssim(fidelity[index], gt_fidelity, **options))
            consistency = lr_psnr if lr_reference.dtype == np.uint8 else lr_psnr_float
            per_sample["lr_psnr"].append(consistency(sr, lr_reference, scale))
            mse_maps.append(mse_local_map(sr, gt_uint8))
            if self.lpips is not None:
                spatial, layer_mean = self._lpips(sr, gt_uint8)
                lpips_maps.append(spatial)
                lpips_scores.append(
                    spatial.mean() if self.conventions.lpips_spatial else layer_mean
                )
            for name in list(self.no_reference):
                per_sample.setdefault(name, []).append(self._no_reference(name, sr))
        if lpips_maps:
            per_sample["lpips"] = [float(score) for score in lpips_scores]
        metrics = {key: float(np.mean(values)) for key, values in per_sample.items()}
        metrics["lr_psnr_worst"] = float(min(per_sample["lr_psnr"]))
        if lpips_maps:
            global_scores = [float(m.mean()) for m in lpips_maps]
            metrics["div_lpips"] = diversity_score(global_scores, np.stack(lpips_maps))
        metrics["div_mse"] = diversity_score(
            [float(m.mean()) for m in mse_maps], np.stack(mse_maps)
        )
        unbiased = self.conventions.pixel_std_unbiased
        metrics["pixel_std"] = pixel_std_diversity(fidelity, unbiased=unbiased)
        return SetScores(metrics, per_sample)

    @torch.no_grad()
    def _lpips(self, sr_uint8: np.ndarray, gt_uint8: np.ndarray) -> tuple[np.ndarray, float]:
        """The ``(H, W)`` spatial LPIPS map (NTIRE: ``spatial=True``) and the layer-mean LPIPS."""
        assert self.lpips is not None
        device = self.lpips.shift.device
        sr = torch.from_numpy(sr_uint8).permute(2, 0, 1)[None].to(device)
        gt = torch.from_numpy(np.ascontiguousarray(gt_uint8)).permute(2, 0, 1)[None].to(device)
        spatial, layer_mean = self.lpips.spatial_and_layer_mean(sr, gt)
        return spatial[0, 0].double().cpu().numpy(), float(layer_mean)


def _ssim_matlab(sr: np.ndarray, gt: np.ndarray, border: int) -> float:
    """MATLAB SSIM (``ssim_index.m`` on ``rgb2gray``) after cropping ``border`` pixels."""
    if border:
        sr, gt = sr[border:-border, border:-border], gt[border:-border, border:-border]
    return ssim_matlab(sr, gt)
