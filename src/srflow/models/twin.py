"""The sampling twin's base: a faster sampler that shares a model's weights."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from srflow.models.contract import Capabilities, Conditioning, FlowSR
from srflow.models.temperature import Temperature


class SamplingTwin:
    """A faster sampler with a model's weights: the model's structure, latents and
    conditioning, its own decode (without gradients and log-dets). A family that has one
    subclasses it and returns it from :meth:`FlowSR.sampling_twin`.

    Args:
        model: the model whose weights the twin uses (not copied).
    """

    def __init__(self, model: FlowSR) -> None:
        self.model = model

    @property
    def config(self) -> Any:
        """The model's configuration."""
        return self.model.config

    @property
    def capabilities(self) -> Capabilities:
        """The model's capabilities."""
        return self.model.capabilities

    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        """As :meth:`FlowSR.latent_shapes`."""
        return self.model.latent_shapes(lr, n)

    def sample_latents(
        self, shapes: list[tuple[int, ...]], temperature: Temperature,
        generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> list[Tensor]:  # fmt: skip
        """As :meth:`FlowSR.sample_latents`."""
        return self.model.sample_latents(shapes, temperature, generator, dtype=dtype,
                                         device=device)  # fmt: skip

    def prepare(
        self, lr: Tensor, keep: bool = True, *, noise_level: float | None = None
    ) -> Conditioning:
        """As :meth:`FlowSR.prepare` (the twin fills :attr:`Conditioning.cache`)."""
        return self.model.prepare(lr, keep, noise_level=noise_level)

    def decode(
        self, conditioning: Conditioning | Tensor, latents: list[Tensor], *, logdet: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """As :meth:`FlowSR.decode`: with ``logdet=False`` (sampling) ``(hr, None)``, the image
        the model decodes to float rounding, computed the twin's faster way."""
        return self.model.decode(conditioning, latents, logdet=logdet)

    def consistency_lr(self, hr: Tensor) -> Tensor:
        """As :meth:`FlowSR.consistency_lr`."""
        return self.model.consistency_lr(hr)

    def sampling_twin(self) -> SamplingTwin:
        """The twin itself."""
        return self
