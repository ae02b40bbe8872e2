"""Write an evaluation as Markdown (averaged + per-image tables), JSON and CSV.

Files are written to a temporary name and renamed, so an interrupted run leaves no half file.
Infinite values (a perfect LR-PSNR) are written ``inf`` in Markdown and CSV and ``"inf"`` in
JSON (JSON has no infinity); NaN (not measured) is ``-``, an empty CSV cell and ``null``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from srflow.evaluation.results import EvalResult, MethodResult
from srflow.files import atomic_file
from srflow.metrics.registry import METRICS, format_value

__all__ = ["markdown_report", "write_atomic", "write_csv", "write_json", "write_markdown"]


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _json_number(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _metric_info(key: str) -> dict[str, object]:
    spec = METRICS[key]
    return {"label": spec.label, "digits": spec.digits,
            "higher_is_better": spec.higher_is_better, "description": spec.legend}  # fmt: skip


def _row_dict(row: MethodResult, per_sample: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "image": row.image,
        "method": row.method,
        "temperature": row.temperature,
        "samples": row.samples,
        "metrics": {key: _json_number(v) for key, v in row.metrics.items()},
    }
    if per_sample:
        data["per_sample"] = {
            key: [_json_number(v) for v in values] for key, values in row.per_sample.items()
        }
    return data


def write_json(result: EvalResult, path: Path) -> Path:
    """Settings, unavailable metrics, averaged rows and per-image rows with per-sample values."""
    data = {
        "model": result.model,
        "scale": result.scale,
        "command": result.command,
        "device": result.device,
        "seconds": round(result.seconds, 3),
        "config": asdict(result.config),
        "images": [{"name": n, "size": s, "lr": lr} for n, s, lr in result.images],
        "unavailable": result.unavailable,
        "metrics": {key: _metric_info(key) for key in result.metric_keys()},
        "summary": [_row_dict(row, False) for row in result.summary()],
        "per_image": [_row_dict(row, True) for row in result.rows],
    }
    return write_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


def write_csv(rows: Sequence[MethodResult], keys: Sequence[str], path: Path) -> Path:
    """One line per row: image, method, temperature, samples, then the metric columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "method", "temperature", "samples", *keys])
    for row in rows:
        values = [row.metrics.get(key, math.nan) for key in keys]
        writer.writerow(
            [
                row.image,
                row.method,
                "" if row.temperature is None else row.temperature,
                row.samples,
                *("" if math.isnan(v) else repr(float(v)) for v in values),
            ]
        )
    return write_atomic(path, buffer.getvalue())


def _table(rows: Sequence[MethodResult], keys: Sequence[str]) -> list[str]:
    header = ["method", "n", *(METRICS[k].label for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.label, str(row.samples)]
        cells += [format_value(k, row.metrics.get(k)) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _settings(result: EvalResult) -> list[str]:
    config, conv = result.config, result.config.conventions
    temperatures = ", ".join(f"{t:g}" for t in config.all_temperatures)
    return [
        f"- model: `{result.model}`, scale {result.scale}x, device {result.device}, "
        f"{len(result.images)} image(s), {result.seconds / 60:.1f} min",
        f"- temperatures {temperatures}; {config.samples} samples each (τ=0 once), "
        f"seed {config.seed}",
        f"- PSNR/SSIM on {'Y (BT.601)' if conv.y_channel else 'RGB'}, border crop "
        f"{conv.crop_border}, SR to 8 bit by {conv.uint8}; LR-PSNR reference "
        f"{'bicubic(GT)' if conv.lr_psnr_reference == 'gt' else 'the input LR'}; LPIPS "
        f"{'spatial-map mean' if conv.lpips_spatial else 'sum of layer means'}",
    ]


def markdown_report(
    result: EvalResult, plots: Sequence[Path] = (), relative_to: Path | None = None
) -> str:
    """The Markdown report: settings, averaged table, legend, plots, per-image tables."""
    keys = result.metric_keys()
    lines = ["# Evaluation", "", *_settings(result), ""]
    if result.command:
        lines += ["Reproduce with:", "", "```bash", result.command, "```", ""]
    lines += ["## Average over images", ""]
    lines += _table(result.summary(), keys)
    lines += ["", "Columns:", ""]
    lines += [f"- **{METRICS[k].label}**: {METRICS[k].legend}" for k in keys]
    if result.unavailable:
        lines += ["", "Not measured:", ""]
        lines += [f"- {name}: {why}" for name, why in result.unavailable.items()]
    for plot in plots:
        link = os.path.relpath(plot, relative_to) if relative_to else plot.name
        lines += ["", f"![{plot.stem}]({Path(link).as_posix()})"]
    lines += ["", "## Per image"]
    for name, size, lr_source in result.images:
        lines += ["", f"### {name} ({size}, LR: {lr_source})", ""]
        lines += _table([row for row in result.rows if row.image == name], keys)
    return "\n".join(lines) + "\n"


def write_markdown(result: EvalResult, path: Path, plots: Sequence[Path] = ()) -> Path:
    """Write :func:`markdown_report` to ``path`` (plot links relative to its folder)."""
    return write_atomic(path, markdown_report(result, plots, relative_to=path.parent))
