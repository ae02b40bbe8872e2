"""Calibrate and report the LR check (docs/robustness.md#lr-consistency).

Super-resolves center crops of the held-out photos (``data/photos/eval/hr``, made by
``scripts/prepare_photos.py``; the LR is our MATLAB bicubic of the crop, rounded to 8 bits) at
each temperature, ``--samples`` samples each, and prints per temperature the whole-image
LR-PSNR (mean, worst), the worst 16x16 LR block (mean over outputs, worst), the share of
outputs the check flags at the current thresholds (``srflow.metrics.lr_check``) and, running
the same samples with ``repair``, the share repaired, the mean redraws a repaired output took
and the share still failing after repair. Usage::

    python scripts/consistency_calibration.py                      # embedded model
    python scripts/consistency_calibration.py --model m.safetensors --count 4 --crop 256
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from srflow.data.image_io import list_images, read_image
from srflow.divergence import DivergenceWarning
from srflow.inference.api import default_model_path
from srflow.inference.pipeline import SuperResolver
from srflow.latent import downscale
from srflow.metrics.lr_check import lr_consistency

ROOT = Path(__file__).resolve().parents[1]


def crops(paths: list[Path], size: int) -> list[torch.Tensor]:
    """Center crops of ``size`` HR pixels (or the whole image when smaller), as ``(3, h, w)``."""
    out = []
    for path in paths:
        hr = read_image(path).rgb
        h, w = (min(size, s) // 16 * 16 for s in hr.shape[1:])
        top, left = (hr.shape[1] - h) // 2, (hr.shape[2] - w) // 2
        out.append(hr[:, top : top + h, left : left + w])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model file (default: the embedded one)")
    parser.add_argument("--photos", type=Path, default=ROOT / "data" / "photos")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--crop", type=int, default=512, help="HR crop side (pixels)")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--temperatures", type=float, nargs="+",
                        default=[0.0, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2])  # fmt: skip
    args = parser.parse_args()
    paths = list_images([args.photos / "eval" / "hr"])[: args.count]
    if not paths:
        sys.exit(f"{args.photos}/eval/hr: no photos; run scripts/prepare_photos.py")
    resolver = SuperResolver.from_path(args.model or default_model_path(), "cpu", False)
    scale = resolver.scale
    hrs = crops(paths, args.crop)
    lrs = [downscale(hr[None], scale)[0] for hr in hrs]
    sys.stdout.write(
        f"{resolver.description}: {len(paths)} photos, {args.crop} px HR crops, "
        f"{args.samples} samples per temperature\n\n"
        "| T | LR-PSNR mean (dB) | LR-PSNR worst | worst block, mean | worst block, worst | "
        "flagged | repaired (redraws) | failing after repair |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    for temperature in args.temperatures:
        found, repairs, still = [], [], 0
        for lr in lrs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DivergenceWarning)
                srs = next(resolver.sample_temperatures(lr, [temperature], args.samples, 0))
                fixed = next(resolver.sample_temperatures(
                    lr, [temperature], args.samples, 0, repair=True,
                    on_repair=lambda _t, _j, repair, sink=repairs: sink.append(repair),
                ))  # fmt: skip
            found += lr_consistency(srs, lr[None], scale)
            still += sum(not c.consistent for c in lr_consistency(fixed, lr[None], scale))
        whole = np.array([c.lr_psnr for c in found])
        block = np.array([c.worst_block_psnr for c in found])
        flagged = np.mean([not c.consistent for c in found])
        tries = np.mean([r.tries for r in repairs]) if repairs else 0.0
        sys.stdout.write(
            f"| {temperature:g} | {whole.mean():.2f} | {whole.min():.2f} | {block.mean():.2f} "
            f"| {block.min():.2f} | {100 * flagged:.0f} % | "
            f"{100 * len(repairs) / len(found):.0f} % ({tries:.1f}) | "
            f"{100 * still / len(found):.0f} % |\n"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
