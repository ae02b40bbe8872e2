"""The VGG-style discriminator of HCFlow++ and the vanilla GAN losses.

Architecture (the original's ``Discriminator_VGG_160``, ESRGAN's design): ten convolutions in
five blocks of a 3x3 stride-1 and a 4x4 stride-2 convolution (64, 128, 256, 512, 512
channels; batch norm after all but the first; LeakyReLU 0.2), which take a 160x160 input down
to 5x5, then ``Linear(512 * 25, 100) -> LeakyReLU -> Linear(100, 1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WIDTHS = (64, 128, 256, 512, 512)


def _block(c_in: int, c_out: int, first: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=first)]
    if not first:
        layers.append(nn.BatchNorm2d(c_out))
    layers += [nn.LeakyReLU(0.2), nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False),
               nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]  # fmt: skip
    return layers


class VGGStyleDiscriminator(nn.Module):
    """Real/fake logits ``(B, 1)`` of ``input_size`` x ``input_size`` RGB images.

    Args:
        in_channels: input channels.
        input_size: image side (a multiple of 32; 160 in the original).
        generator: random source of the initial weights (Kaiming normal, zero biases).

    Example:
        >>> VGGStyleDiscriminator(input_size=32)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1])
    """

    def __init__(
        self, in_channels: int = 3, input_size: int = 160,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        if input_size % 32:
            raise ValueError(f"discriminator input size {input_size} is not a multiple of 32")
        layers: list[nn.Module] = []
        c_in = in_channels
        for index, width in enumerate(WIDTHS):
            layers += _block(c_in, width, first=index == 0)
            c_in = width
        self.features = nn.Sequential(*layers)
        side = input_size // 32
        self.classifier = nn.Sequential(
            nn.Linear(WIDTHS[-1] * side * side, 100), nn.LeakyReLU(0.2), nn.Linear(100, 1)
        )
        self._initialize(generator)

    @torch.no_grad()
    def _initialize(self, generator: torch.Generator | None) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                fan_in = module.weight[0].numel()
                std = (2.0 / (1 + 0.2**2) / fan_in) ** 0.5  # Kaiming for LeakyReLU(0.2)
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


def generator_gan_loss(fake_logits: Tensor) -> Tensor:
    """Per-sample ``BCE(fake, 1)`` (the generator wants its samples judged real), ``(B,)``."""
    target = torch.ones_like(fake_logits)
    loss = F.binary_cross_entropy_with_logits(fake_logits, target, reduction="none")
    return loss.flatten(1).mean(1)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Per-sample ``BCE(real, 1) + BCE(fake, 0)``, ``(B,)``."""
    real = F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits), reduction="none"
    )
    fake = F.binary_cross_entropy_with_logits(
        fake_logits, torch.zeros_like(fake_logits), reduction="none"
    )
    return (real + fake).flatten(1).mean(1)
