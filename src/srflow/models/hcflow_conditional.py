"""HCFlow's per-level conditional flows (Liang et al., ICCV 2021, Sec. 3.2).

Each level's high-frequency part ``a`` is modelled given a conditioning image ``u`` (the LR at
the coarsest level; at finer levels the trunk's kept channels with the nearest-upsampled
features of every coarser level): an RRDB feature extractor, a few conditional flow steps on
``a`` (ActNorm -> 1x1 conv -> bounded affine coupling that also sees the features), then a
diagonal Gaussian whose mean and scale a zero-initialized convolution predicts from the
features. The latent is the normalized ``eps = (a' - mean) * exp(-log_std)``, so that a
temperature scales the noise around the *predicted* mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srflow.encoders.rrdb import RRDB
from srflow.flows.bounded_coupling import BoundedAffineCoupling, bounded_log_scale
from srflow.flows.distributions import gaussian_log_prob
from srflow.flows.nets import ActNormSubnet, SubnetSpec, ZeroConv2d
from srflow.models.hcflow_trunk import TrunkStep


class ConditionalFeatures(nn.Module):
    """``conv_first`` -> ``trunk0`` (RRDBs) = ``u1`` -> ``trunk1`` (RRDBs) -> ``trunk_conv``,
    plus the ``conv_first`` output = ``u2``; the features are ``[u1, u2]`` (SR, 128 channels
    at width 64) or ``u2`` alone (rescaling)."""

    def __init__(
        self, in_channels: int, blocks: tuple[int, int], growth: int, both: bool,
        width: int = 64,
    ) -> None:  # fmt: skip
        super().__init__()
        self.both = both
        self.conv_first = nn.Conv2d(in_channels, width, 3, padding=1)
        self.trunk0 = nn.Sequential(*(RRDB(width, growth) for _ in range(blocks[0])))
        self.trunk1 = nn.Sequential(*(RRDB(width, growth) for _ in range(blocks[1])))
        self.trunk_conv = nn.Conv2d(width, width, 3, padding=1)
        self.channels = width * (2 if both else 1)

    def forward(self, u: Tensor) -> Tensor:
        first = self.conv_first(u)
        u1 = self.trunk0(first)
        u2 = self.trunk_conv(self.trunk1(u1)) + first
        return torch.cat([u1, u2], dim=1) if self.both else u2


@dataclass(frozen=True)
class LevelEncoding:
    """One level's conditional-flow outputs (encode direction).

    Attributes:
        eps: the normalized latent ``(a' - mean) * exp(-log_std)``.
        transformed: ``a'``, the part after the conditional steps.
        mean: predicted mean of ``a'``; log_std: its predicted log standard deviation.
        features: the conditioning features (for the finer levels).
        logdet: ``(B,)`` log-det of the conditional steps.
        log_prob: ``(B,)`` log-density of ``a'`` under the predicted Gaussian.
    """

    eps: Tensor
    transformed: Tensor
    mean: Tensor
    log_std: Tensor
    features: Tensor
    logdet: Tensor
    log_prob: Tensor


class ConditionalLevelFlow(nn.Module):
    """The conditional flow of one level (the original's ``ConditionalFlow``).

    Args:
        channels: channels of the high-frequency part ``a``.
        cond_channels: channels of the conditioning image ``u``.
        steps: conditional flow steps.
        blocks: RRDBs of the two feature trunks; growth: their dense-block growth.
        both_features: features ``[u1, u2]`` (SR) or ``u2`` (rescaling).
        bounded_prior: the predicted log-std is ``0.318 atan(2 s)`` (rescaling) rather than
            ``s`` itself (SR).
        hidden_channels: width of the couplings' sub-networks.
    """

    def __init__(
        self, channels: int, cond_channels: int, steps: int, blocks: tuple[int, int],
        growth: int, both_features: bool, bounded_prior: bool, hidden_channels: int = 64,
    ) -> None:  # fmt: skip
        super().__init__()
        self.features = ConditionalFeatures(cond_channels, blocks, growth, both_features)
        width, passive = self.features.channels, channels // 2
        spec = SubnetSpec(hidden_channels=hidden_channels)
        self.steps = nn.ModuleList(
            TrunkStep(
                channels,
                BoundedAffineCoupling(
                    channels, ActNormSubnet(passive + width, 2 * (channels - passive), spec), True
                ),
                permute=True,
            )
            for _ in range(steps)
        )
        self.prior = ZeroConv2d(width, 2 * channels)
        self.bounded_prior = bounded_prior

    def mean_log_std(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """The predicted Gaussian of ``a'`` (interleaved: even channels mean)."""
        h = self.prior(features)
        raw = h[:, 1::2]
        return h[:, 0::2], bounded_log_scale(raw) if self.bounded_prior else raw

    def encode(self, part: Tensor, cond: Tensor) -> LevelEncoding:
        """``a`` -> its normalized latent, given the conditioning image ``cond``."""
        features = self.features(cond)
        logdet = part.new_zeros(part.shape[0])
        for step in self.steps:
            part, d = step(part, features)
            logdet = logdet + d
        mean, log_std = self.mean_log_std(features)
        eps = (part - mean) * torch.exp(-log_std)
        log_prob = gaussian_log_prob(part, mean, log_std)
        return LevelEncoding(eps, part, mean, log_std, features, logdet, log_prob)

    def decode(self, eps: Tensor, cond: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalized latent -> ``(a, features, logdet)`` given ``cond``."""
        features = self.features(cond)
        part, logdet = self.decode_with_features(eps, features)
        return part, features, logdet

    def decode_with_features(self, eps: Tensor, features: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`decode` with the features already computed: ``(a, logdet)``."""
        mean, log_std = self.mean_log_std(features)
        part = mean + torch.exp(log_std) * eps
        logdet = part.new_zeros(part.shape[0])
        for step in reversed(self.steps):
            part, d = step.inverse(part, features)
            logdet = logdet + d
        return part, logdet


def level_condition(kept: Tensor, coarser_features: list[Tensor]) -> Tensor:
    """A finer level's conditioning image: its kept trunk channels, then the features of every
    coarser level (the next coarser first), nearest-upsampled to its size."""
    size = kept.shape[2:]
    return torch.cat([kept, *(F.interpolate(f, size=size) for f in coarser_features)], dim=1)
