"""Typed, frozen weights of HCFlow's training losses (``train.losses`` of a run config).

The published stages (Liang et al., ICCV 2021; presets ``train_hcflow_*``):

* HCFlow: ``nll: 1`` from scratch.
* HCFlow+: ``nll: 2e-3, l1: 1`` (L1 of the temperature-0 sample, i.e. the predicted means),
  initialised from an HCFlow model.
* HCFlow++: HCFlow+ plus ``feature: 0.05`` (VGG19 conv5_4 L1) and ``gan: 0.5`` (vanilla GAN
  against a VGG-style discriminator), both on a sample at ``sample_temperature``.
* Rescaling: ``nll: 0, lr: 0.05, latent: 1e-5, reconstruction: 1`` (no dequantization).

SRFlow models train with the NLL alone and take the defaults only.
"""

from __future__ import annotations

from dataclasses import dataclass

from srflow.config.loading import ConfigValueError


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (0: the term is not computed).

    Attributes:
        nll: negative log-likelihood, bits per HR pixel (HCFlow's normalisation).
        l1: mean absolute error of the temperature-0 sample against the HR.
        feature: L1 between VGG19 conv5_4 (pre-ReLU) features of a sample and of the HR.
        gan: vanilla GAN generator loss of that sample (a discriminator is trained with it).
        lr: rescaling, MSE between the flow's LR (clamped, before quantization) and the
            bicubic LR.
        latent: rescaling, mean of the squared normalized latents (all levels together).
        reconstruction: rescaling, L1 of the HR decoded from the 8-bit flow LR at
            ``sample_temperature`` against the HR.
        sample_temperature: temperature of the samples of ``feature``, ``gan`` and
            ``reconstruction`` (0.9 DF2K, 0.8 CelebA, 1.0 rescaling).
        vgg19_weights: path of the ImageNet VGG19 weights (torchvision layout, ``.pth`` or
            ``.safetensors``) the feature loss needs.
        discriminator_lr: Adam learning rate of the discriminator (same milestones).
        discriminator_warmup: the model is not updated for this many first steps (only the
            discriminator is), the original's ``D_init_iters``.
    """

    nll: float = 1.0
    l1: float = 0.0
    feature: float = 0.0
    gan: float = 0.0
    lr: float = 0.0
    latent: float = 0.0
    reconstruction: float = 0.0
    sample_temperature: float = 0.9
    vgg19_weights: str | None = None
    discriminator_lr: float = 5e-5
    discriminator_warmup: int = 0

    def validate(self) -> None:
        """Check ranges; raise :class:`ConfigValueError` on a bad value."""
        weights = (self.nll, self.l1, self.feature, self.gan, self.lr, self.latent,
                   self.reconstruction)  # fmt: skip
        if min(weights) < 0 or max(weights) == 0:
            raise ConfigValueError("train.losses: weights >= 0, at least one positive")
        if self.sample_temperature < 0 or self.discriminator_lr <= 0:
            raise ConfigValueError("train.losses: sample_temperature >= 0, discriminator_lr > 0")
        if self.discriminator_warmup < 0:
            raise ConfigValueError("train.losses.discriminator_warmup must be >= 0")
        if self.feature and not self.vgg19_weights:
            raise ConfigValueError(
                "train.losses.feature needs train.losses.vgg19_weights (a VGG19 weights file)"
            )

    @property
    def nll_only(self) -> bool:
        """Only the NLL is weighted (what SRFlow models support)."""
        return not any((self.l1, self.feature, self.gan, self.lr, self.latent,
                        self.reconstruction))  # fmt: skip

    @property
    def needs_samples(self) -> bool:
        """A reverse pass at ``sample_temperature`` is part of the loss."""
        return bool(self.feature or self.gan or self.reconstruction)


def trained_temperature(losses: LossWeights) -> float | None:
    """The temperature a run with these losses decoded its samples at (``None`` when no term
    decodes a sample at ``sample_temperature``)."""
    decodes = losses.feature or losses.gan or losses.reconstruction
    return float(losses.sample_temperature) if decodes else None
