"""``srflow eval --task rescale``: an HCFlow rescaling model against bicubic down + up.

For every HR image (modcropped as for SR evaluation): the model's 8-bit LR (its
``downscale``) is compared with the MATLAB-bicubic LR, and the HR reconstructed from that
8-bit LR (``upscale`` at the temperature, 1.0 as published) with the ground truth; the
baseline row is bicubic down + bicubic up. PSNR and SSIM on RGB and on BT.601 Y; images
become uint8 by rounding; the HR metrics crop ``scale`` border pixels (HCFlow's test
script), the LR metrics none (docs/metrics.md, "Rescaling").
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from srflow.data.resize import imresize
from srflow.evaluation.images import EvalImage
from srflow.evaluation.report import write_atomic
from srflow.inference.rescale import Rescaler
from srflow.metrics.psnr_ssim import psnr, ssim

METRIC_KEYS = ("hr_psnr", "hr_ssim", "hr_psnr_y", "hr_ssim_y",
               "lr_psnr", "lr_ssim", "lr_psnr_y", "lr_ssim_y")  # fmt: skip
SinkFn = Callable[[str, str, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class RescaleRow:
    """One method on one image (``image`` ``"mean"`` for the average over images)."""

    image: str
    method: str
    metrics: dict[str, float]


@dataclass
class RescaleResult:
    """Per-image rows and their means, per method."""

    model: str
    temperature: float
    rows: list[RescaleRow] = field(default_factory=list)
    command: str = ""

    def summary(self) -> list[RescaleRow]:
        """The mean of every metric over the images, one row per method."""
        methods = list(dict.fromkeys(row.method for row in self.rows))
        out = []
        for method in methods:
            rows = [r for r in self.rows if r.method == method]
            keys = [k for k in METRIC_KEYS if k in rows[0].metrics]
            means = {k: float(np.mean([r.metrics[k] for r in rows])) for k in keys}
            out.append(RescaleRow("mean", method, means))
        return out


def _scores(prefix: str, out: np.ndarray, ref: np.ndarray, border: int) -> dict[str, float]:
    return {
        f"{prefix}_psnr": psnr(out, ref, crop_border=border),
        f"{prefix}_ssim": ssim(out, ref, crop_border=border),
        f"{prefix}_psnr_y": psnr(out, ref, crop_border=border, y_channel=True),
        f"{prefix}_ssim_y": ssim(out, ref, crop_border=border, y_channel=True),
    }


def _uint8(chw: torch.Tensor) -> np.ndarray:
    return torch.round(chw.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def evaluate_rescaling(
    rescaler: Rescaler, images: Sequence[EvalImage], *, temperature: float = 1.0,
    seed: int = 0, model_name: str = "model", sink: SinkFn | None = None,
    progress: Callable[[], None] | None = None,
) -> RescaleResult:  # fmt: skip
    """Score the model's LR and reconstruction and bicubic down + up on every image.

    ``sink(image, method, lr, hr)`` receives the uint8 LR and HR of each method.
    """
    s = rescaler.scale
    result = RescaleResult(model_name, temperature)
    for image in images:
        hr_float = torch.from_numpy(image.hr).permute(2, 0, 1).float() / 255.0
        lr = rescaler.downscale(hr_float)
        gen = torch.Generator().manual_seed(seed)
        up = rescaler.upscale(lr, temperature, generator=gen)[0]
        flow_lr, flow_hr = _uint8(lr), _uint8(up)
        bicubic_hr = imresize(image.lr, scale=s)
        metrics = {**_scores("hr", flow_hr, image.hr, s), **_scores("lr", flow_lr, image.lr, 0)}
        result.rows.append(RescaleRow(image.name, model_name, metrics))
        bicubic = _scores("hr", bicubic_hr, image.hr, s)
        result.rows.append(RescaleRow(image.name, "bicubic", bicubic))
        if sink is not None:
            sink(image.name, model_name, flow_lr, flow_hr)
            sink(image.name, "bicubic", image.lr, bicubic_hr)
        if progress is not None:
            progress()
    return result


def _cell(value: float | None, key: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.4f}" if "ssim" in key else f"{value:.2f}"


def markdown(result: RescaleResult) -> str:
    """The report: means, then per image (``-``: not applicable)."""
    head = "| image | method | " + " | ".join(METRIC_KEYS) + " |"
    rule = "|" + "---|" * (len(METRIC_KEYS) + 2)
    lines = [
        f"# Rescaling: {result.model}", "",
        f"HR reconstructed from the model's 8-bit LR at temperature {result.temperature:g}; "
        "LR metrics against MATLAB bicubic; HR metrics crop the scale in border pixels.", "",
    ]  # fmt: skip
    if result.command:
        lines += ["```", result.command, "```", ""]
    for title, rows in (("Means", result.summary()), ("Per image", result.rows)):
        lines += [f"## {title}", "", head, rule]
        lines += [
            f"| {r.image} | {r.method} | "
            + " | ".join(_cell(r.metrics.get(k), k) for k in METRIC_KEYS) + " |"
            for r in rows
        ]  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def write_reports(result: RescaleResult, out_dir: Path) -> list[Path]:
    """``results.json``, ``per_image.csv``, ``summary.csv`` and ``report.md`` in ``out_dir``."""
    payload = {
        "task": "rescale", "model": result.model, "temperature": result.temperature,
        "command": result.command,
        "summary": [_json_row(r) for r in result.summary()],
        "rows": [_json_row(r) for r in result.rows],
    }  # fmt: skip
    written = [write_atomic(out_dir / "results.json", json.dumps(payload, indent=2) + "\n")]
    for name, rows in (("per_image.csv", result.rows), ("summary.csv", result.summary())):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["image", "method", *METRIC_KEYS])
        for r in rows:
            writer.writerow([r.image, r.method, *(_csv(r.metrics.get(k)) for k in METRIC_KEYS)])
        written.append(write_atomic(out_dir / name, buffer.getvalue()))
    written.append(write_atomic(out_dir / "report.md", markdown(result)))
    return written


def _csv(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else repr(float(value))


def _json_row(row: RescaleRow) -> dict[str, object]:
    """JSON has no infinity: a perfect PSNR is written ``"inf"``."""
    values = {k: v if math.isfinite(v) else str(v) for k, v in row.metrics.items()}
    return {"image": row.image, "method": row.method, "metrics": values}
