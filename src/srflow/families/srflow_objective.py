"""SRFlow's and SRFlow-DA's training losses (one :class:`~srflow.families.objective.Objective`).

NLL: the original's dequantization, SRFlow's uniform ``hr + (u - 0.5) / bins`` with
``u ~ U(0, 1)`` or SRFlow-DA's Gaussian ``hr + n * sigma`` with ``n ~ N(0, 1)``
(``model.config.dequantization``), but with the noise drawn *per sample* from a generator
seeded by the sample's own seed, so a batch split over ranks sees exactly the noise of the
single-process batch. The value equals ``model.nll_bits_per_dim(hr, lr, dequantize=True,
generator=g)`` when the noise is ``torch.rand`` / ``torch.randn(hr.shape, generator=g)`` (the
uniform correction ``+ log2(bins)`` bits per dimension is what ``dequantize=True`` adds).

L1 pre-training: mean absolute error of the encoder's own SR output
(``model.encoder.super_resolve``) against HR, as the RRDB was pre-trained in the original.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from srflow.families.objective import Objective, per_sample_noise
from srflow.models.srflow import GAUSSIAN_DEQUANTIZATION_SIGMA, SRFlow


def dequantized(model: SRFlow, hr: Tensor, draws: Tensor) -> tuple[Tensor, float]:
    """``hr`` with the model's training dequantization made of ``draws`` (``U(0, 1)`` for
    uniform, ``N(0, 1)`` for Gaussian, unused for none: :func:`per_sample_noise`), and the
    bits per dimension its discretization adds to the NLL (uniform: ``log2(bins)``)."""
    kind = model.config.dequantization
    if kind == "none":
        return hr, 0.0
    if kind == "gaussian":
        return hr + draws * GAUSSIAN_DEQUANTIZATION_SIGMA, 0.0
    bins = model.config.dequantization_bins
    return hr + (draws - 0.5) / bins, math.log2(bins)


def dequantized_nll(model: SRFlow, hr: Tensor, lr: Tensor, noise: Tensor) -> Tensor:
    """Per-sample NLL in bits/dim of ``hr`` dequantized with the given draws
    (:func:`dequantized`)."""
    hr, correction = dequantized(model, hr, noise)
    return model.nll_bits_per_dim(hr, lr, dequantize=False) + correction


def l1_loss(model: SRFlow, hr: Tensor, lr: Tensor) -> Tensor:
    """Per-sample mean absolute error of the encoder's SR output."""
    return (model.encoder.super_resolve(lr) - hr).abs().mean(dim=(1, 2, 3))


class SRFlowObjective(Objective):
    """``forward(hr, lr, noise, stage)`` -> per-sample loss ``(B,)``: ``l1`` (the encoder's own
    SR output, pre-training) or ``nll`` (bits per dimension)."""

    model: SRFlow

    def noise(
        self, shape: tuple[int, ...], seeds: list[int], generator: torch.Generator,
        device: torch.device,
    ) -> Tensor:  # fmt: skip
        """Dequantization draws: ``U(0, 1)`` (SRFlow) or ``N(0, 1)`` (SRFlow-DA); zeros without
        dequantization (nothing is drawn)."""
        kind = self.model.config.dequantization
        if kind == "none":
            return torch.zeros((len(seeds), *shape), device=device)
        return per_sample_noise(shape, seeds, generator, device, kind)

    def initialize_actnorms(self, hr: Tensor, lr: Tensor, noise: Tensor | None) -> None:
        """The forward pass that data-dependent ActNorm init runs on."""
        assert noise is not None
        dequantized_nll(self.model, hr, lr, noise)

    def nll(self, model: SRFlow, hr: Tensor, lr: Tensor, noise: Tensor) -> Tensor:  # type: ignore[override]
        """Bits per dimension of ``hr`` dequantized with ``noise``."""
        return dequantized_nll(model, hr, lr, noise)

    def trained_parameters(self, stage: str, device: torch.device) -> set[str]:
        """The parameters that receive a gradient from ``stage``'s loss."""
        return parameters_used_by(self, stage, device)

    def forward(
        self, hr: Tensor, lr: Tensor, noise: Tensor | None, stage: str, *latents: Tensor
    ) -> Tensor:
        if stage == "l1":
            return l1_loss(self.model, hr, lr)
        assert noise is not None
        return dequantized_nll(self.model, hr, lr, noise)


def parameters_used_by(objective: SRFlowObjective, stage: str, device: torch.device) -> set[str]:
    """Names of the parameters that receive a gradient from ``stage``'s loss.

    Found with one backward pass on the smallest valid input; the model is left unchanged
    (gradients reset to ``None``, ``requires_grad`` restored).
    """
    model = objective.model
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(True)
    side = model.config.size_multiple_lr
    hr_side = side * model.config.scale
    lr = torch.full((1, 3, side, side), 0.5, device=device)
    hr = torch.full((1, 3, hr_side, hr_side), 0.5, device=device)
    objective(hr, lr, torch.full_like(hr, 0.5), stage).sum().backward()
    used = {name for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    for name, p in model.named_parameters():
        p.requires_grad_(flags[name])
    return used
