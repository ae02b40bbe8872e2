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
from dataclasses import dataclass
from functools import lru_cache

import torch

from srflow.models.contract import FlowSR

#: Peak bytes per conditioning byte: once per call, and per sample decoded together.
FIXED_FACTOR = 5.5
PER_SAMPLE_FACTOR = 1.2
#: Whole-image latents and output of each sample when tiled (float32, 2 x 3 per HR pixel).
TILED_BYTES_PER_HR_PIXEL = 24
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
    """Estimated peak bytes of decoding ``batch`` samples together (``samples`` in all) of an
    LR image of ``lr_hw``, untiled or with ``tile``; ``None`` for models it cannot read."""
    per_pixel = _conditioning_bytes_per_lr_pixel(model)
    if per_pixel is None:
        return None
    h, w = lr_hw
    if tile is not None and (h > tile or w > tile):
        window = min(h, tile + 2 * tile_overlap) * min(w, tile + 2 * tile_overlap)
        whole = TILED_BYTES_PER_HR_PIXEL * h * w * scale**2 * samples
        return int(per_pixel * window * (FIXED_FACTOR + PER_SAMPLE_FACTOR * batch) + whole)
    return int(per_pixel * h * w * (FIXED_FACTOR + PER_SAMPLE_FACTOR * batch))


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

    def describe(self) -> str:
        """``memory budget 4.0 GB: 2 samples at a time, tiles of 128 LR pixels (about
        3.1 GB)``."""
        gb = 2**30
        tiles = "untiled" if self.tile is None else f"tiles of {self.tile} LR pixels"
        per = "1 sample" if self.batch == 1 else f"{self.batch} samples"
        return (
            f"memory budget {self.budget / gb:.1f} GB: {per} at a time, {tiles} "
            f"(about {self.estimate / gb:.1f} GB)"
        )


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
