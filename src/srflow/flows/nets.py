"""Sub-networks of the conditional affine layers: SRFlow's, SRFlow-DA's and HCFlow's.

Every SRFlow-family sub-network is ``last(hidden(relu(first(x))))``: one 'same' 3x3
convolution (:attr:`first`), its ReLU, the hidden layers, and the zero-initialized output
convolution (:attr:`last`). The sampling twin (:mod:`srflow.sampling`) reads that structure
to run the same maps from folded and packed weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srflow.flows.actnorm import ActNorm2d


@dataclass(frozen=True)
class SubnetSpec:
    """Structure of a coupling sub-network.

    Attributes:
        kind: ``actnorm`` (SRFlow: bias-free convolutions each followed by an ActNorm),
            ``plain`` (SRFlow-DA and DA-S: convolutions with bias), ``long_skip`` (DA-R: the
            first convolution's activation is added to the last hidden one's) or ``residual``
            (DA-D: hidden convolutions in residual blocks of two).
        hidden_channels: width.
        depth: hidden convolutions between the first and the last (zero-initialized) one.
        kernel: kernel size of the hidden convolutions.
    """

    kind: str = "actnorm"
    hidden_channels: int = 64
    depth: int = 1
    kernel: int = 1


#: SRFlow's sub-network (the default of the affine layers).
SRFLOW_SUBNET = SubnetSpec()


def _normal_conv(
    in_channels: int, out_channels: int, kernel: int, bias: bool, generator: torch.Generator | None
) -> nn.Conv2d:
    """'Same' convolution with Glow's initialization: weights ``N(0, 0.05^2)``, bias 0."""
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.05)
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


def _relu() -> nn.ReLU:
    """In place: every sub-network ReLU follows a layer whose backward does not need its
    output, so no copy is needed, with or without gradients."""
    return nn.ReLU(inplace=True)


