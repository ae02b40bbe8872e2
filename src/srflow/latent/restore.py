"""Image restoration with the SR posterior (SRFlow paper, Sec. 4.5).

A degraded HR image (noise, JPEG artifacts) is encoded with its own downscaled LR, which
holds little of the degradation. The artifacts live in the latents, whose statistics they
distort; spatial normalization and then local normalization (Sec. 4.3) replace those
statistics by typical ones at the chosen temperature, and decoding gives an image consistent
with the LR whose fine detail is typical for it rather than the artifact.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from srflow.latent.code import decode_code, encode_image
from srflow.latent.content import normalize_code
from srflow.models.contract import FlowSR

DEFAULT_RESTORE_TEMPERATURE = 0.8


@torch.no_grad()
def restore(
    model: FlowSR,
    degraded: Tensor,
    *,
    temperature: float | Sequence[float] = DEFAULT_RESTORE_TEMPERATURE,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Restore degraded image(s) ``(3, H, W)`` or ``(B, 3, H, W)`` in ``[0, 1]``.

    Args:
        model: the flow (same dtype and device as ``degraded``).
        degraded: the degraded image(s).
        temperature: normalization temperature (one value, per level or per latent).
        generator: random source of the normalization.

    Returns:
        The restored images ``(B, 3, H, W)``, clamped to ``[0, 1]``.
    """
    code = encode_image(model, degraded)
    code = normalize_code(model, code, "spatial", temperature, generator)
    code = normalize_code(model, code, "local", temperature, generator)
    return decode_code(model, code).clamp(0, 1)
