"""Rows of an evaluation (one per image and method) and their average over images."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from srflow.evaluation.config import EvalConfig
from srflow.metrics.registry import ordered_keys

__all__ = ["AVERAGE", "EvalResult", "MethodResult"]

AVERAGE = "mean"


@dataclass(frozen=True)
class MethodResult:
    """The scores of one method on one image (or averaged over images).

    Attributes:
        image: Image name, or ``"mean"`` for the average over images.
        method: ``"bicubic"`` or ``"srflow"`` (the flow model, whatever its family).
        temperature: the model's sampling temperature (None for bicubic).
        samples: Samples scored per image.
        metrics: Metric key -> value (``math.inf`` for a perfect LR-PSNR, NaN if not measured).
        per_sample: Metric key -> the per-sample values (empty for averaged rows).
        family: the model's family, shown in labels (its registry name: ``SRFlow-DA``, ...).
    """

    image: str
    method: str
    temperature: float | None
    samples: int
    metrics: dict[str, float]
    per_sample: dict[str, list[float]] = field(default_factory=dict)
    family: str = "model"

    @property
    def label(self) -> str:
        """``bicubic`` or ``SRFlow τ=0.9`` (``SRFlow-DA τ=0.9``, ...)."""
        if self.temperature is None:
            return self.method
        return f"{self.family} τ={self.temperature:g}"


@dataclass
class EvalResult:
    """Everything an evaluation measured.

    Attributes:
        model: The model's name (file name).
        scale: Super-resolution factor.
        config: The run's settings.
        images: ``[(name, "WxH", lr source)]`` of the evaluated images.
        rows: Per-image results, image by image, bicubic first then by temperature.
        unavailable: Metric key -> why it was not measured.
        seconds: Wall-clock time of the run.
        device: Where the model ran.
        gallery: For the first image: ``label -> up to 4 uint8 (H, W, 3) outputs`` (and
            ``"ground truth"``), for the sample grid.
        command: The command line that reproduces the run (shown in reports), if known.
    """

    model: str
    scale: int
    config: EvalConfig
    images: list[tuple[str, str, str]]
    rows: list[MethodResult]
    unavailable: dict[str, str]
    seconds: float = 0.0
    device: str = "cpu"
    gallery: dict[str, list[np.ndarray]] = field(default_factory=dict)
    command: str = ""

    def metric_keys(self) -> list[str]:
        """Keys measured in at least one row, in column order."""
        return ordered_keys({key for row in self.rows for key in row.metrics})

    def summary(self) -> list[MethodResult]:
        """The mean over images of every metric, per method and temperature (NaN ignored)."""
        groups: dict[tuple[str, float | None], list[MethodResult]] = {}
        for row in self.rows:
            groups.setdefault((row.method, row.temperature), []).append(row)
        averaged = []
        for (method, temperature), rows in groups.items():
            metrics = {}
            for key in self.metric_keys():
                values = [r.metrics.get(key, math.nan) for r in rows]
                finite_or_inf = [v for v in values if not math.isnan(v)]
                metrics[key] = float(np.mean(finite_or_inf)) if finite_or_inf else math.nan
            averaged.append(
                MethodResult(
                    AVERAGE, method, temperature, rows[0].samples, metrics, family=rows[0].family
                )  # fmt: skip
            )
        return averaged
