"""Typed, frozen configuration of an SRFlow-family model (SRFlow, SRFlow-DA).

The dataclasses here are the single source of truth for every structural choice of such a
model. YAML presets (``config/presets/*.yaml``) are loaded strictly into them through the
family registry (:mod:`srflow.families`); checkpoints embed the resolved config so that a
checkpoint rebuilds its own model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from srflow.config.loading import ConfigValueError

#: Coupling sub-network kinds: SRFlow's (bias-free convolutions with ActNorm, 1x1 hidden) and
#: SRFlow-DA's deep convolutional blocks: plain (DA, DA-S), with one long skip (DA-R), or of
#: residual blocks (DA-D).
SubnetKind = Literal["actnorm", "plain", "long_skip", "residual"]
#: Training dequantization: SRFlow's uniform noise (its paper), SRFlow-DA's Gaussian noise, or
#: none (the released SRFlow and NCSR code trains on the 8-bit images as they are).
DequantizationKind = Literal["uniform", "gaussian", "none"]


@dataclass(frozen=True)
class EncoderConfig:
    """RRDB low-resolution encoder (ESRGAN's RRDBNet trunk).

    Attributes:
        features: channels of the trunk (``nf``).
        growth: growth channels inside a residual dense block (``gc``).
        blocks: number of RRDB blocks (``nb``): 23 for DF2K, 8 for CelebA.
        stacked_blocks: 0-based indices of RRDB blocks whose outputs are concatenated to every
            conditioning feature (SRFlow's ``stackRRDB.blocks``).
    """

    features: int = 64
    growth: int = 32
    blocks: int = 23
    stacked_blocks: tuple[int, ...] = (1, 8, 15, 22)

    @property
    def cond_channels(self) -> int:
        """Channels of each conditioning tensor: trunk features plus the stacked blocks."""
        return self.features * (1 + len(self.stacked_blocks))

    def validate(self) -> None:
        """Check ranges; raise :class:`ConfigValueError` on a bad value."""
        if self.features < 1 or self.growth < 1 or self.blocks < 1:
            raise ConfigValueError("encoder: features, growth and blocks must be positive")
        bad = [b for b in self.stacked_blocks if not 0 <= b < self.blocks]
        if bad:
            raise ConfigValueError(
                f"encoder.stacked_blocks: {bad} out of range for {self.blocks} blocks"
            )


@dataclass(frozen=True)
class FlowConfig:
    """Multi-level conditional Glow (SRFlow's ``FlowUpsamplerNet``).

    Attributes:
        levels: number of levels ``L`` (3 for 4x, 4 for 8x).
        steps_per_level: conditional flow steps ``K`` per level.
        transitional_steps: unconditional steps (ActNorm + 1x1 conv) right after each squeeze.
        split_levels: levels (1-based) after which half of the channels are factored out.
            SRFlow splits at every level ``l < L - 1``, SRFlow-DA at every ``l < L``.
        hidden_channels: width of the coupling and injector sub-networks.
        affine_eps: added to the sigmoid scale of the affine layers.
        subnet: kind of the coupling and injector sub-networks (:data:`SubnetKind`):
            ``actnorm`` (SRFlow), ``plain`` (SRFlow-DA, DA-S), ``long_skip`` (DA-R),
            ``residual`` (DA-D).
        subnet_depth: hidden convolutions between the first and the zero-initialized last
            convolution (SRFlow 1, SRFlow-DA 4, DA-D 36 in 18 residual blocks of two).
        subnet_kernel: kernel size of the hidden convolutions (SRFlow 1, SRFlow-DA 3).
        squeeze_factor: space-to-depth factor at the start of each level (2; SRFlow-DA-S uses
            one level that squeezes by the whole scale).
        split_after_steps: 0-based conditional-step indices within every level after which
            half of the channels are factored out (SRFlow-DA-S: after steps 0, 6, 12).
    """

    levels: int = 3
    steps_per_level: int = 16
    transitional_steps: int = 2
    split_levels: tuple[int, ...] = (1,)
    hidden_channels: int = 64
    affine_eps: float = 1e-4
    subnet: SubnetKind = "actnorm"
    subnet_depth: int = 1
    subnet_kernel: int = 1
    squeeze_factor: int = 2
    split_after_steps: tuple[int, ...] = ()

    def validate(self) -> None:
        """Check ranges; raise :class:`ConfigValueError` on a bad value."""
        if self.levels < 1 or self.steps_per_level < 0 or self.transitional_steps < 0:
            raise ConfigValueError("flow: levels >= 1, steps and transitional steps >= 0")
        bad = [s for s in self.split_levels if not 1 <= s < self.levels]
        if bad:
            raise ConfigValueError(f"flow.split_levels: {bad} must lie in 1..levels-1")
        bad = [s for s in self.split_after_steps if not 0 <= s < self.steps_per_level - 1]
        if bad:
            raise ConfigValueError(
                f"flow.split_after_steps: {bad} must lie in 0..steps_per_level-2"
            )
        if self.hidden_channels < 1 or self.subnet_depth < 0:
            raise ConfigValueError("flow: hidden_channels >= 1 and subnet_depth >= 0")
        if self.subnet_kernel < 1 or self.subnet_kernel % 2 == 0:
            raise ConfigValueError(f"flow.subnet_kernel must be odd, got {self.subnet_kernel}")
        if self.subnet == "residual" and self.subnet_depth % 2:
            raise ConfigValueError("flow.subnet_depth of a residual subnet must be even")
        if self.squeeze_factor < 2 or self.squeeze_factor & (self.squeeze_factor - 1):
            raise ConfigValueError(
                f"flow.squeeze_factor must be a power of two >= 2, got {self.squeeze_factor}"
            )


@dataclass(frozen=True)
class ModelConfig:
    """A whole model of the SRFlow family (SRFlow and SRFlow-DA).

    Attributes:
        scale: super-resolution factor (a power of two).
        encoder: the RRDB encoder.
        flow: the conditional flow.
        dequantization_bins: ``quant`` of the original: uniform dequantization noise of width
            ``1 / dequantization_bins`` during training (32 in every published config).
        dequantization: the training noise added to the HR: ``uniform`` (SRFlow's paper:
            ``U(-0.5, 0.5) / bins`` and a ``-ln(bins)`` log-det per pixel), ``gaussian``
            (SRFlow-DA: ``N(0, sigma^2)`` with ``sigma = (4 / sqrt(3)) / 255`` and no log-det
            term) or ``none`` (what SRFlow's released training code does: its
            ``optimize_parameters`` never passes ``add_gt_noise``; NCSR likewise).
    """

    scale: int = 4
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    dequantization_bins: int = 32
    dequantization: DequantizationKind = "uniform"

    def validate(self) -> None:
        """Check ranges and cross-field constraints."""
        self.encoder.validate()
        self.flow.validate()
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise ConfigValueError(f"scale must be a power of two >= 2, got {self.scale}")
        for level in range(1, self.flow.levels + 1):
            if self.level_feature_factor(level) < 0.5:
                raise ConfigValueError(
                    f"flow.levels={self.flow.levels} is too deep for scale {self.scale}: "
                    "the coarsest level would be below half the LR size"
                )

    def level_feature_factor(self, level: int) -> float:
        """Size of level ``level``'s conditioning relative to the LR input (0.5, 1, 2, ...)."""
        return self.scale / self.flow.squeeze_factor**level

    @property
    def size_multiple_lr(self) -> int:
        """LR height and width must be multiples of this number."""
        return max(1, math.ceil(self.flow.squeeze_factor**self.flow.levels / self.scale))
