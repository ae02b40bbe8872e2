"""Tiled decoding with one latent field for the whole image.

The latents of every sample are drawn for the whole (padded) image first, exactly as untiled
sampling draws them, so the result does not depend on the tile grid. The LR image is cut into
non-overlapping *core* tiles; each is decoded with ``overlap`` LR pixels of context on every
side (latents sliced from the whole-image field, conditioning computed from the window alone
and prepared once for every batch and temperature, so memory is bounded by one window) and
only its core is kept.
Inside a core the output equals untiled decoding up to the effect of the context cut-off
(measured in ``docs/tiling.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from torch import Tensor

from srflow.models.contract import FlowSR


@dataclass(frozen=True)
class Tile:
    """A core region and its context window, in LR pixels (``[start, stop)``)."""

    core_y: tuple[int, int]
    core_x: tuple[int, int]
    win_y: tuple[int, int]
    win_x: tuple[int, int]


def _axis(
    size: int, tile: int, overlap: int, multiple: int
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    tile = max(multiple, tile - tile % multiple)
    overlap = -(-overlap // multiple) * multiple
    spans = []
    for start in range(0, size, tile):
        stop = min(size, start + tile)
        spans.append(((start, stop), (max(0, start - overlap), min(size, stop + overlap))))
    return spans


def plan_tiles(lr_hw: tuple[int, int], tile: int, overlap: int, multiple: int) -> list[Tile]:
    """Tiles covering an LR image of size ``lr_hw`` (already a multiple of ``multiple``)."""
    ys = _axis(lr_hw[0], tile, overlap, multiple)
    xs = _axis(lr_hw[1], tile, overlap, multiple)
    return [Tile(cy, cx, wy, wx) for cy, wy in ys for cx, wx in xs]


def _slice_latent(z: Tensor, win_y: tuple[int, int], win_x: tuple[int, int], lr_h: int) -> Tensor:
    factor = z.shape[2] / lr_h  # latent pixels per LR pixel at this level
    y0, y1 = int(win_y[0] * factor), int(win_y[1] * factor)
    x0, x1 = int(win_x[0] * factor), int(win_x[1] * factor)
    return z[:, :, y0:y1, x0:x1]


def decode_tiled(
    model: FlowSR,
    lr: Tensor,
    groups: Sequence[list[Tensor]],
    tile: int,
    overlap: int,
    noise_level: float | None = None,
) -> Iterator[tuple[Tile, list[Tensor]]]:
    """Yield ``(tile, cores)`` for each tile: ``groups`` are batches of latents (``n_i``
    samples each) of one LR image ``(1, 3, h, w)``, ``cores[i]`` is group ``i``'s
    ``(n_i, 3, core_h * s, core_w * s)``. Each tile's conditioning is prepared once for all
    groups (every batch and temperature)."""
    s = model.config.scale
    for t in plan_tiles((lr.shape[2], lr.shape[3]), tile, overlap, model.config.size_multiple_lr):
        window = lr[:, :, t.win_y[0] : t.win_y[1], t.win_x[0] : t.win_x[1]]
        # one decode: nothing to keep; a noise level is a constant map, the same in every tile
        conditioning = model.prepare(window, len(groups) > 1, noise_level=noise_level)
        oy, ox = (t.core_y[0] - t.win_y[0]) * s, (t.core_x[0] - t.win_x[0]) * s
        h, w = (t.core_y[1] - t.core_y[0]) * s, (t.core_x[1] - t.core_x[0]) * s
        cores = []
        for latents in groups:
            z = [_slice_latent(lat, t.win_y, t.win_x, lr.shape[2]) for lat in latents]
            hr, _ = model.decode(conditioning, z, logdet=False)
            cores.append(hr[:, :, oy : oy + h, ox : ox + w])
        yield t, cores
