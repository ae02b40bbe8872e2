"""Draw the SR samples of one LR image at several temperatures from one encoder pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from srflow.data.resize import imresize
from srflow.inference.pipeline import SuperResolver
from srflow.models.contract import FlowSR

__all__ = ["ModelSampler", "bicubic_upscale"]


def bicubic_upscale(lr_uint8_hwc: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic reference: MATLAB-compatible ``imresize`` on uint8 (rounded per pass).

    Args:
        lr_uint8_hwc: uint8 ``(h, w, 3)``.
        scale: Upscaling factor.

    Returns:
        uint8 ``(scale*h, scale*w, 3)``.
    """
    return np.asarray(imresize(lr_uint8_hwc, float(scale)))


class ModelSampler:
    """Samples a flow model of any family (:class:`~srflow.models.contract.FlowSR`) for
    evaluation, as ``srflow sr`` does (:meth:`SuperResolver.sample_temperatures`: the one
    padding rule and sampling loop; the conditioning prepared once per image for every
    temperature).

    Args:
        model: The model (its device is used).
        batch_size: Samples decoded together.
    """

    def __init__(self, model: FlowSR, batch_size: int = 5) -> None:
        self.resolver = SuperResolver(model)
        self.device = self.resolver.device
        self.batch_size = batch_size

    @property
    def scale(self) -> int:
        """The model's super-resolution factor."""
        return self.resolver.scale

    def sample(
        self, lr_uint8_hwc: np.ndarray, temperatures: Sequence[float], samples: int, seed: int
    ) -> dict[float, np.ndarray]:
        """SR samples per temperature.

        Args:
            lr_uint8_hwc: uint8 ``(h, w, 3)`` LR image.
            temperatures: Latent standard deviations; 0 is drawn once (its samples coincide).
            samples: Samples per non-zero temperature.
            seed: Each temperature starts a fresh CPU generator with this seed.

        Returns:
            ``{temperature: float32 array (n, scale*h, scale*w, 3) in [0, 1]}``.
        """
        lr = torch.from_numpy(np.ascontiguousarray(lr_uint8_hwc)).permute(2, 0, 1).float() / 255.0
        counts = [1 if t == 0 else samples for t in temperatures]
        outs = self.resolver.sample_temperatures(
            lr, list(temperatures), counts, seed, batch_size=self.batch_size
        )
        return {
            float(t): out.permute(0, 2, 3, 1).numpy()
            for t, out in zip(temperatures, outs, strict=True)
        }
