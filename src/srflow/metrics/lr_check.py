"""Is an output consistent with its input? The LR check every decoding path runs.

A super-resolved image must downscale back to its LR: ``imresize(SR, 1/scale)`` (the
MATLAB-compatible bicubic, on the clamped float output) against the LR, as PSNR over the whole
image and over blocks of :data:`BLOCK` x :data:`BLOCK` LR pixels, so that one blob of noise in a
large image is caught even when the whole-image figure stays high. An output below either
threshold is *inconsistent*: :func:`check_lr_consistency` names it in an
:class:`~srflow.divergence.InconsistentOutputWarning` (the CLI: one line per file, exit status 3).

The thresholds were calibrated on real photographs (``scripts/consistency_calibration.py``,
docs/robustness.md#lr-consistency): well below what every model reaches on photos at the
temperatures its docs recommend, well above what a noise blob gives.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.data.resize import imresize
from srflow.divergence import InconsistentOutputWarning

#: Side of the blocks (LR pixels) of the local measure.
BLOCK = 16
#: An output whose whole-image LR-PSNR (dB) is below this is flagged.
IMAGE_THRESHOLD_DB = 35.0
#: An output with an LR block below this PSNR (dB) is flagged.
BLOCK_THRESHOLD_DB = 25.0


@dataclass(frozen=True)
class LRConsistency:
    """How well one output downscales back to its LR.

    Attributes:
        lr_psnr: PSNR (dB, peak 1) of the downscaled output against the LR, whole image.
        worst_block_psnr: the lowest PSNR of a block of :data:`BLOCK` LR pixels.
        worst_block: ``(y, x)`` of that block's top-left corner, in LR pixels.
        failing: LR-sized boolean map ``(h, w)`` of the blocks below the block threshold.
    """

    lr_psnr: float
    worst_block_psnr: float
    worst_block: tuple[int, int]
    failing: Tensor

    @property
    def consistent(self) -> bool:
        """Both figures at or above their thresholds."""
        return self.lr_psnr >= IMAGE_THRESHOLD_DB and self.worst_block_psnr >= BLOCK_THRESHOLD_DB

    def describe(self) -> str:
        """One line with the figures and what to do."""
        y, x = self.worst_block
        return (
            f"not consistent with its input: LR-PSNR {self.lr_psnr:.1f} dB, worst {BLOCK}x{BLOCK} "
            f"LR block {self.worst_block_psnr:.1f} dB at x={x}, y={y} (thresholds "
            f"{IMAGE_THRESHOLD_DB:g} / {BLOCK_THRESHOLD_DB:g} dB); a lower temperature, or "
            "--repair, avoids it"
        )


def _psnr(mse: Tensor) -> Tensor:
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


#: Maps outputs ``(1, 3, H, W)`` to the LR they must give back ``(1, 3, h, w)``.
Downscale = Callable[[Tensor], Tensor]


def bicubic(scale: int) -> Downscale:
    """The MATLAB-compatible bicubic by ``1 / scale`` of the clamped output (what a
    super-resolution must give back)."""

    def down(hr: Tensor) -> Tensor:
        out = imresize(hr.detach().float().clamp(0, 1), scale=1.0 / scale)
        assert isinstance(out, Tensor)
        return out

    return down


def lr_consistency(sr: Tensor, lr: Tensor, downscale: Downscale | int) -> list[LRConsistency]:
    """The LR check of each output of a batch.

    Args:
        sr: outputs ``(B, 3, H, W)`` (values outside [0, 1] are clamped, as written).
        lr: their LR ``(B or 1, 3, h, w)`` in [0, 1].
        downscale: how an output gives back its LR (a model's
            :meth:`~srflow.models.contract.FlowSR.consistency_lr`), or a scale for
            :func:`bicubic`.
    """
    down_fn = bicubic(downscale) if isinstance(downscale, int) else downscale
    if lr.shape[0] not in (1, sr.shape[0]):
        raise ValueError(f"{sr.shape[0]} outputs but {lr.shape[0]} LR images")
    results = []
    for index in range(sr.shape[0]):  # one at a time: the downscale works on a float copy
        down = down_fn(sr[index : index + 1])[0]
        target = lr[index if lr.shape[0] > 1 else 0].detach().to(down)
        if down.shape != target.shape:
            raise ValueError(f"an output {tuple(sr.shape[1:])} gives back an LR of "
                             f"{tuple(down.shape)}, its LR is {tuple(target.shape)}")  # fmt: skip
        results.append(consistency_of(down, target))
    return results


def consistency_of(down: Tensor, lr: Tensor) -> LRConsistency:
    """The check of one output already brought to the LR's size ``(3, h, w)`` (a model with
    its own HR -> LR map, e.g. HCFlow rescaling, brings it there its own way)."""
    error = (down.float() - lr.float()).pow(2).mean(dim=0, keepdim=True)  # (1, h, w)
    grid = _psnr(F.avg_pool2d(error[None], BLOCK, ceil_mode=True))[0, 0]  # partial blocks too
    by, bx = divmod(int(grid.argmin()), grid.shape[1])
    failing = (grid < BLOCK_THRESHOLD_DB).repeat_interleave(BLOCK, 0)
    failing = failing.repeat_interleave(BLOCK, 1)[: lr.shape[1], : lr.shape[2]]
    whole = float(_psnr(error.mean()))
    return LRConsistency(whole, float(grid[by, bx]), (by * BLOCK, bx * BLOCK), failing.cpu())


def check_lr_consistency(
    sr: Tensor, lr: Tensor, downscale: Downscale | int, temperature: object | None = None
) -> list[LRConsistency]:
    """:func:`lr_consistency`, and one :class:`InconsistentOutputWarning` naming the outputs
    below a threshold (none when all pass)."""
    found = lr_consistency(sr, lr, downscale)
    if not all(c.consistent for c in found):
        lines = tuple("" if c.consistent else c.describe() for c in found)
        warnings.warn(InconsistentOutputWarning(lines, temperature), stacklevel=3)
    return found

