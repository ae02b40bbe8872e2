"""LR-consistency of style transfer and restoration, with an LR-consistent tiny model.

LR-PSNR is the PSNR between the output's MATLAB-bicubic downscale and the LR (uint8, as the
NTIRE challenge measures it). The tiny model of :func:`latent_models.consistent_tiny` reaches
about 30 dB on its own samples; the thresholds below are what it really meets, with margin.
"""

from __future__ import annotations

import numpy as np
import torch

from latent_models import consistent_tiny, photo
from srflow.latent import decode_code, downscale, restore, sample_code, style_transfer
from srflow.metrics.consistency import lr_psnr
from srflow.metrics.psnr_ssim import psnr


def _u8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_style_transfer_is_consistent_with_the_target_lr() -> None:
    model = consistent_tiny()
    target = photo("rocket", 100, 100, 96, torch.float64)
    lr = downscale(target[None], 4)[0]
    source = photo("chelsea", 100, 200, 96, torch.float64)  # another photo: its style
    out = decode_code(model, style_transfer(model, source, lr))[0]
    transfer = lr_psnr(_u8(out), _u8(lr), 4)
    plain = lr_psnr(_u8(source), _u8(lr), 4)  # baseline: the source photo itself
    sample = decode_code(model, sample_code(model, lr, 0.8, torch.Generator().manual_seed(0)))
    own = lr_psnr(_u8(sample[0]), _u8(lr), 4)
    assert transfer > 27.0, f"transfer LR-PSNR {transfer:.2f} dB"
    assert transfer > plain + 15, f"transfer {transfer:.2f} dB vs source {plain:.2f} dB"
    assert transfer > own - 3, f"transfer {transfer:.2f} dB vs own samples {own:.2f} dB"
    # the source's detail is transferred: the output differs from a plain sample
    assert (out - sample[0]).abs().mean() > 2 / 255


def test_restoration_is_lr_consistent_and_removes_noise() -> None:
    model = consistent_tiny()
    clean = photo("coffee", 50, 50, 96, torch.float64)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0), dtype=clean.dtype)
    noisy = torch.round((clean + noise * 20 / 255).clamp(0, 1) * 255) / 255  # sigma 20
    out = restore(model, noisy, temperature=0.8, generator=torch.Generator().manual_seed(1))[0]
    lr = downscale(noisy[None], 4)[0]
    consistency = lr_psnr(_u8(out), _u8(lr), 4)
    assert consistency > 27.0, f"restoration LR-PSNR {consistency:.2f} dB"
    restored, degraded = psnr(_u8(out), _u8(clean)), psnr(_u8(noisy), _u8(clean))
    assert restored > degraded + 1.0, f"PSNR restored {restored:.2f} vs noisy {degraded:.2f} dB"
