"""Memory estimate of one super-resolution call, checked before the work starts.

The conditioning tensors (the encoder's features at each flow level) grow with the LR area
and dominate the peak; their size per LR pixel is read from the model on a small probe input,
and measured peaks set the factors: on the embedded 4x model (peak RSS above the loaded model,
2-core CPU, 64x64 and 128x128 LR inputs, 1 and 4 samples) the fixed part was 4.8-5.3 and each
sample 0.7-1.1 times the conditioning bytes. The factors below round those up.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache

import torch

from srflow.models.contract import FlowSR

#: Peak bytes per conditioning byte: once per call, and per sample decoded together.
FIXED_FACTOR = 5.5
PER_SAMPLE_FACTOR = 1.2
#: Bytes per HR pixel that every sample of a call holds until the call ends: its float32
#: output; tiled, also its whole-image latents (drawn before the first tile).
OUTPUT_BYTES_PER_HR_PIXEL = 12
TILED_LATENT_BYTES_PER_HR_PIXEL = 12
#: Bytes per HR pixel of the one image being written: clamping, 8-bit conversion and the
#: encoder's copies (the whole-image part of a tiled call measured 120-125 bytes per HR pixel
#: with one sample on the embedded model, docs/performance.md#memory).
WRITE_BYTES_PER_HR_PIXEL = 100
#: Allowance for the allocator and threads above the estimate, within a budget.
SLACK_BYTES = 64 * 2**20
PROBE = 32


@lru_cache(maxsize=8)
def _conditioning_bytes_per_lr_pixel(model: FlowSR) -> float | None:
    parameter = next(model.parameters())
    probe = torch.zeros(1, 3, PROBE, PROBE, device=parameter.device, dtype=parameter.dtype)
    try:
        with torch.no_grad():
            features = model.prepare(probe, keep=False).features
    except (ValueError, RuntimeError):  # a model that cannot take the probe: no estimate
        return None
    size = sum(c.numel() * c.element_size() for c in features)
    return size / PROBE**2


def estimate_bytes(
    model: FlowSR, lr_hw: tuple[int, int], batch: int, *, tile: int | None = None,
    tile_overlap: int = 16, samples: int = 1, scale: int = 4,
) -> int | None:  # fmt: skip
    """Estimated peak bytes above what the process holds of decoding ``batch`` samples
    together (``samples`` in all) of an LR image of ``lr_hw`` and writing them, untiled or with
    ``tile``; ``None`` for models it cannot read."""
    per_pixel = _conditioning_bytes_per_lr_pixel(model)
    if per_pixel is None:
        return None
    h, w = lr_hw
    hr_pixels = h * w * scale**2
    if tile is not None and (h > tile or w > tile):
        window = min(h, tile + 2 * tile_overlap) * min(w, tile + 2 * tile_overlap)
        held = OUTPUT_BYTES_PER_HR_PIXEL + TILED_LATENT_BYTES_PER_HR_PIXEL
        whole = hr_pixels * (held * samples + WRITE_BYTES_PER_HR_PIXEL)
        return int(per_pixel * window * (FIXED_FACTOR + PER_SAMPLE_FACTOR * batch) + whole)
    outputs = hr_pixels * (OUTPUT_BYTES_PER_HR_PIXEL * samples + WRITE_BYTES_PER_HR_PIXEL)
    return int(per_pixel * h * w * (FIXED_FACTOR + PER_SAMPLE_FACTOR * batch) + outputs)


def in_use_bytes(device: torch.device) -> int:
    """Memory the process already holds on ``device`` (model, runtime): the GPU's allocated
    bytes, or the process's resident set on the CPU (its peak so far where that is all the
    system tells)."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) * (1 if sys.platform == "darwin" else 1024)


