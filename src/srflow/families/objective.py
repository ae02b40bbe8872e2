"""A family's training loss, the interface the training loop drives.

Each family's recipe (:meth:`~srflow.families.base.ModelFamily.objective`) gives one
:class:`Objective`: an ``nn.Module`` whose ``forward(hr, lr, noise, stage, *latents)`` is the
per-sample loss (one module, so that DistributedDataParallel can drive it). Random draws come
from per-sample seeds (:func:`per_sample_noise`), so a batch split over ranks sees exactly the
draws of the single-process batch.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from srflow.models.contract import FlowSR


def per_sample_noise(
    shape: tuple[int, ...], seeds: list[int], generator: torch.Generator, device: torch.device,
    kind: str = "uniform",
) -> Tensor:  # fmt: skip
    """``(len(seeds), *shape)`` noise, ``U(0, 1)`` or (``kind="gaussian"``) ``N(0, 1)``;
    row ``i`` comes from ``seeds[i]`` alone."""
    draw = torch.randn if kind == "gaussian" else torch.rand
    out = torch.empty((len(seeds), *shape), device=device)
    for row, seed in zip(out, seeds, strict=True):
        generator.manual_seed(seed)
        row.copy_(draw(shape, generator=generator, device=device))
    return out


class Objective(nn.Module, abc.ABC):
    """``forward(hr, lr, noise, stage, *latents)`` -> per-sample loss ``(B,)``.

    Attributes:
        model: the model being trained.
        sample: the sample the last forward decoded for a GAN term (``None``: none).
    """

    #: The unit of :meth:`nll` (and of the logged loss when it is the NLL alone).
    nll_unit: str = "bits/dim"

    def __init__(self, model: FlowSR) -> None:
        super().__init__()
        self.model = model
        self.sample: Tensor | None = None

    @property
    def loss_is_nll(self) -> bool:
        """The loss is the NLL alone (logged as :attr:`nll_unit`)."""
        return True

    @abc.abstractmethod
    def noise(
        self, shape: tuple[int, ...], seeds: list[int], generator: torch.Generator,
        device: torch.device,
    ) -> Tensor:  # fmt: skip
        """The training noise of a batch (dequantization draws), one row per seed."""

    def draw_latents(self, lr: Tensor, seeds: list[int], generator: torch.Generator) -> list[
        Tensor
    ]:  # fmt: skip
        """Latents of the samples a loss term decodes, one per image from its seed (none)."""
        return []

    @abc.abstractmethod
    def initialize_actnorms(self, hr: Tensor, lr: Tensor, noise: Tensor | None) -> None:
        """The forward pass that Glow's data-dependent ActNorm init runs on."""

    @abc.abstractmethod
    def nll(self, model: FlowSR, hr: Tensor, lr: Tensor, noise: Tensor) -> Tensor:
        """Per-sample NLL of ``model`` (the trained one or its EMA) in :attr:`nll_unit`, with
        the given training noise (validation)."""

    def trained_parameters(self, stage: str, device: torch.device) -> set[str]:
        """Names of the parameters ``stage``'s loss trains (default: every one that requires
        a gradient)."""
        return {name for name, p in self.model.named_parameters() if p.requires_grad}
