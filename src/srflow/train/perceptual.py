"""The VGG19 feature loss of HCFlow++: L1 between conv5_4 features (before its ReLU).

The network is VGG19's convolutional part (the ``features`` layers 0-34 of the common
ImageNet checkpoint layout) on ImageNet-normalised inputs; its weights are loaded from a
file the user names (``.pth`` state dict, read without unpickling objects, or
``.safetensors``); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from srflow.metrics.lpips import vgg_layers

PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
        512, 512, 512, 512)  # fmt: skip
LAST_LAYER = 34  # conv5_4, before its ReLU
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsError(ValueError):
    """A pretrained network's weights file is missing or unusable (one line naming it)."""


class VGG19Features(nn.Module):
    """VGG19 ``features[0..34]`` on inputs in ``[0, 1]``; frozen, always in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*vgg_layers(PLAN)[: LAST_LAYER + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.features((x - self.mean) / self.std)


def _read(path: Path) -> Mapping[str, Tensor]:
    if not path.exists():
        raise PretrainedWeightsError(
            f"{path}: not found (the VGG19 feature loss needs ImageNet VGG19 weights; pass "
            "their path as train.losses.vgg19_weights)"
        )
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: is not a file (VGG19 weights expected)")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any decoding failure (torch's own advice would be to unpickle)
        raise PretrainedWeightsError(
            f"{path}: not a readable weights file (a .pth state dict of tensors or .safetensors)"
        ) from None
    if not isinstance(state, Mapping):
        raise PretrainedWeightsError(f"{path}: holds no state dict of tensors")
    return state


def load_vgg19_features(path: str | Path) -> VGG19Features:
    """VGG19 features with the weights of ``path`` (keys ``features.N.weight``/``.bias`` or
    ``N.weight``; other keys, e.g. the classifier's, are ignored).

    Raises:
        PretrainedWeightsError: missing file, unreadable file, missing or misshapen keys.
    """
    path = Path(path)
    state = _read(path)
    model = VGG19Features()
    wanted = model.features.state_dict()
    loaded = {}
    for key, target in wanted.items():
        value = state.get(f"features.{key}", state.get(key))
        if not isinstance(value, Tensor):
            raise PretrainedWeightsError(f"{path}: no VGG19 tensor features.{key}")
        if value.shape != target.shape:
            raise PretrainedWeightsError(
                f"{path}: features.{key} has shape {tuple(value.shape)}, VGG19 needs "
                f"{tuple(target.shape)}"
            )
        loaded[key] = value.float()
    model.features.load_state_dict(loaded)
    return model


class FeatureLoss(nn.Module):
    """Per-sample mean absolute difference of VGG19 features, ``(B,)``.

    Gradients reach ``sample``; the features of ``target`` are computed without them.
    """

    def __init__(self, features: VGG19Features) -> None:
        super().__init__()
        self.features = features

    def forward(self, sample: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            reference = self.features(target)
        return (self.features(sample) - reference).abs().mean(dim=(1, 2, 3))
