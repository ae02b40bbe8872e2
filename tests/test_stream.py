"""Several temperatures decode as one stream of equal batches: the batch shapes are those of
one call with as many samples, and every sample equals its per-temperature decoding."""

from __future__ import annotations

import pytest
import torch

from latent_models import perturbed_tiny, photo
from srflow.inference.pipeline import SuperResolver
from srflow.models.sampling import decode_stream


def test_batches_cross_temperature_boundaries_in_order() -> None:
    batches: list[list[float]] = []

    def draw(index: int, count: int) -> list[torch.Tensor]:
        return [torch.full((count, 1), float(index))]

    def decode(latents: list[torch.Tensor]) -> torch.Tensor:
        batches.append(latents[0][:, 0].tolist())
        return latents[0].view(-1, 1, 1, 1).expand(-1, 3, 2, 2) / 10

    outs = list(decode_stream([10, 10, 10], 4, draw, decode, (2, 2)))
    assert [len(b) for b in batches] == [4] * 7 + [2]  # as 30 samples in one call
    assert batches[2] == [0.0, 0.0, 1.0, 1.0]  # a batch shared by two temperatures
    assert [o.shape[0] for o in outs] == [10, 10, 10]
    assert [float(o.unique()) for o in outs] == pytest.approx([0.0, 0.1, 0.2])  # to its owner


def test_each_temperature_is_yielded_once_its_samples_are_decoded() -> None:
    decoded = 0

    def decode(latents: list[torch.Tensor]) -> torch.Tensor:
        nonlocal decoded
        decoded += latents[0].shape[0]
        return torch.zeros(latents[0].shape[0], 3, 1, 1)

    stream = decode_stream([3, 5], 4, lambda i, n: [torch.zeros(n, 1)], decode, (1, 1))
    assert next(stream).shape[0] == 3 and decoded == 4  # not waiting for the whole stream
    assert next(stream).shape[0] == 5 and decoded == 8
    with pytest.raises(StopIteration):
        next(stream)


def test_streamed_temperatures_equal_separate_calls() -> None:
    model = perturbed_tiny(torch.float32)
    resolver = SuperResolver(model)
    lr = photo("astronaut", 0, 0, 64, torch.float32)[:, ::4, ::4].contiguous()
    together = list(resolver.sample_temperatures(lr, [0.3, 0.6, 0.9], [3, 2, 3], 5, batch_size=4))
    for temperature, out in zip([0.3, 0.6, 0.9], together, strict=True):
        n = out.shape[0]
        alone = next(resolver.sample_temperatures(lr, [temperature], n, 5, batch_size=4))
        torch.testing.assert_close(out, alone, atol=2e-5, rtol=0)  # float32 rounding
