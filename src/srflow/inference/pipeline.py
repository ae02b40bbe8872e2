"""Super-resolve images with a trained model: padding, sample batching, tiling, seeds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.inference.tiling import decode_tiled
from srflow.models.checkpoint import load_model
from srflow.models.srflow import SRFlow, Temperature

logger = logging.getLogger(__name__)
ProgressFn = Callable[[int], None]


class InputTooSmallError(ValueError):
    """The input image is smaller than the model can process."""


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class SuperResolver:
    """A model ready for inference on one device.

    Args:
        model: a trained :class:`SRFlow`.
        device: where to run (``None``: the model's device).
        half: run in float16 (GPU only).

    Example:
        >>> from srflow.config.presets import load_preset
        >>> sr = SuperResolver(SRFlow(load_preset("tiny")))
        >>> sr.super_resolve(torch.rand(3, 10, 12), temperature=0.5, samples=2, seed=0).shape
        torch.Size([2, 3, 40, 48])
    """

    def __init__(
        self, model: SRFlow, device: torch.device | str | None = None, half: bool = False
    ) -> None:
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        if half and self.device.type == "cpu":
            raise ValueError("--half needs a GPU (float16 on the CPU is slow and unsupported)")
        self.dtype = torch.float16 if half else torch.float32
        self.model = model.eval().to(self.device, self.dtype)

    @classmethod
    def from_path(
        cls, path: str | Path, device: str = "auto", half: bool = False
    ) -> SuperResolver:
        """Load our ``.safetensors`` checkpoint or an original ``.pth``."""
        return cls(load_model(path), pick_device(device), half)

    @property
    def scale(self) -> int:
        """The super-resolution factor."""
        return self.model.config.scale

    @property
    def min_lr_size(self) -> int:
        """Smallest LR side the model accepts (before padding)."""
        return max(2, self.model.config.size_multiple_lr)

    @torch.no_grad()
    def super_resolve(
        self,
        image: Tensor,
        temperature: Temperature = 0.8,
        samples: int = 1,
        seed: int | None = None,
        *,
        generator: torch.Generator | None = None,
        tile: int | None = None,
        tile_overlap: int = 16,
        batch_size: int | None = None,
        progress: ProgressFn | None = None,
    ) -> Tensor:
        """Draw ``samples`` super-resolutions of one image.

        Args:
            image: float RGB ``(3, h, w)`` or ``(1, 3, h, w)`` in ``[0, 1]``.
            temperature: latent standard deviation (one value, or one per latent tensor).
            samples: number of samples.
            seed: seed of a CPU generator (same seed, same output); ignored if ``generator``.
            tile: LR tile size for bounded memory (``None``: whole image at once).
            tile_overlap: LR pixels of context around each tile.
            batch_size: samples decoded together (default: all).
            progress: called with the number of samples finished after each batch.

        Returns:
            ``(samples, 3, scale*h, scale*w)`` float tensor in ``[0, 1]`` on the CPU.
        """
        lr = image if image.dim() == 4 else image.unsqueeze(0)
        h, w = lr.shape[2:]
        if min(h, w) < self.min_lr_size:
            raise InputTooSmallError(
                f"image is {w}x{h}; the model needs at least {self.min_lr_size}x{self.min_lr_size}"
            )
        lr_padded = self._pad(lr.to(self.device, self.dtype))
        if generator is None:
            generator = torch.Generator().manual_seed(seed if seed is not None else 0)
        shapes = self.model.latent_shapes(lr_padded)
        per_batch = max(1, batch_size or samples)
        out = torch.empty(samples, 3, h * self.scale, w * self.scale)
        conds = None if tile else self.model.conditioning(lr_padded)
        for start in range(0, samples, per_batch):
            count = min(per_batch, samples - start)
            draws = [
                self.model.sample_latents(shapes, temperature, generator, dtype=self.dtype)
                for _ in range(count)
            ]
            latents = [
                torch.cat([d[i] for d in draws]).to(self.device) for i in range(len(shapes))
            ]
            out[start : start + count] = (
                self._decode(lr_padded, latents, conds, tile, tile_overlap)[
                    :, :, : h * self.scale, : w * self.scale
                ]
                .float()
                .clamp_(0, 1)
                .cpu()
            )
            if progress is not None:
                progress(count)
        return out

    def _pad(self, lr: Tensor) -> Tensor:
        m = self.model.config.size_multiple_lr
        pad_h, pad_w = -lr.shape[2] % m, -lr.shape[3] % m
        if pad_h or pad_w:
            logger.info(
                "padding the %dx%d input by %d x %d pixels (replicate); output cropped back",
                *(lr.shape[3], lr.shape[2], pad_w, pad_h),
            )
            lr = F.pad(lr, (0, pad_w, 0, pad_h), mode="replicate")
        return lr

    def _decode(
        self, lr: Tensor, latents: list[Tensor], conds: list[Tensor] | None,
        tile: int | None, overlap: int,
    ) -> Tensor:  # fmt: skip
        n = latents[0].shape[0]
        if tile is None or (lr.shape[2] <= tile and lr.shape[3] <= tile):
            conds = conds if conds is not None else self.model.conditioning(lr)
            return self.model.decode(lr, latents, conds=[c.expand(n, -1, -1, -1) for c in conds])[
                0
            ]
        s = self.scale
        hr = torch.empty(
            n, 3, lr.shape[2] * s, lr.shape[3] * s, dtype=self.dtype, device=self.device
        )
        for t, core in decode_tiled(self.model, lr, latents, tile, overlap):
            hr[:, :, t.core_y[0] * s : t.core_y[1] * s, t.core_x[0] * s : t.core_x[1] * s] = core
        return hr
