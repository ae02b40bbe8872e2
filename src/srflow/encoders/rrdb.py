"""RRDB low-resolution encoder (ESRGAN, Wang et al. 2018) with SRFlow's conditioning outputs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srflow.flows.nets import DenseConvs


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class ResidualDenseBlock(DenseConvs):
    """Five densely connected 3x3 convolutions; output ``x + 0.2 * conv5(...)``."""

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__(features, features, growth)
        for conv in self.convs():
            nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
            with torch.no_grad():
                conv.weight.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks and a 0.2-scaled skip."""

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: Tensor) -> Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBEncoder(nn.Module):
    """RRDBNet whose intermediate features condition the flow (SRFlow Sec. 3.2).

    ``features_at(lr, factors)`` returns, for each requested size factor relative to the LR
    (0.5, 1, 2, 4, ...), the trunk feature at that size with the outputs of the stacked blocks
    appended (nearest-resized): ``features * (1 + len(stacked_blocks))`` channels.
    Quirks kept from the original: the LR feature is ``t + trunk_conv(t)`` with ``t`` the last
    block's output; upsampled features are taken *after* their LeakyReLU (the original stores
    the pre-activation tensor, but its in-place LeakyReLU then overwrites it, as the reference
    vectors confirm); the half-size feature is a bilinear downscale of the LR feature.

    Args:
        features: trunk channels (``nf``).
        growth: dense-block growth channels (``gc``).
        blocks: number of RRDB blocks (``nb``).
        scale: super-resolution factor; the upsampling path (used by :meth:`super_resolve`, the
            L1 pre-training output) has ``log2(scale)`` stages.
        stacked_blocks: 0-based block indices whose outputs are appended to every feature.
    """

    def __init__(
        self,
        features: int = 64,
        growth: int = 32,
        blocks: int = 23,
        scale: int = 4,
        stacked_blocks: tuple[int, ...] = (1, 8, 15, 22),
    ) -> None:
        super().__init__()
        self.stacked_blocks = tuple(stacked_blocks)
        self.conv_first = nn.Conv2d(3, features, 3, padding=1)
        self.trunk = nn.ModuleList(RRDB(features, growth) for _ in range(blocks))
        self.trunk_conv = nn.Conv2d(features, features, 3, padding=1)
        self.upconvs = nn.ModuleList(
            nn.Conv2d(features, features, 3, padding=1) for _ in range(int(math.log2(scale)))
        )
        self.hr_conv = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, 3, 3, padding=1)

    def _trunk(self, lr: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.conv_first(lr)
        kept: dict[int, Tensor] = {}
        for index, block in enumerate(self.trunk):
            x = block(x)
            if index in self.stacked_blocks:
                kept[index] = x
        return x + self.trunk_conv(x), [kept[b] for b in self.stacked_blocks]

    def _upsampled(self, lr_feature: Tensor, stages: int) -> list[Tensor]:
        """Outputs of the first ``stages`` upsampling stages, after their LeakyReLU."""
        outs, x = [], lr_feature
        for conv in self.upconvs[:stages]:
            x = _lrelu(conv(F.interpolate(x, scale_factor=2, mode="nearest")))
            outs.append(x)
        return outs

    def features_at(self, lr: Tensor, factors: list[float]) -> dict[float, Tensor]:
        """Conditioning tensors keyed by size factor relative to ``lr`` (see class doc)."""
        lr_feature, stacked = self._trunk(lr)
        up_stages = max([0, *(int(math.log2(f)) for f in factors if f >= 1)])
        ups = self._upsampled(lr_feature, up_stages)
        stack = torch.cat(stacked, dim=1) if stacked else None
        out = {}
        for factor in factors:
            if factor == 0.5:
                base = F.interpolate(
                    lr_feature,
                    scale_factor=0.5,
                    mode="bilinear",
                    align_corners=False,
                    recompute_scale_factor=True,
                )
            elif factor == 1:
                base = lr_feature
            else:
                base = ups[int(math.log2(factor)) - 1]
            if stack is not None:
                base = torch.cat([base, F.interpolate(stack, base.shape[2:])], dim=1)
            out[factor] = base
        return out

    def super_resolve(self, lr: Tensor) -> Tensor:
        """The RRDBNet's own deterministic SR output (used for L1 pre-training)."""
        lr_feature, _ = self._trunk(lr)
        x = lr_feature
        for conv in self.upconvs:
            x = _lrelu(conv(F.interpolate(x, scale_factor=2, mode="nearest")))
        return self.conv_last(_lrelu(self.hr_conv(x)))