def available_bytes(device: torch.device) -> int | None:
    """Free memory for ``device`` (the GPU's, or the system's available memory), if known."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_problem(
    model: FlowSR, device: torch.device, lr_hw: tuple[int, int], batch: int, *,
    tile: int | None, tile_overlap: int, samples: int, scale: int,
) -> str | None:  # fmt: skip
    """``None`` when the call fits in the free memory, else one line saying how much it
    needs and what fits instead (a ``--tile`` or ``--batch-size``)."""
    free = available_bytes(device)
    options = dict(tile_overlap=tile_overlap, samples=samples, scale=scale)
    need = estimate_bytes(model, lr_hw, batch, tile=tile, **options)  # type: ignore[arg-type]
    if free is None or need is None or need <= free:
        return None
    gb = 2**30
    where = f"{need / gb:.1f} GB ({free / gb:.1f} GB free on {device.type})"
    for size in (512, 256, 128, 64, 32):
        for n in sorted({batch, 1}, reverse=True):
            fits = estimate_bytes(model, lr_hw, n, tile=size, **options)  # type: ignore[arg-type]
            if fits is not None and fits <= free and size < max(lr_hw):
                extra = f" --batch-size {n}" if n != batch else ""
                return f"needs about {where}: use --tile {size}{extra}"
    return f"needs about {where}, more than fits even with --tile 32 --batch-size 1"


#: Tile sizes (LR pixels) tried, largest first, when the whole image does not fit.
TILE_CHOICES = (512, 256, 128, 64, 32)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(text: str) -> int:
    """``"4G"``, ``"4 GB"``, ``"1.5g"``, ``"800M"``, ``"2GiB"`` or a plain byte count.

    Example:
        >>> parse_bytes("1.5G"), parse_bytes("800 MB"), parse_bytes("4096")
        (1610612736, 838860800, 4096)
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"not a memory size: {text!r} (e.g. 4G, 800M)")
    return int(float(match[1]) * _UNITS[match[2]])


@dataclass(frozen=True)
class MemoryPlan:
    """Samples decoded together and tile size chosen to fit a memory budget."""

    batch: int
    tile: int | None
    estimate: int
    budget: int
    in_use: int = 0

    def describe(self) -> str:
        """``memory budget 4.0 GB: 2 samples at a time, tiles of 128 LR pixels (about
        3.1 GB with the 0.3 GB the model and runtime hold)``."""
        gb = 2**30
        tiles = "untiled" if self.tile is None else f"tiles of {self.tile} LR pixels"
        per = "1 sample" if self.batch == 1 else f"{self.batch} samples"
        total = self.estimate + self.in_use
        return (
            f"memory budget {self.budget / gb:.2f} GB: {per} at a time, {tiles} "
            f"(about {total / gb:.2f} GB with the {self.in_use / gb:.2f} GB the model and "
            "runtime hold)"
        )


class BudgetTooSmall(ValueError):
    """No plan fits a memory budget; the message says the smallest budget that would."""


def plan_memory(
    model: FlowSR, lr_hw: tuple[int, int], budget: int, *, batch: int,
    tile: int | None, tile_overlap: int, samples: int, scale: int,
) -> MemoryPlan | None:  # fmt: skip
    """The plan closest to what was asked (``batch`` samples together, ``tile`` or untiled)
    whose estimate fits ``budget``: fewer samples at a time first (outputs equal up to float
    rounding), then tiles, largest first (tiling changes outputs slightly near tile borders).
    ``None`` when nothing fits, or when the model gives no estimate."""
    options = dict(tile_overlap=tile_overlap, samples=samples, scale=scale)
    tiles = [tile] + [t for t in TILE_CHOICES if t < max(lr_hw) and (tile is None or t < tile)]
    for size in tiles:
        for n in range(batch, 0, -1):
            need = estimate_bytes(model, lr_hw, n, tile=size, **options)  # type: ignore[arg-type]
            if need is None:
                return None
            if need <= budget:
                return MemoryPlan(n, size, need, budget)
    return None


def plan_within(
    model: FlowSR, device: torch.device, lr_hw: tuple[int, int], budget: int, *, batch: int,
    tile: int | None, tile_overlap: int, samples: int, scale: int,
) -> MemoryPlan | None:  # fmt: skip
    """:func:`plan_memory` for a budget of the whole process (or GPU): what the process
    already holds and :data:`SLACK_BYTES` come off first.

    Raises:
        BudgetTooSmall: nothing fits; the message gives the smallest budget that does.
    """
    in_use = in_use_bytes(device)
    options = dict(batch=batch, tile=tile, tile_overlap=tile_overlap, samples=samples,
                   scale=scale)  # fmt: skip
    plan = plan_memory(model, lr_hw, budget - in_use - SLACK_BYTES, **options)  # type: ignore[arg-type]
    if plan is not None:
        return MemoryPlan(plan.batch, plan.tile, plan.estimate, budget, in_use)
    smallest = estimate_bytes(model, lr_hw, 1, tile=min(TILE_CHOICES), tile_overlap=tile_overlap,
                              samples=samples, scale=scale)  # fmt: skip
    if smallest is None:
        return None
    mb = 2**20
    least = -(-(smallest + in_use + SLACK_BYTES) // mb)
    raise BudgetTooSmall(
        f"needs at least about {least}M (the model and runtime hold {in_use // mb}M, and "
        f"--tile {min(TILE_CHOICES)} --batch-size 1 about {-(-smallest // mb)}M more): "
        f"use --max-memory {least}M or more"
    )
