"""Draw the SR samples of one LR image at several temperatures from one encoder pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from srflow.data.resize import imresize
from srflow.divergence import check_decoded
from srflow.inference.pipeline import inference_layout
from srflow.models.protocol import FlowModel

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
    """Samples a flow model of any family (:class:`FlowModel`) for evaluation.

    The LR is padded (reflect, bottom/right, as SRFlow's ``test.py``) to the model's size
    multiple and the SR cropped back; the encoder (conditioning) runs once per image and every
    temperature is decoded from it.

    Args:
        model: The model (its device and dtype are used).
        batch_size: Samples decoded together.
    """

    def __init__(self, model: FlowModel, batch_size: int = 5) -> None:
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.model = inference_layout(model.eval(), self.device)
        self.batch_size = batch_size

    @property
    def scale(self) -> int:
        """The model's super-resolution factor."""
        return self.model.config.scale

    @torch.no_grad()
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
        lr = torch.from_numpy(np.ascontiguousarray(lr_uint8_hwc)).permute(2, 0, 1)[None]
        lr = lr.to(self.device, self.dtype) / 255.0
        h, w = lr.shape[2:]
        multiple = self.model.config.size_multiple_lr
        lr = F.pad(lr, (0, -w % multiple, 0, -h % multiple), mode="reflect")
        conds = self.model.condition(lr)  # prepared once for every temperature and batch
        shapes = self.model.latent_shapes(lr)
        out_h, out_w = h * self.scale, w * self.scale
        result = {}
        for temperature in temperatures:
            count = 1 if temperature == 0 else samples
            generator = torch.Generator().manual_seed(seed)
            draws = [
                self.model.sample_latents(shapes, temperature, generator, dtype=self.dtype)
                for _ in range(count)
            ]
            images = []
            for start in range(0, count, self.batch_size):
                group = draws[start : start + self.batch_size]
                latents = [
                    torch.cat([d[i] for d in group]).to(self.device) for i in range(len(shapes))
                ]
                hr = self.model.decode(lr, latents, conds=conds, logdet=False)[0]
                hr = hr[:, :, :out_h, :out_w]
                images.append(check_decoded(hr, temperature).float().clamp(0, 1).cpu())
            result[float(temperature)] = torch.cat(images).permute(0, 2, 3, 1).numpy()
        return result
