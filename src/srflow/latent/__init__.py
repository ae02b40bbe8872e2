"""Latent-space tools (SRFlow paper, Sec. 4): encode/decode, save/load, masked resampling,
style transfer, latent normalization, content transfer and restoration.

Example:
    >>> import torch
    >>> from srflow.families import build, load_preset
    >>> model = build(load_preset("tiny")).eval()
    >>> hr = torch.rand(3, 32, 32)
    >>> code = encode_image(model, hr)                  # latents with the image's own LR
    >>> torch.allclose(decode_code(model, code)[0], hr, atol=1e-4)
    True
"""

from srflow.latent.code import LatentCode, decode_code, downscale, encode_image, model_fingerprint
from srflow.latent.content import content_transfer, feathered_lr, normalize_code
from srflow.latent.io import LatentFileError, check_compatible, load_latents, save_latents
from srflow.latent.masks import fit_mask, latent_masks, read_mask
from srflow.latent.normalize import MODES, draw_moments, normalize_latent, normalize_latents
from srflow.latent.receptive import affected_region
from srflow.latent.resample import resample_code, resample_latents, sample_code
from srflow.latent.restore import restore
from srflow.latent.transfer import style_transfer

__all__ = [
    "MODES",
    "LatentCode",
    "LatentFileError",
    "affected_region",
    "check_compatible",
    "content_transfer",
    "feathered_lr",
    "decode_code",
    "downscale",
    "draw_moments",
    "encode_image",
    "fit_mask",
    "latent_masks",
    "load_latents",
    "model_fingerprint",
    "normalize_code",
    "normalize_latent",
    "normalize_latents",
    "read_mask",
    "resample_code",
    "resample_latents",
    "restore",
    "sample_code",
    "save_latents",
    "style_transfer",
]
