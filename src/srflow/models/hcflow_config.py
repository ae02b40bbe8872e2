"""Typed, frozen configuration of an HCFlow model (Liang et al., ICCV 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from srflow.config.loading import ConfigValueError


@dataclass(frozen=True)
class HCFlowConfig:
    """An HCFlow model: the HR -> LR trunk and one conditional flow per level.

    Attributes:
        levels: ``L``; the scale is ``2 ** levels``.
        trunk_steps: flow steps per trunk level (``K - after_flowstep`` of the original).
        conditional_steps: conditional flow steps per level (``after_flowstep``).
        rrdb_blocks: RRDBs of each level's two feature trunks (``RRDB_nb``).
        rrdb_growth: their dense-block growth (``RRDB_gc``).
        hidden_channels: width of the couplings' FCN sub-networks.
        task: ``sr`` (diverse super-resolution: 1x1 convolutions, features ``[u1, u2]``,
            Gaussian priors) or ``rescale`` (image rescaling: Haar squeeze, low-pass
            couplings with dense blocks, features ``u2``, bounded prior log-std).
        dense_growth: growth of the rescaling trunk's dense blocks.
        dequantization_bins: ``quant``: one-sided uniform noise ``U(0, 1) / bins`` (SR).
        lr_log_std: log standard deviation of the Gaussian that stands in for the Dirac LR
            term (``-6``).
    """

    levels: int = 2
    trunk_steps: int = 13
    conditional_steps: int = 13
    rrdb_blocks: tuple[int, int] = (7, 7)
    rrdb_growth: int = 32
    hidden_channels: int = 64
    task: Literal["sr", "rescale"] = "sr"
    dense_growth: int = 32
    dequantization_bins: int = 64
    lr_log_std: float = -6.0

    @property
    def scale(self) -> int:
        """The super-resolution (or downscaling) factor."""
        return 2**self.levels

    @property
    def size_multiple_lr(self) -> int:
        """LR height and width must be multiples of this number (any size works)."""
        return 1

    def validate(self) -> None:
        """Check ranges; raise :class:`ConfigValueError` on a bad value."""
        if self.levels < 1 or self.trunk_steps < 0 or self.conditional_steps < 0:
            raise ConfigValueError("hcflow: levels >= 1, steps >= 0")
        if min(self.rrdb_blocks) < 0 or self.rrdb_growth < 1 or self.hidden_channels < 1:
            raise ConfigValueError("hcflow: rrdb_blocks >= 0, rrdb_growth/hidden_channels >= 1")
