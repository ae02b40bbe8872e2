"""HCFlow's training losses (one :class:`~srflow.families.objective.Objective`).

``forward(hr, lr, noise, stage, *latents)`` returns the per-sample weighted sum of the terms
of :class:`~srflow.config.losses.LossWeights` (the GAN's generator term is added by the loop,
which owns the discriminator: :mod:`srflow.train.adversarial`):

* NLL in bits per HR pixel of ``hr + noise / bins`` (one-sided uniform dequantization),
  with the Dirac LR term through a straight-through 8-bit quantization.
* L1 of the temperature-0 sample (the predicted means) against the HR (HCFlow+).
* VGG19 feature L1 of a sample at ``sample_temperature`` (HCFlow++); the sample is kept in
  :attr:`HCFlowObjective.sample` for the GAN.
* Rescaling: MSE of the clamped flow LR against the bicubic LR, the mean squared latent,
  and L1 of the HR decoded from the quantized flow LR at ``sample_temperature``.

We sum the weighted terms into one optimizer step; the original takes one Adam step per
group of terms (NLL, then L1, then feature + GAN) within an iteration, with the same
weights (docs/training.md).

The latents of the samples come from per-sample seeds (:meth:`HCFlowObjective.draw_latents`),
so a batch split over ranks sees the latents of the single-process batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srflow.config.losses import LossWeights
from srflow.data.transforms import quantize_8bit
from srflow.families.objective import Objective, per_sample_noise
from srflow.models.hcflow import HCFlow

LATENT_SEED_OFFSET = 0x5EED  # latents use seed + offset, dequantization noise the seed


class HCFlowObjective(Objective):
    """HCFlow's weighted training loss (see the module docstring).

    Args:
        model: the HCFlow being trained.
        losses: the weights.
        feature_loss: ``(sample, hr) -> (B,)`` VGG19 feature distance (needed when
            ``losses.feature > 0``).
    """

    model: HCFlow
    nll_unit = "bits/pixel"

    def __init__(
        self, model: HCFlow, losses: LossWeights, feature_loss: nn.Module | None = None
    ) -> None:
        super().__init__(model)
        if losses.feature and feature_loss is None:
            raise ValueError("the feature loss needs a VGG19 feature network")
        self.losses, self.feature_loss = losses, feature_loss

    @property
    def loss_is_nll(self) -> bool:
        """Only the NLL term is weighted (then the loss is logged as bits per HR pixel)."""
        return self.losses.nll_only

    def noise(
        self, shape: tuple[int, ...], seeds: list[int], generator: torch.Generator,
        device: torch.device,
    ) -> Tensor:  # fmt: skip
        """One-sided uniform dequantization draws ``U(0, 1)``."""
        return per_sample_noise(shape, seeds, generator, device, "uniform")

    def nll(self, model: HCFlow, hr: Tensor, lr: Tensor, noise: Tensor) -> Tensor:  # type: ignore[override]
        """Bits per HR pixel (HCFlow's own unit) of ``hr`` dequantized with ``noise``."""
        return model.encode(hr, lr, noise=noise).nll

    def draw_latents(
        self, lr: Tensor, seeds: list[int], generator: torch.Generator
    ) -> list[Tensor]:
        """Unit-normal latents (finest first) of one sample per image, from each image's seed
        (drawn coarsest level first); empty when no loss term samples."""
        if not self.losses.needs_samples:
            return []
        shapes = [shape[1:] for shape in self.model.latent_shapes(lr[:1])]
        latents = [lr.new_empty((len(seeds), *shape)) for shape in shapes]
        for row, seed in enumerate(seeds):
            generator.manual_seed(seed + LATENT_SEED_OFFSET)
            for z, shape in zip(reversed(latents), reversed(shapes), strict=True):
                z[row] = torch.randn(shape, generator=generator, device=lr.device)
        return latents

    def initialize_actnorms(self, hr: Tensor, lr: Tensor, noise: Tensor | None) -> None:
        """The forward pass that data-dependent ActNorm init runs on (encode of the batch)."""
        self.model.encode(hr, lr, noise=noise if self.losses.nll else None)

    def forward(
        self, hr: Tensor, lr: Tensor, noise: Tensor | None, stage: str, *latents: Tensor
    ) -> Tensor:
        w, model = self.losses, self.model
        total = hr.new_zeros(hr.shape[0])
        self.sample = None
        y = None
        if w.nll or w.lr or w.latent or w.reconstruction:
            enc = model.encode(hr, lr, noise=noise if w.nll else None)
            y = enc.y
            if w.nll:
                total = total + w.nll * enc.nll
            if w.lr:
                total = total + w.lr * (y.clamp(0, 1) - lr).pow(2).mean(dim=(1, 2, 3))
            if w.latent:
                z = torch.cat([part.flatten(1) for part in enc.latents], dim=1)
                total = total + w.latent * z.pow(2).mean(dim=1)
        if w.l1:
            means = [torch.zeros_like(z) for z in latents] or [
                hr.new_zeros(shape) for shape in model.latent_shapes(lr)
            ]
            hr_mean = model.decode(lr, means)[0].clamp(0, 1)
            total = total + w.l1 * (hr_mean - hr).abs().mean(dim=(1, 2, 3))
        t = w.sample_temperature
        if w.reconstruction:
            assert y is not None
            recon = model.decode(quantize_8bit(y), [z * t for z in latents])[0].clamp(0, 1)
            total = total + w.reconstruction * (recon - hr).abs().mean(dim=(1, 2, 3))
        if w.feature or w.gan:
            self.sample = model.decode(lr, [z * t for z in latents])[0].clamp(0, 1)
            if w.feature:
                assert self.feature_loss is not None
                total = total + w.feature * self.feature_loss(self.sample, hr)
        return total
