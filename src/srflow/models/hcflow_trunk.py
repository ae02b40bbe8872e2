"""HCFlow's unconditional HR -> LR trunk (Liang et al., ICCV 2021, Sec. 3.1).

Per level: a squeeze (space-to-depth, or Haar for image rescaling), ``steps`` flow steps
(ActNorm -> optional invertible 1x1 convolution -> coupling), then a channel split: the
first half of the channels (the first 3, an RGB image, at the last level) go on, the rest
is that level's high-frequency part ``a_l``. After the last level the kept 3 channels are
the flow's LR image ``y``. ``layers`` keeps the original's flat numbering (the splits take
an index although they hold no parameters), so parameters line up with its checkpoints.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srflow.flows.actnorm import ActNorm2d
from srflow.flows.base import FlowLayer
from srflow.flows.bounded_coupling import BoundedAffineCoupling, LowpassAffineShift
from srflow.flows.haar import HaarSqueeze2d
from srflow.flows.invconv import InvConv1x1
from srflow.flows.nets import ActNormSubnet, DenseSubnet, SubnetSpec
from srflow.flows.squeeze import Squeeze2d


class TrunkStep(FlowLayer):
    """ActNorm -> optional invertible 1x1 convolution (``permute``) -> coupling (``affine``)."""

    def __init__(self, channels: int, affine: FlowLayer, permute: bool) -> None:
        super().__init__()
        self.actnorm = ActNorm2d(channels)
        self.permute = InvConv1x1(channels) if permute else None
        self.affine = affine

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, logdet = self.actnorm(x)
        if self.permute is not None:
            x, d = self.permute(x)
            logdet = logdet + d
        x, d = self.affine(x, cond)
        return x, logdet + d

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y, logdet = self.affine.inverse(y, cond)
        if self.permute is not None:
            y, d = self.permute.inverse(y)
            logdet = logdet + d
        y, d = self.actnorm.inverse(y)
        return y, logdet + d


class ChannelSplit(nn.Module):
    """Marks where a level's high-frequency channels leave the trunk (no parameters)."""

    def __init__(self, kept: int) -> None:
        super().__init__()
        self.kept = kept


class HCFlowTrunk(nn.Module):
    """The trunk for general SR (``haar=False``: 2x2 squeeze, 1x1 convolutions, bounded affine
    couplings with SRFlow-style sub-networks of width ``hidden_channels``) or for image
    rescaling (``haar=True``: Haar squeeze, no 1x1 convolutions, low-pass affine / shift
    couplings alternating, with dense-block sub-networks of growth ``dense_growth``).

    Example:
        >>> trunk = HCFlowTrunk(levels=2, steps=2, hidden_channels=8)
        >>> y, parts, logdet = trunk.encode(torch.rand(1, 3, 16, 16))
        >>> tuple(y.shape), [tuple(a.shape) for a in parts]
        ((1, 3, 4, 4), [(1, 6, 8, 8), (1, 21, 4, 4)])
    """

    def __init__(
        self, levels: int, steps: int, *, haar: bool = False, hidden_channels: int = 64,
        dense_growth: int = 32, in_channels: int = 3,
    ) -> None:  # fmt: skip
        super().__init__()
        self.layers = nn.ModuleList()
        channels = in_channels
        for level in range(levels):
            self.layers.append(HaarSqueeze2d(channels) if haar else Squeeze2d())
            channels *= 4
            for k in range(steps):
                if haar:
                    even = k % 2 == 0
                    low, high = in_channels, channels - in_channels
                    net = DenseSubnet(low, 2 * high, dense_growth) if even else DenseSubnet(
                        high, low, dense_growth
                    )
                    affine: FlowLayer = LowpassAffineShift(channels, net, even, in_channels)
                else:
                    passive = channels // 2
                    spec = SubnetSpec(hidden_channels=hidden_channels)
                    net = ActNormSubnet(passive, 2 * (channels - passive), spec)
                    affine = BoundedAffineCoupling(channels, net)
                self.layers.append(TrunkStep(channels, affine, permute=not haar))
            channels = in_channels if level == levels - 1 else channels // 2
            self.layers.append(ChannelSplit(channels))

    def _level_layers(self, level: int) -> list[nn.Module]:
        """The layers of ``level`` (0 = finest), its split last."""
        bounds = [i for i, m in enumerate(self.layers) if isinstance(m, ChannelSplit)]
        start = bounds[level - 1] + 1 if level else 0
        return list(self.layers)[start : bounds[level] + 1]

    @property
    def levels(self) -> int:
        """Number of levels."""
        return sum(isinstance(m, ChannelSplit) for m in self.layers)

    def encode_level(self, level: int, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One level: ``x`` -> ``(kept, part, logdet)``."""
        logdet = x.new_zeros(x.shape[0])
        *steps, split = self._level_layers(level)
        for layer in steps:
            x, d = layer(x)
            logdet = logdet + d
        assert isinstance(split, ChannelSplit)
        return x[:, : split.kept], x[:, split.kept :], logdet

    def decode_level(self, level: int, kept: Tensor, part: Tensor) -> tuple[Tensor, Tensor]:
        """Inverse of :meth:`encode_level`: ``(x, logdet)``."""
        x = torch.cat([kept, part], dim=1)
        logdet = x.new_zeros(x.shape[0])
        for layer in reversed(self._level_layers(level)[:-1]):
            x, d = layer.inverse(x)
            logdet = logdet + d
        return x, logdet

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """HR ``(B, 3, H, W)`` -> ``(y, [a_1, ..., a_L], logdet)``: the flow's LR image, the
        high-frequency parts finest first, and the log-det ``(B,)``."""
        logdet = x.new_zeros(x.shape[0])
        parts = []
        for level in range(self.levels):
            x, part, d = self.encode_level(level, x)
            parts.append(part)
            logdet = logdet + d
        return x, parts, logdet

    def decode(self, y: Tensor, parts: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Inverse of :meth:`encode`: ``(hr, logdet)`` from ``y`` and the parts."""
        logdet = y.new_zeros(y.shape[0])
        for level in reversed(range(self.levels)):
            y, d = self.decode_level(level, y, parts[level])
            logdet = logdet + d
        return y, logdet