class ConvActNorm2d(nn.Conv2d):
    """Bias-free 'same' convolution followed by an ActNorm (no log-det: not a flow layer).

    Weights start as ``N(0, 0.05^2)`` (Glow). The state-dict keys are ``weight`` and
    ``actnorm.bias``/``actnorm.logs``, as in the original SRFlow.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=generator) * 0.05)
        self.actnorm = ActNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.actnorm.normalize(super().forward(x))


class ZeroConv2d(nn.Conv2d):
    r"""Zero-initialized 3x3 'same' convolution with a learned output scale
    :math:`y = (W * x + b) \cdot e^{3\,\text{logs}}` (Glow's ``Conv2dZeros``)."""

    logscale_factor = 3.0

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)
        self.logs = nn.Parameter(torch.zeros(out_channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * torch.exp(self.logs * self.logscale_factor)


class ActNormSubnet(nn.Sequential):
    """SRFlow's sub-network: Conv3x3+ActNorm -> ReLU -> ``depth`` x (Conv+ActNorm -> ReLU)
    -> ZeroConv3x3.

    Module indices 0, 2, ..., ``2 * depth + 2`` carry the parameters, matching the original
    SRFlow's keys.
    """

    def __init__(
        self, in_channels: int, out_channels: int, spec: SubnetSpec,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        width = spec.hidden_channels
        layers: list[nn.Module] = [ConvActNorm2d(in_channels, width, 3, generator), _relu()]
        for _ in range(spec.depth):
            layers += [ConvActNorm2d(width, width, spec.kernel, generator), _relu()]
        super().__init__(*layers, ZeroConv2d(width, out_channels))

    @property
    def first(self) -> ConvActNorm2d:
        """The first convolution (with its ActNorm)."""
        first = self[0]
        assert isinstance(first, ConvActNorm2d)
        return first

    @property
    def hidden_convs(self) -> list[ConvActNorm2d]:
        """The hidden convolutions (each followed by a ReLU), in order."""
        return [m for m in list(self)[2:-1] if isinstance(m, ConvActNorm2d)]

    @property
    def last(self) -> ZeroConv2d:
        """The zero-initialized output convolution."""
        last = self[-1]
        assert isinstance(last, ZeroConv2d)
        return last


class DeepSubnet(nn.Module):
    """SRFlow-DA's deep convolutional block (Jo et al., NTIRE 2021 "SRFlow-DA").

    ``first``: Conv3x3 with bias -> ReLU; ``hidden``: ``depth`` convolutions with bias, each
    followed by a ReLU (``residual``: in blocks of two, ``h + ReLU(conv(ReLU(conv(h))))``);
    ``last``: ZeroConv3x3. ``long_skip`` adds the first activation to the hidden output.
    """

    def __init__(
        self, in_channels: int, out_channels: int, spec: SubnetSpec,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        width, k = spec.hidden_channels, spec.kernel
        self.kind = spec.kind
        self.first = _normal_conv(in_channels, width, 3, True, generator)
        if spec.kind == "residual":
            self.hidden = nn.Sequential(
                *(
                    nn.Sequential(
                        _normal_conv(width, width, k, True, generator),
                        _relu(),
                        _normal_conv(width, width, k, True, generator),
                        _relu(),
                    )  # fmt: skip
                    for _ in range(spec.depth // 2)
                )
            )
        else:
            layers: list[nn.Module] = []
            for _ in range(spec.depth):
                layers += [_normal_conv(width, width, k, True, generator), _relu()]
            self.hidden = nn.Sequential(*layers)
        self.last = ZeroConv2d(width, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        a = F.relu(self.first(x), inplace=True)
        if self.kind == "residual":
            for block in self.hidden:
                a = a + block(a)
        elif self.kind == "long_skip":
            a = self.hidden(a) + a
        else:
            a = self.hidden(a)
        return self.last(a)


class DenseConvs(nn.Module):
    """Five densely connected 'same' 3x3 convolutions with bias (ESRGAN's dense block without
    its residual): ``conv_k`` sees the input and every earlier output, LeakyReLU 0.2 after
    each but the last; ``growth`` channels each, ``out_channels`` from ``conv5``. Keys
    ``conv1`` ... ``conv5`` as in the original checkpoints; PyTorch's default initialization.
    """

    def __init__(self, in_channels: int, out_channels: int, growth: int = 32) -> None:
        super().__init__()
        widths = [in_channels + k * growth for k in range(5)]
        outs = [growth] * 4 + [out_channels]
        for k, (w_in, w_out) in enumerate(zip(widths, outs, strict=True), start=1):
            setattr(self, f"conv{k}", nn.Conv2d(w_in, w_out, 3, padding=1))

    def convs(self) -> list[nn.Conv2d]:
        """``conv1`` ... ``conv5``."""
        return [getattr(self, f"conv{k}") for k in range(1, 6)]

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for conv in self.convs()[:4]:
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return self.conv5(torch.cat(features, 1))


class DenseSubnet(DenseConvs):
    """:class:`DenseConvs` as a coupling sub-network (HCFlow's rescaling trunk): weights
    Xavier-normal times 0.1, biases 0 and ``conv5`` zero, so the coupling starts as the
    identity."""

    def __init__(self, in_channels: int, out_channels: int, growth: int = 32) -> None:
        super().__init__(in_channels, out_channels, growth)
        for conv in self.convs():
            nn.init.xavier_normal_(conv.weight)
            with torch.no_grad():
                conv.weight.mul_(0.1)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.conv5.weight)


Subnet = ActNormSubnet | DeepSubnet


def make_subnet(
    in_channels: int, out_channels: int, spec: SubnetSpec,
    generator: torch.Generator | None = None,
) -> Subnet:  # fmt: skip
    """Build the sub-network ``spec`` describes, with output exactly 0 at initialization."""
    if spec.kind == "actnorm":
        return ActNormSubnet(in_channels, out_channels, spec, generator)
    if spec.kind in ("plain", "long_skip", "residual"):
        return DeepSubnet(in_channels, out_channels, spec, generator)
    raise ValueError(f"unknown sub-network kind {spec.kind!r}")


def last_conv(net: Subnet) -> ZeroConv2d:
    """The zero-initialized output convolution of a sub-network."""
    return net.last
