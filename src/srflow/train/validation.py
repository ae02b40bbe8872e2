"""Periodic validation: NLL (bits/dim), PSNR and LR-PSNR per temperature, sample grids.

Metrics follow the evaluation protocol on uint8 ``(H, W, 3)`` arrays: SR samples are rounded
to uint8, PSNR over full RGB, LR-PSNR = PSNR(imresize(SR, 1/scale), LR). The NLL uses a fixed
dequantization noise per image, so successive validations are comparable.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srflow.data.datasets import ValidationImages
from srflow.data.transforms import bicubic_upscale, quantize_8bit, to_hwc_uint8
from srflow.families.objective import Objective
from srflow.files import atomic_file
from srflow.metrics.consistency import lr_psnr
from srflow.metrics.psnr_ssim import psnr
from srflow.models.contract import FlowSR


def _to_device(image: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return tensor.to(device).float().div_(255.0).unsqueeze(0)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


@torch.no_grad()
def validate(
    model: FlowSR,
    images: ValidationImages,
    *,
    temperatures: tuple[float, ...],
    seed: int,
    device: torch.device,
    objective: Objective,
    grid_path: Path | None = None,
    grid_images: int = 4,
) -> dict[str, float]:
    """Validate ``model`` on ``images``; optionally save a PNG grid.

    The grid has one row per image (the first ``grid_images``): bicubic-upscaled LR, one
    sample per temperature, HR.

    A rescaling model's samples (:attr:`~srflow.models.contract.Capabilities.rescaling`) are
    decoded from its own 8-bit LR of the HR (the round trip), and ``lr_psnr_T`` is then that
    LR's PSNR against the bicubic LR. The NLL is the objective's (:attr:`Objective.nll_unit`:
    bits per dimension for SRFlow, bits per HR pixel for HCFlow).

    Returns:
        ``nll_bpd`` and, per temperature ``T``, ``psnr_T`` and ``lr_psnr_T`` (dB).
    """
    was_training = model.training
    model.eval()
    scale = model.config.scale
    generator = torch.Generator(device=device)
    nll, scores = [], {t: ([], []) for t in temperatures}
    rows = []
    for index, (hr, lr) in enumerate(zip(images.hr, images.lr, strict=True)):
        hr_t, lr_t = _to_device(hr, device), _to_device(lr, device)
        noise = objective.noise(tuple(hr_t.shape[1:]), [seed + index], generator, device)
        nll.append(float(objective.nll(model, hr_t, lr_t, noise)[0]))
        row = [bicubic_upscale(lr, scale)]
        source = lr_t
        rescales = model.capabilities.rescaling
        if rescales:
            source = quantize_8bit(model.downscale(hr_t))
        for t in temperatures:
            generator.manual_seed(seed + 7919 * index + int(t * 1000))
            sr = to_hwc_uint8(model.sample(source, t, 1, generator)[0, 0])
            scores[t][0].append(psnr(sr, hr))
            if rescales:
                scores[t][1].append(psnr(to_hwc_uint8(source[0]), lr))
            else:
                scores[t][1].append(lr_psnr(sr, lr, scale))
            row.append(sr)
        row.append(hr)
        if index < grid_images:
            rows.append(np.concatenate(row, axis=1))
    if grid_path is not None and rows:
        width = max(r.shape[1] for r in rows)
        padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
        with atomic_file(grid_path) as handle:
            Image.fromarray(np.concatenate(padded, axis=0)).save(handle, format="PNG")
    model.train(was_training)
    metrics = {"nll_bpd": _mean(nll)}
    for t, (psnrs, lr_psnrs) in scores.items():
        metrics[f"psnr_{t:g}"] = _mean(psnrs)
        metrics[f"lr_psnr_{t:g}"] = _mean(lr_psnrs)
    return metrics
