"""PIQUE/PIQE, the Perception-based Image Quality Evaluator (Venkatanath N et al., NCC 2015).

Own implementation of the algorithm as MATLAB's ``piqe`` documents it; no trained parameters.

* Gray on the [0, 255] scale (MATLAB ``rgb2gray`` for RGB), stretched to its maximum and
  rounded, ``round(255 I / max(I))``, as MATLAB's ``piqe`` does (and IQA-PyTorch's port, which
  matches MATLAB on five TID2013 images); padded at the bottom/right by replication to a
  multiple of 16.
* MSCN ``(I - mu) / (sigma + 1)`` with the 7x7 Gaussian window (sigma 7/6), replicate borders.
* 16x16 non-overlapping blocks. A block is *spatially active* when the variance of its MSCN
  coefficients exceeds 0.1; only active blocks are scored.
* Noticeable distortion: some segment of 6 consecutive pixels (11 per edge, sliding) on one of
  the 4 block edges has a standard deviation below 0.1.
* Noise: with ``s`` the block's MSCN standard deviation and ``r`` = std of the 2 central
  columns (8 and 9, 1-based) / std of 14 "surround" columns, ``beta = |s - r| / max(s, r)``;
  noise when ``s > 2 beta``. The surround is MATLAB's as it runs: it deletes column 8 and then
  column 9 of the already shortened block, so it drops the original columns 8 and 10.
* Block distortion ``d = [distortion] (1 - v) + [noise] v`` (v = block variance); score
  ``100 (sum d + 1) / (n_active + 1)``; 0 (best) .. 100 (worst).

Variances and standard deviations use MATLAB's default ``N - 1`` normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srflow.metrics.gray import to_gray_255
from srflow.metrics.mscn import gaussian_window_7, mscn

__all__ = ["PIQEResult", "piqe", "piqe_details"]

BLOCK = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT = 6


@dataclass(frozen=True)
class PIQEResult:
    """Score and the per-pixel masks (``(H, W)``, input size) of MATLAB's ``piqe``."""

    score: float
    activity_mask: np.ndarray  # bool: spatially active blocks
    artifact_mask: np.ndarray  # float: block variance where a noticeable distortion was found
    noise_mask: np.ndarray  # float: block variance where noise was found


def _edge_segments_std(edges: np.ndarray) -> np.ndarray:
    """Std (ddof 1) of all length-6 sliding segments of edges ``(..., 16)`` -> ``(..., 11)``."""
    windows = np.lib.stride_tricks.sliding_window_view(edges, SEGMENT, axis=-1)
    return windows.std(axis=-1, ddof=1)


def piqe_details(image: np.ndarray) -> PIQEResult:
    """PIQE score with its activity / noticeable-artifact / noise masks.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` RGB, uint8 or float in [0, 1]; at least 16x16.

    Raises:
        ValueError: On a bad shape/dtype or an image smaller than one block.
    """
    gray = to_gray_255(image)
    top = float(gray.max()) if gray.size else 0.0
    if top > 0:
        gray = np.round(255.0 * gray / top)
    height, width = gray.shape
    if height < BLOCK or width < BLOCK:
        raise ValueError(f"PIQE needs an image of at least {BLOCK}x{BLOCK}, got {gray.shape}")
    pad_h, pad_w = (-height) % BLOCK, (-width) % BLOCK
    gray = np.pad(gray, ((0, pad_h), (0, pad_w)), mode="edge")
    coefficients, _ = mscn(gray, gaussian_window_7())
    rows, cols = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    blocks = coefficients.reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)

    variance = blocks.reshape(rows, cols, -1).var(axis=-1, ddof=1)
    active = variance > ACTIVITY_THRESHOLD

    edges = np.stack(
        [blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0]], axis=2
    )
    impaired = (_edge_segments_std(edges) < IMPAIRED_THRESHOLD).any(axis=(2, 3))

    centre_cols = [BLOCK // 2 - 1, BLOCK // 2]
    # MATLAB's piqe deletes column 8 and then "column 9" of the shortened block (1-based), i.e.
    # the original columns 8 and 10: its surround keeps centre column 9 and drops column 10
    surround_cols = [c for c in range(BLOCK) if c not in (BLOCK // 2 - 1, BLOCK // 2 + 1)]
    centre_std = blocks[..., centre_cols].reshape(rows, cols, -1).std(axis=-1, ddof=1)
    surround_std = blocks[..., surround_cols].reshape(rows, cols, -1).std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = centre_std / surround_std
        sigma = np.sqrt(variance)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
        noisy = sigma > 2 * beta  # NaN (flat surround) compares False, as in MATLAB

    distortion = np.where(impaired, 1.0 - variance, 0.0) + np.where(noisy, variance, 0.0)
    total = float(distortion[active].sum())
    score = 100.0 * (total + 1.0) / (int(active.sum()) + 1.0)

    def expand(values: np.ndarray) -> np.ndarray:
        full = np.kron(values, np.ones((BLOCK, BLOCK), dtype=values.dtype))
        return full[:height, :width]

    return PIQEResult(
        score=score,
        activity_mask=expand(active),
        artifact_mask=expand(np.where(active & impaired, variance, 0.0)),
        noise_mask=expand(np.where(active & noisy, variance, 0.0)),
    )


def piqe(image: np.ndarray) -> float:
    """PIQE score in [0, 100] (lower = better perceived quality); see :func:`piqe_details`."""
    return piqe_details(image).score
