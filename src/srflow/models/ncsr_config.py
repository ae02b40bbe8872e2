"""Typed, frozen configuration of an NCSR model (Kim & Son, CVPRW 2021: SRFlow plus a
noise-conditioned affine in the couplings)."""

from __future__ import annotations

from dataclasses import dataclass

from srflow.config.loading import ConfigValueError
from srflow.models.srflow_config import DequantizationKind, ModelConfig


@dataclass(frozen=True)
class NCSRConfig(ModelConfig):
    """An NCSR model: an SRFlow model whose conditional steps also have a noise-conditioned
    affine (``../spec/ncsr.md``).

    Attributes:
        noise_steps: per flow level, how many of its last conditional steps apply the
            noise-conditioned part (the original's ``S``: 4x ``[0, 16, 16]``, 8x
            ``[0, 0, 16, 16]``); every conditional step has its weights.
        noise_channels: channels of the noise map (3).
        max_noise: training noise: each sample's ``sigma ~ U(0, max_noise)`` (0.05 at 4x,
            0.03 at 8x).
        residual: the flow models the HR minus the bicubic upscale of the LR (FS-NCSR's
            residual form; no published weights use it).
        (the other attributes as :class:`~srflow.models.srflow_config.ModelConfig`; NCSR trains
        without dequantization.)
    """

    dequantization: DequantizationKind = "none"
    noise_steps: tuple[int, ...] = (0, 16, 16)
    noise_channels: int = 3
    max_noise: float = 0.05
    residual: bool = False

    def validate(self) -> None:
        """Check ranges and cross-field constraints."""
        super().validate()
        if len(self.noise_steps) != self.flow.levels:
            raise ConfigValueError(
                f"noise_steps: one value per flow level ({self.flow.levels}), "
                f"got {len(self.noise_steps)}"
            )
        if not all(0 <= s <= self.flow.steps_per_level for s in self.noise_steps):
            raise ConfigValueError(
                f"noise_steps: each in 0..steps_per_level ({self.flow.steps_per_level})"
            )
        if self.noise_channels < 1 or not 0.0 <= self.max_noise <= 1.0:
            raise ConfigValueError("noise_channels >= 1 and max_noise in [0, 1]")

    def applies_noise(self, level: int, step: int) -> bool:
        """Whether conditional step ``step`` (0-based) of ``level`` (1-based) applies the
        noise-conditioned part: the level's last ``noise_steps[level - 1]`` steps."""
        return self.noise_steps[level - 1] >= self.flow.steps_per_level - step
