"""The latent code of an HR image: its latents plus the LR they are conditioned on.

A flow's latents only mean something together with the LR image they were encoded (or drawn)
with: ``decode(lr, latents)`` is the HR image (any family: :class:`FlowSR`).
:class:`LatentCode` keeps the two together with the HR size before padding, so that every
latent-space tool can decode back to the same size.

Padding rule (all tools, :func:`~srflow.data.transforms.pad_to_multiple`): an HR image whose
height or width is not a multiple of ``scale * size_multiple_lr`` is padded at the bottom and
right (mirrored); its LR by the same amount divided by the scale. Decoding crops back to
:attr:`image_size`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from srflow.config.loading import to_dict
from srflow.data.resize import imresize
from srflow.data.transforms import pad_to_multiple
from srflow.divergence import check_decoded
from srflow.metrics.lr_check import check_lr_consistency
from srflow.models.contract import Conditioning, FlowSR


@dataclass(frozen=True)
class LatentCode:
    """Latents of one or more HR images with their conditioning LR.

    Attributes:
        latents: the model's latents in encode order (split latents level by level, then the
            top latent), each ``(B, C_i, h_i, w_i)``.
        lr: the (padded) LR images ``(B, 3, h, w)`` in ``[0, 1]`` the latents are paired with.
        image_size: ``(H, W)`` of the HR images before padding.
        scale: the model's super-resolution factor.
        model_hash: :func:`model_fingerprint` of the model that made the latents.
        noise_level: the noise level the latents are conditioned on (a model with the
            ``noise_level`` capability, NCSR; ``None``: the model's default).
    """

    latents: list[Tensor]
    lr: Tensor
    image_size: tuple[int, int]
    scale: int
    model_hash: str
    noise_level: float | None = None

    def with_latents(self, latents: list[Tensor]) -> LatentCode:
        """The same code with other latents (same shapes)."""
        return replace(self, latents=latents)

    @property
    def padded_size(self) -> tuple[int, int]:
        """``(H, W)`` of the padded HR image the latents describe (LR size times the scale)."""
        return (self.lr.shape[2] * self.scale, self.lr.shape[3] * self.scale)


def model_fingerprint(model: FlowSR) -> str:
    """16 hex digits identifying the model's configuration (SHA-256 of its canonical JSON)."""
    text = json.dumps(to_dict(model.config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def downscale(hr: Tensor, scale: int) -> Tensor:
    """The LR of ``hr`` ``(B, 3, H, W)``: MATLAB bicubic by ``1 / scale`` computed as on uint8
    data (each 1-D pass clipped and rounded to 1/255), like ``srflow downscale``."""
    return imresize(hr, scale=1.0 / scale, quantize=True)  # type: ignore[return-value]


def as_batch(image: Tensor) -> Tensor:
    """``(3, H, W)`` or ``(B, 3, H, W)`` -> ``(B, 3, H, W)``."""
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an RGB image (3, H, W) or (B, 3, H, W), got {image.shape}")
    return image


def pad_pair(model: FlowSR, hr: Tensor, lr: Tensor | None) -> tuple[Tensor, Tensor]:
    """Pad ``hr`` (and ``lr``, or compute it with :func:`downscale`) to sizes the model takes."""
    s = model.config.scale
    m = model.config.size_multiple_lr * s
    hr = as_batch(hr)
    h, w = hr.shape[2:]
    if lr is not None:
        lr = as_batch(lr)
        if (h, w) != (lr.shape[2] * s, lr.shape[3] * s) or lr.shape[0] != hr.shape[0]:
            raise ValueError(
                f"the HR image ({w}x{h}) is not {s}x the LR image ({lr.shape[3]}x{lr.shape[2]})"
            )
    hr_padded = pad_to_multiple(hr, m)
    if lr is None:
        return hr_padded, downscale(hr_padded, s)
    return hr_padded, pad_to_multiple(lr, m // s)


def pad_lr(model: FlowSR, lr: Tensor) -> Tensor:
    """Pad an LR image ``(B, 3, h, w)`` to a multiple of the model's LR size multiple."""
    return pad_to_multiple(as_batch(lr), model.config.size_multiple_lr)


@torch.no_grad()
def encode_image(model: FlowSR, hr: Tensor, lr: Tensor | None = None) -> LatentCode:
    """Encode HR image(s) ``(3, H, W)`` or ``(B, 3, H, W)`` in ``[0, 1]``.

    Args:
        model: the flow (same dtype and device as ``hr``).
        hr: the HR image(s).
        lr: their LR images, exactly ``1 / scale`` the HR size; default: :func:`downscale`
            of the (padded) HR image, i.e. the image's own LR. HCFlow's latents do not depend
            on an LR: its code holds the flow's own LR ``y`` (within about 1/255 of bicubic
            for a trained model), with which the latents decode back to the HR.

    Returns:
        The latent code; ``decode_code(model, code)`` gives ``hr`` back (to rounding).
    """
    hr_padded, lr_padded = pad_pair(model, hr, lr)
    encoding = model.encode(hr_padded, lr_padded)
    size = (as_batch(hr).shape[2], as_batch(hr).shape[3])
    return LatentCode(
        list(encoding.latents), encoding.lr, size, model.config.scale, model_fingerprint(model)
    )


@torch.no_grad()
def decode_code(
    model: FlowSR, code: LatentCode, conditioning: Conditioning | None = None
) -> Tensor:
    """Decode a latent code: ``(B, 3, H, W)`` at :attr:`LatentCode.image_size`, unclamped;
    a :class:`~srflow.divergence.DivergenceWarning` when values diverged.

    ``conditioning``: ``model.prepare(code.lr, noise_level=code.noise_level)``, to decode
    many codes of one LR image (masked resampling again and again, as the explorer does)
    without recomputing it. The decode runs through the model's sampling twin (the same
    weights, faster).
    """
    sampler = model.sampling_twin()
    if conditioning is None:
        conditioning = sampler.prepare(code.lr, keep=False, noise_level=code.noise_level)
    prepared = conditioning
    hr, _ = sampler.decode(prepared, code.latents, logdet=False)
    out = check_decoded(hr[:, :, : code.image_size[0], : code.image_size[1]])
    check_lr_consistency(hr, code.lr, model.consistency_lr)
    return out
