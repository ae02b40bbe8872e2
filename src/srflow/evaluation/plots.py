"""PNG plots of an evaluation (matplotlib, the optional ``[eval]`` extra).

* ``metrics_vs_temperature.png``: each averaged metric against the temperature, bicubic as a
  dashed line;
* ``perception_distortion.png``: LPIPS (or NIQE, BRISQUE, PIQE, whichever was measured first)
  against PSNR, one point per temperature and bicubic;
* ``samples.png``: centre crops of the first image: ground truth, bicubic, then up to 4
  samples per temperature.

Without matplotlib the plots are skipped with one warning.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from srflow.evaluation.results import EvalResult
from srflow.metrics.registry import METRICS

__all__ = ["GRID_CROP", "write_plots"]

logger = logging.getLogger(__name__)
GRID_CROP = 128
_PERCEPTUAL = ("lpips", "niqe", "brisque", "piqe")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("plots skipped: matplotlib is not installed (pip install 'srflow[eval]')")
        return None
    return plt


def _save(plt: Any, figure: Any, path: Path) -> Path:
    temporary = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)
    return path


def _metrics_vs_temperature(plt: Any, result: EvalResult, path: Path) -> Path:
    summary = result.summary()
    srflow = sorted((r for r in summary if r.temperature is not None), key=lambda r: r.temperature)
    bicubic = [r for r in summary if r.temperature is None]
    keys = [k for k in result.metric_keys() if k != "lr_psnr_worst"]
    columns = 3
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    temperatures = [r.temperature for r in srflow]
    for axis, key in zip(axes.flat, keys, strict=False):
        values = [r.metrics.get(key, math.nan) for r in srflow]
        axis.plot(temperatures, values, "o-", label=srflow[0].family if srflow else "model")
        if bicubic and math.isfinite(bicubic[0].metrics.get(key, math.nan)):
            axis.axhline(bicubic[0].metrics[key], color="gray", ls="--", label="bicubic")
        axis.set_title(METRICS[key].label)
        axis.set_xlabel("temperature τ")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(keys) :]:
        axis.axis("off")
    axes.flat[0].legend()
    figure.suptitle(f"{result.model}: mean over {len(result.images)} image(s)")
    figure.tight_layout()
    return _save(plt, figure, path)


def _perception_distortion(plt: Any, result: EvalResult, path: Path) -> Path | None:
    keys = result.metric_keys()
    perceptual = next((k for k in _PERCEPTUAL if k in keys), None)
    if perceptual is None:
        return None
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    curve = sorted((r for r in result.summary() if r.temperature is not None),
                   key=lambda r: r.temperature)  # fmt: skip
    xs = [r.metrics.get("psnr", math.nan) for r in curve]
    ys = [r.metrics.get(perceptual, math.nan) for r in curve]
    axis.plot(xs, ys, "-", color="C0", alpha=0.5)
    for row in result.summary():
        x, y = row.metrics.get("psnr", math.nan), row.metrics.get(perceptual, math.nan)
        marker = "s" if row.temperature is None else "o"
        axis.plot(x, y, marker, color="gray" if row.temperature is None else "C0")
        axis.annotate(row.label.replace(f"{row.family} ", ""), (x, y), textcoords="offset points",
                      xytext=(5, 4), fontsize=8)  # fmt: skip
    axis.set_xlabel("PSNR (dB) → less distortion")
    axis.set_ylabel(f"{METRICS[perceptual].label} (lower = better perceptual quality)")
    axis.set_title("Perception–distortion")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(plt, figure, path)


def _centre(image: np.ndarray, size: int) -> np.ndarray:
    top = max(0, (image.shape[0] - size) // 2)
    left = max(0, (image.shape[1] - size) // 2)
    return image[top : top + size, left : left + size]


def _samples_grid(plt: Any, result: EvalResult, path: Path) -> Path | None:
    if not result.gallery:
        return None
    labels = list(result.gallery)  # ground truth, bicubic, τ=0, then the other temperatures
    references, sampled = labels[:3], labels[3:]
    grid = [[(lab, result.gallery[lab][0]) for lab in references]]
    grid += [[(f"{lab} #{i}", im) for i, im in enumerate(result.gallery[lab])] for lab in sampled]
    columns = max(len(row) for row in grid)
    figure, axes = plt.subplots(
        len(grid), columns, figsize=(2.2 * columns, 2.4 * len(grid)), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    for r, row in enumerate(grid):
        for c, (label, image) in enumerate(row):
            axes[r, c].imshow(_centre(image, GRID_CROP), interpolation="nearest")
            axes[r, c].set_title(label, fontsize=8)
    figure.suptitle(f"{result.images[0][0]}: centre {GRID_CROP}px crop", fontsize=9)
    figure.tight_layout()
    return _save(plt, figure, path)


def write_plots(result: EvalResult, folder: Path) -> list[Path]:
    """Write the PNG plots into ``folder``; returns the files written (none without matplotlib)."""
    plt = _pyplot()
    if plt is None or not result.rows:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written = [
        _metrics_vs_temperature(plt, result, folder / "metrics_vs_temperature.png"),
        _perception_distortion(plt, result, folder / "perception_distortion.png"),
        _samples_grid(plt, result, folder / "samples.png"),
    ]
    return [path for path in written if path is not None]
