"""Names, units, formatting and direction of every metric an evaluation reports."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["METRICS", "MetricInfo", "format_value", "ordered_keys"]


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is shown.

    Attributes:
        label: Column title.
        digits: Decimal places in tables.
        higher_is_better: Direction (None: neither, e.g. diversity is a trade-off).
        description: One line for the report's legend.
    """

    label: str
    digits: int
    higher_is_better: bool | None
    description: str


METRICS: dict[str, MetricInfo] = {
    "psnr": MetricInfo("PSNR", 2, True, "dB vs the ground truth, mean over samples"),
    "ssim": MetricInfo("SSIM", 4, True, "vs the ground truth, mean over samples"),
    "lr_psnr": MetricInfo(
        "LR-PSNR", 2, True, "dB, bicubic(SR) vs bicubic(GT), uint8 (challenge), mean"
    ),
    "lr_psnr_worst": MetricInfo("LR-PSNR min", 2, True, "dB, worst sample"),
    "lpips": MetricInfo("LPIPS", 4, False, "AlexNet v0.1 (see settings), mean over samples"),
    "div_lpips": MetricInfo(
        "Div. LPIPS %", 2, None, "challenge diversity score (G - Lc) / G on LPIPS maps"
    ),
    "div_mse": MetricInfo(
        "Div. MSE %", 2, None, "same score on 16x16 box-filtered squared-error maps (2022 kit)"
    ),
    "pixel_std": MetricInfo("Pixel std", 3, None, "per-pixel std over samples, 0-255 (SRFlow)"),
    "niqe": MetricInfo("NIQE", 3, False, "no-reference, lower is better, mean over samples"),
    "brisque": MetricInfo("BRISQUE", 2, False, "no-reference, lower is better, mean"),
    "piqe": MetricInfo("PIQE", 2, False, "no-reference (PIQUE), lower is better, mean"),
}


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
