"""Typed, frozen configuration schemas.

The dataclasses here are the single source of truth for every structural choice of a model.
YAML presets (``config/presets/*.yaml``) are loaded strictly into them by
:mod:`srflow.config.loading`; checkpoints embed the resolved config so that a checkpoint
rebuilds its own model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class ConfigValueError(ValueError):
    """A config value is out of its valid range."""


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
            The published models split at every level ``l < L - 1``.
        hidden_channels: width of the coupling and injector sub-networks.
        affine_eps: added to the sigmoid scale of the affine layers.
    """

    levels: int = 3
    steps_per_level: int = 16
    transitional_steps: int = 2
    split_levels: tuple[int, ...] = (1,)
    hidden_channels: int = 64
    affine_eps: float = 1e-4

    def validate(self) -> None:
        """Check ranges; raise :class:`ConfigValueError` on a bad value."""
        if self.levels < 1 or self.steps_per_level < 0 or self.transitional_steps < 0:
            raise ConfigValueError("flow: levels >= 1, steps and transitional steps >= 0")
        bad = [s for s in self.split_levels if not 1 <= s < self.levels]
        if bad:
            raise ConfigValueError(f"flow.split_levels: {bad} must lie in 1..levels-1")


@dataclass(frozen=True)
class ModelConfig:
    """A whole SRFlow model.

    Attributes:
        scale: super-resolution factor (a power of two).
        encoder: the RRDB encoder.
        flow: the conditional flow.
        dequantization_bins: ``quant`` of the original: uniform dequantization noise of width
            ``1 / dequantization_bins`` during training (32 in every published config).
    """

    scale: int = 4
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    dequantization_bins: int = 32

    def validate(self) -> None:
        """Check ranges and cross-field constraints."""
        self.encoder.validate()
        self.flow.validate()
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise ConfigValueError(f"scale must be a power of two >= 2, got {self.scale}")
        for level in range(1, self.flow.levels + 1):
            if self.scale / 2**level < 0.5:
                raise ConfigValueError(
                    f"flow.levels={self.flow.levels} is too deep for scale {self.scale}: "
                    "the coarsest level would be below half the LR size"
                )

    def level_feature_factor(self, level: int) -> float:
        """Size of level ``level``'s conditioning relative to the LR input (0.5, 1, 2, ...)."""
        return self.scale / 2**level

    @property
    def size_multiple_lr(self) -> int:
        """LR height and width must be multiples of this number."""
        return max(1, math.ceil(2**self.flow.levels / self.scale))
