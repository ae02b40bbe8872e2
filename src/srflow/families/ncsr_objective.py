"""NCSR's training loss: SRFlow's NLL on "softflow" noise (``../spec/ncsr.md`` section 3).

For each image a noise level ``sigma ~ U(0, max_noise)`` is drawn, then a noise realisation
``eps = sigma * N(0, 1)`` of the HR's shape. The flow encodes ``HR + eps`` conditioned on
``LR + imresize(eps, 1 / scale)`` (MATLAB bicubic on float data: neither clipped nor rounded)
and on the noise map ``eps`` itself (each level's noise part sees it bicubic-resized). The
draws come from each sample's own seed, so a batch split over ranks sees exactly the draws of
the single-process batch. NCSR trains without dequantization (the model's ``dequantization``
option adds it, as for SRFlow).
"""

from __future__ import annotations

import torch
from torch import Tensor

from srflow.data.resize import imresize
from srflow.families.objective import Objective, per_sample_noise
from srflow.families.srflow_objective import dequantized
from srflow.models.ncsr import NCSR

#: The dequantization draws (when configured) use each sample's seed plus this offset.
DEQUANTIZATION_SEED_OFFSET = 0xDEC0DE


def softflow_noise(
    shape: tuple[int, ...], seeds: list[int], generator: torch.Generator, device: torch.device,
    max_noise: float,
) -> Tensor:  # fmt: skip
    """``(len(seeds), *shape)``: row ``i`` is ``sigma_i * N(0, 1)`` with
    ``sigma_i ~ U(0, max_noise)``, both from ``seeds[i]`` alone."""
    out = torch.empty((len(seeds), *shape), device=device)
    for row, seed in zip(out, seeds, strict=True):
        generator.manual_seed(seed)
        sigma = torch.rand((), generator=generator, device=device) * max_noise
        row.copy_(torch.randn(shape, generator=generator, device=device) * sigma)
    return out


def noisy_pair(hr: Tensor, lr: Tensor, eps: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """``(HR + eps, LR + imresize(eps, 1 / scale))``: the LR noise is the HR noise downscaled
    with the MATLAB bicubic in float64, cast back."""
    lr_noise = imresize(eps.double(), scale=1.0 / scale)
    assert isinstance(lr_noise, Tensor)
    return hr + eps, lr + lr_noise.to(lr.dtype)


class NCSRObjective(Objective):
    """``forward(hr, lr, noise, stage)`` -> the per-sample NLL (bits per dimension) of the
    noisy HR given the noisy LR and the noise map (``noise``: :meth:`noise`'s draws: the
    softflow noise, then the dequantization draws when the model dequantizes)."""

    model: NCSR

    def noise(
        self, shape: tuple[int, ...], seeds: list[int], generator: torch.Generator,
        device: torch.device,
    ) -> Tensor:  # fmt: skip
        """Softflow noise (:func:`softflow_noise`) at the model's ``max_noise``; with a
        dequantization, its draws follow along the channels (each sample's seed offset)."""
        eps = softflow_noise(shape, seeds, generator, device, self.model.config.max_noise)
        kind = self.model.config.dequantization
        if kind == "none":
            return eps
        offset = DEQUANTIZATION_SEED_OFFSET
        draws = per_sample_noise(shape, [s + offset for s in seeds], generator, device, kind)
        return torch.cat([eps, draws], dim=1)

    def nll(self, model: NCSR, hr: Tensor, lr: Tensor, noise: Tensor) -> Tensor:  # type: ignore[override]
        """Bits per dimension of ``hr + eps`` (dequantized as the model is configured) given
        the noisy LR and the noise map ``eps``."""
        eps, draws = noise[:, : hr.shape[1]], noise[:, hr.shape[1] :]
        noisy_hr, noisy_lr = noisy_pair(hr, lr, eps, model.config.scale)
        target, correction = dequantized(model, noisy_hr, draws)
        enc = model.encode_given(target, noisy_lr, eps)
        return enc.bits_per_dim + correction

    def initialize_actnorms(self, hr: Tensor, lr: Tensor, noise: Tensor | None) -> None:
        """The forward pass that data-dependent ActNorm init runs on (the training forward)."""
        assert noise is not None
        self.nll(self.model, hr, lr, noise)

    def forward(
        self, hr: Tensor, lr: Tensor, noise: Tensor | None, stage: str, *latents: Tensor
    ) -> Tensor:
        assert noise is not None and stage == "nll"
        return self.nll(self.model, hr, lr, noise)
