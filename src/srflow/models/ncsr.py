"""NCSR: SRFlow conditioned on a noise map (Kim & Son, "Noise Conditional Flow Model for
Learning the Super-Resolution Space", CVPRW 2021; NTIRE 2021 winner).

Every conditional step of the flow has a third affine, conditioned on the first half of the
channels and on a noise map ``M`` (:class:`~srflow.flows.step.FlowStep` with
``noise_channels``), between the feature-conditioned injector and the self-conditioned
coupling; the last ``noise_steps[l]`` steps of level ``l`` apply it. Each level sees the map at
its own size: a number (a constant map: 0 is what the original samples with), a per-sample
constant ``(B, 1, 1, 1)`` broadcast to the map's channels, or an image-sized map resized with
torch bicubic (what training passes: the noise it added to the HR).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.flows.step import NoiseCondition
from srflow.models.ncsr_config import NCSRConfig
from srflow.models.srflow import SRFlow
from srflow.models.srflow_config import ModelConfig

NoiseSource = float | Tensor | None


def noise_map(
    noise: NoiseSource, size: Sequence[int], channels: int, like: Tensor
) -> Tensor | None:
    """The noise map at ``size`` (``(B or 1, channels, h, w)``): a number as a constant map, a
    ``(B, 1 or channels, 1, 1)`` tensor broadcast, a larger tensor resized with torch bicubic
    (``align_corners=False``, no antialiasing, as the original); ``None`` stays ``None``.

    Example:
        >>> noise_map(0.5, (2, 3), 3, torch.zeros(1)).shape
        torch.Size([1, 3, 2, 3])
    """
    if noise is None:
        return None
    if not isinstance(noise, Tensor):
        return torch.full((1, channels, *size), float(noise), dtype=like.dtype, device=like.device)
    noise = noise.to(like)
    if noise.shape[2:] == (1, 1):
        return noise.expand(noise.shape[0], channels, *size)
    return F.interpolate(noise, size=tuple(size), mode="bicubic", align_corners=False)


class NCSR(SRFlow):
    """NCSR: SRFlow whose couplings are also conditioned on a noise map (see the module doc).

    Example:
        >>> from srflow.families import load_preset
        >>> model = NCSR(load_preset("ncsr_tiny")).eval()
        >>> lr = torch.rand(1, 3, 8, 8)
        >>> model.sample(lr, 0.5, 2, torch.Generator(), noise_level=0.02).shape
        torch.Size([2, 1, 3, 32, 32])
    """

    config: NCSRConfig
    capabilities = dataclasses.replace(
        SRFlow.capabilities,
        noise_level=True,
        reasons={k: v for k, v in SRFlow.capabilities.reasons.items() if k != "noise_level"},
    )

    def __init__(self, config: NCSRConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(config, generator)

    @staticmethod
    def noise_part(config: ModelConfig) -> tuple[int, Callable[[int, int], bool]] | None:
        """The noise-conditioned part: its map channels and which steps apply it."""
        assert isinstance(config, NCSRConfig)
        return config.noise_channels, config.applies_noise

    def default_noise(self, noise_level: float | None) -> float:
        """No noise level given: the zero map, what the original always samples with."""
        return 0.0 if noise_level is None else float(noise_level)

    def level_conditions(
        self, features: list[Tensor], noise: NoiseSource
    ) -> list[NoiseCondition]:
        """Each level's features with the noise map at the level's size."""
        channels = self.config.noise_channels
        return [
            NoiseCondition(f, noise_map(noise, f.shape[2:], channels, f)) for f in features
        ]

    def upsampled(self, lr: Tensor) -> Tensor:
        """The torch-bicubic upscale of ``lr`` a residual model adds (FS-NCSR)."""
        return F.interpolate(lr, scale_factor=self.config.scale, mode="bicubic",
                             align_corners=False)  # fmt: skip

    def flow_input(self, hr: Tensor, lr: Tensor) -> Tensor:
        """The HR image, or (``residual``) its difference to the LR's bicubic upscale."""
        return hr - self.upsampled(lr) if self.config.residual else hr

    def flow_output(self, x: Tensor, lr: Tensor) -> Tensor:
        """:meth:`flow_input` undone."""
        return x + self.upsampled(lr) if self.config.residual else x
