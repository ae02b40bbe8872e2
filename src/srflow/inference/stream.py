"""Decode the samples of several temperatures as one stream of equal batches.

Temperature only scales the drawn latents, so the samples of consecutive temperatures can
share a batch: 3 temperatures x 10 samples in batches of 4 decode as 4, 4, ..., 4, 2, exactly
like 30 samples of one temperature, instead of 4, 4, 2 three times. Measured on a 2-core CPU
(benchmarks/RESULTS.md, SRFlow DF2K 4x, 64x64): 3 x 10 samples took 1.21x the time of 30 in
one call when decoded per temperature, 0.84x as one stream (the cause of the gap, kernel
setup per batch shape or the reused heap of :mod:`srflow.inference.allocator`, was not
isolated). Latents are drawn per temperature, sample by sample,
as before: the samples equal per-temperature batches up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

#: ``draw(temperature index, count)``: the latents (one tensor per level) of the next ``count``
#: samples of that temperature.
DrawFn = Callable[[int, int], list[Tensor]]
#: ``decode(latents)``: the ``(B, 3, H', W')`` images of a batch of latents.
DecodeFn = Callable[[list[Tensor]], Tensor]


@dataclass
class _Pending:
    """The drawn latents of the next batch and, per part, (temperature index, first sample)."""

    parts: list[list[Tensor]] = field(default_factory=list)
    owners: list[tuple[int, int, int]] = field(default_factory=list)  # (index, start, count)

    def size(self) -> int:
        return sum(count for *_, count in self.owners)


def decode_stream(
    counts: Sequence[int],
    batch: int,
    draw: DrawFn,
    decode: DecodeFn,
    size: tuple[int, int],
    on_batch: Callable[[int, Tensor, int], None] | None = None,
) -> Iterator[Tensor]:
    """Yield one ``(counts[i], 3, *size)`` CPU float tensor per temperature, in order.

    Batches hold ``batch`` samples (the last one fewer) across temperature boundaries; each
    decoded image is cropped to ``size`` and clamped to [0, 1]. ``on_batch(index, images,
    count)`` sees every temperature's part of a batch before clamping (divergence counts,
    progress).
    """
    outs: dict[int, Tensor] = {}
    filled = [0] * len(counts)
    pending, done = _Pending(), 0
    for index, n in enumerate(counts):
        outs[index] = torch.empty(n, 3, *size)
        start = 0
        while start < n:
            take = min(batch - pending.size(), n - start)
            pending.parts.append(draw(index, take))
            pending.owners.append((index, start, take))
            start += take
            last = index == len(counts) - 1 and start == n
            if pending.size() < batch and not last:
                continue
            latents = [torch.cat(level) for level in zip(*pending.parts, strict=True)]
            images = decode(latents)[:, :, : size[0], : size[1]]
            row = 0
            for owner, first, count in pending.owners:
                part = images[row : row + count]
                if on_batch is not None:
                    on_batch(owner, part, count)
                outs[owner][first : first + count].copy_(part.clamp(0, 1))
                filled[owner] += count
                row += count
            pending = _Pending()
            while done < len(counts) and filled[done] == counts[done]:
                yield outs.pop(done)
                done += 1
