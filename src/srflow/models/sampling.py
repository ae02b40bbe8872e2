"""The one sampling loop of every family: draw latents sample by sample, decode in batches.

Latents are drawn one sample at a time (all the images of a batch together, in the family's
drawing order), so a generator state gives the same samples whatever the batch size. The
samples of several temperatures decode as one stream of equal batches: temperature only
scales the drawn latents, so 3 temperatures x 10 samples in batches of 4 decode as 4, 4, ...,
4, 2 like 30 samples of one temperature, instead of 4, 4, 2 three times (measured on a 2-core
CPU, SRFlow DF2K 4x, 64x64: 3 x 10 samples took 1.21x the time of 30 in one call decoded per
temperature, 0.84x as one stream; benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from srflow.divergence import count_diverged, warn_diverged
from srflow.flows.distributions import sample_normal
from srflow.metrics.lr_check import check_lr_consistency

if TYPE_CHECKING:
    from srflow.models.contract import FlowSR
    from srflow.models.temperature import Temperature

#: ``draw(temperature index, count)``: the latents (one tensor per level) of the next ``count``
#: samples of that temperature.
DrawFn = Callable[[int, int], list[Tensor]]
#: ``decode(latents)``: the ``(rows, 3, H', W')`` images of a batch of latents.
DecodeFn = Callable[[list[Tensor]], Tensor]


def sample_latents(
    shapes: Sequence[tuple[int, ...]], temperatures: Sequence[float], order: Sequence[int],
    generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> list[Tensor]:  # fmt: skip
    """Latents ``N(0, T_i^2)`` of ``shapes`` (encode order), drawn in ``order``."""
    drawn = {
        i: sample_normal(shapes[i], temperatures[i], generator=generator, dtype=dtype,
                         device=device)
        for i in order
    }  # fmt: skip
    return [drawn[i] for i in range(len(shapes))]


def draw_latents(
    model: FlowSR, shapes: list[tuple[int, ...]], count: int, temperature: Temperature,
    generator: torch.Generator | None, *, dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> list[Tensor]:  # fmt: skip
    """The latents of ``count`` samples (``shapes``: one sample of each image), drawn sample by
    sample on the generator's device into preallocated tensors, sample-major, then moved."""
    b = shapes[0][0]
    latents = [torch.empty((count * b, *shape[1:]), dtype=dtype) for shape in shapes]
    for j in range(count):
        draw = model.sample_latents(shapes, temperature, generator, dtype=dtype)
        for z, d in zip(latents, draw, strict=True):
            z[j * b : (j + 1) * b] = d
    return [z.to(device) for z in latents]


@dataclass
class _Pending:
    """The drawn latents of the next batch and, per part, (temperature index, first sample,
    count)."""

    parts: list[list[Tensor]] = field(default_factory=list)
    owners: list[tuple[int, int, int]] = field(default_factory=list)

    def size(self) -> int:
        return sum(count for *_, count in self.owners)


def decode_stream(
    counts: Sequence[int],
    batch: int,
    draw: DrawFn,
    decode: DecodeFn,
    size: tuple[int, int],
    on_batch: Callable[[int, Tensor, int], None] | None = None,
    *,
    images_per_sample: int = 1,
    out_device: torch.device | str = "cpu",
    out_dtype: torch.dtype = torch.float32,
) -> Iterator[Tensor]:
    """Yield one ``(counts[i] * images_per_sample, 3, *size)`` tensor per temperature, in order
    (sample-major: the images of sample 0, then of sample 1, ...).

    Batches hold ``batch`` samples (the last one fewer) across temperature boundaries; each
    decoded image is cropped to ``size`` and clamped to [0, 1]. ``on_batch(index, images,
    count)`` sees every temperature's part of a batch before clamping (divergence counts,
    progress).
    """
    b = images_per_sample
    outs: dict[int, Tensor] = {}
    filled = [0] * len(counts)
    pending, done = _Pending(), 0
    for index, n in enumerate(counts):
        outs[index] = torch.empty(n * b, 3, *size, device=out_device, dtype=out_dtype)
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
                part = images[row : row + count * b]
                if on_batch is not None:
                    on_batch(owner, part, count)
                outs[owner][first * b : (first + count) * b].copy_(part.clamp(0, 1))
                filled[owner] += count
                row += count * b
            pending = _Pending()
            while done < len(counts) and filled[done] == counts[done]:
                yield outs.pop(done)
                done += 1


def sample(
    model: FlowSR, lr: Tensor, temperature: Temperature, n: int,
    generator: torch.Generator | None, batch_size: int | None, noise_level: float | None = None,
) -> Tensor:  # fmt: skip
    """:meth:`FlowSR.sample` (``model`` is the sampling twin): ``(n, B, 3, H, W)``."""
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    b, s = lr.shape[0], model.config.scale
    batch = max(1, batch_size or n)
    conditioning = model.prepare(lr, n > batch, noise_level=noise_level)
    shapes = model.latent_shapes(lr)
    diverged: list[int] = []  # per image, in the order the batches are decoded

    def draw(_: int, count: int) -> list[Tensor]:
        return draw_latents(model, shapes, count, temperature, generator, dtype=lr.dtype,
                            device=lr.device)  # fmt: skip

    def seen(_: int, images: Tensor, count: int) -> None:
        diverged.extend(count_diverged(images))

    out = next(decode_stream(
        [n], batch, draw, lambda z: model.decode(conditioning, z, logdet=False)[0],
        (lr.shape[2] * s, lr.shape[3] * s), seen, images_per_sample=b, out_device=lr.device,
        out_dtype=lr.dtype,
    ))  # fmt: skip
    if any(diverged):
        warn_diverged(tuple(diverged), out[0].numel(), temperature)
    check_lr_consistency(out, lr.repeat(n, 1, 1, 1), model.consistency_lr, temperature)
    return out.view(n, b, *out.shape[1:])
