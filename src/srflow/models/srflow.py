"""SRFlow: a conditional normalizing flow for super-resolution (Lugmayr et al., ECCV 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from srflow.config.schema import ModelConfig
from srflow.encoders.rrdb import RRDBEncoder
from srflow.flows.distributions import gaussian_log_prob, sample_normal
from srflow.flows.prepared import PreparedCond, prepare
from srflow.models.conditional_flow import ConditionalFlow

LN2 = math.log(2.0)
#: Standard deviation of SRFlow-DA's Gaussian dequantization noise, ``(4 / sqrt(3)) / 255``.
GAUSSIAN_DEQUANTIZATION_SIGMA = (4.0 / math.sqrt(3.0)) / 255.0
Temperature = float | Sequence[float]


@dataclass(frozen=True)
class Encoding:
    """The latents of an HR image and its likelihood terms (all per sample, shape ``(B,)``).

    Attributes:
        latents: split latents level by level, then the top latent (the original's order).
        logdet: sum of the layers' log-determinants (no prior terms, no dequantization).
        split_log_prob: log-density of the factored-out tensors under the split priors.
        top_log_prob: standard-normal log-density of the top latent.
        pixels: ``H * W`` of the HR image.
        dequantization_logdet: ``-ln(bins) * pixels`` when the input was dequantized, else 0,
            the original's (per-pixel, not per-dimension) correction.
    """

    latents: list[Tensor]
    logdet: Tensor
    split_log_prob: Tensor
    top_log_prob: Tensor
    pixels: int
    dequantization_logdet: float = 0.0

    @property
    def log_prob(self) -> Tensor:
        """Continuous log-density ``log p(hr | lr)`` in nats."""
        return self.logdet + self.split_log_prob + self.top_log_prob

    @property
    def bits_per_dim(self) -> Tensor:
        """Negative log-likelihood in bits per dimension (``3 * H * W`` dimensions)."""
        return -self.log_prob / (LN2 * 3 * self.pixels)

    @property
    def original_logdet(self) -> Tensor:
        """The original implementation's "logdet" (includes split priors and dequantization)."""
        return self.logdet + self.split_log_prob + self.dequantization_logdet

    @property
    def original_nll(self) -> Tensor:
        """The original implementation's reported "nll": bits per HR *pixel*."""
        return -(self.original_logdet + self.top_log_prob) / (LN2 * self.pixels)


class SRFlow(nn.Module):
    """RRDB encoder + multi-level conditional flow modelling ``p(HR | LR)``: SRFlow (Lugmayr
    et al., ECCV 2020) and, by its config, SRFlow-DA (Jo et al., NTIRE 2021).

    Images are float tensors in ``[0, 1]``: LR ``(B, 3, h, w)``, HR ``(B, 3, scale*h,
    scale*w)``. The LR size must be a multiple of :attr:`ModelConfig.size_multiple_lr`.
    The temperature (SRFlow's "heat") is the standard deviation of every latent.

    Example:
        >>> from srflow.config.presets import load_preset
        >>> model = SRFlow(load_preset("tiny")).eval()
        >>> lr = torch.rand(1, 3, 8, 8)
        >>> model.sample(lr, temperature=0.8, n=2, generator=torch.Generator()).shape
        torch.Size([2, 1, 3, 32, 32])
    """

    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        enc = config.encoder
        self.encoder = RRDBEncoder(
            enc.features, enc.growth, enc.blocks, config.scale, enc.stacked_blocks
        )
        self.flow = ConditionalFlow(config.flow, enc.cond_channels, 3, generator)
        self._factors = [
            config.level_feature_factor(level) for level in range(1, config.flow.levels + 1)
        ]

    def conditioning(self, lr: Tensor) -> list[Tensor]:
        """Per-level conditioning tensors (level 1 first) computed from ``lr``."""
        self._check_lr(lr)
        features = self.encoder.features_at(lr, sorted(set(self._factors)))
        return [features[f] for f in self._factors]

    def condition(self, lr: Tensor, keep: bool = True) -> list[PreparedCond]:
        """:meth:`conditioning`, prepared for many decodes (``decode(..., conds=...)``): the
        encoder runs now, and each conditional layer's conditioning-only term (an injector's
        shift and scale, a coupling's first-convolution part) on first use, then is kept for
        every further batch, temperature and call (:mod:`srflow.flows.prepared`);
        ``keep=False`` for one decode: the same computation, each term freed after use."""
        return prepare(self.conditioning(lr), keep)

    def _check_lr(self, lr: Tensor) -> None:
        m = self.config.size_multiple_lr
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"LR must be (B, 3, h, w), got {tuple(lr.shape)}")
        if lr.shape[2] % m or lr.shape[3] % m:
            raise ValueError(f"LR height and width must be multiples of {m}, got {lr.shape[2:]}")

    def encode(
        self,
        hr: Tensor,
        lr: Tensor,
        *,
        conds: list[Tensor] | None = None,
        dequantize: bool = False,
        generator: torch.Generator | None = None,
    ) -> Encoding:
        """Encode ``hr`` given ``lr``; with ``dequantize`` add the training noise first
        (:meth:`dequantize`)."""
        if hr.shape[2:] != torch.Size([s * self.config.scale for s in lr.shape[2:]]):
            raise ValueError(
                f"HR {tuple(hr.shape)} is not {self.config.scale}x LR {tuple(lr.shape)}"
            )
        conds = self.conditioning(lr) if conds is None else conds
        pixels = hr.shape[2] * hr.shape[3]
        deq_logdet = 0.0
        if dequantize:
            hr, deq_logdet = self.dequantize(hr, generator)
        result = self.flow.encode(hr, conds)
        latents = result.output
        assert isinstance(latents, list)
        return Encoding(
            latents, result.logdet, result.split_log_prob,
            gaussian_log_prob(latents[-1]), pixels, deq_logdet,
        )  # fmt: skip

    def dequantize(
        self, hr: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, float]:
        """``hr`` plus the configured training noise, and the original's log-det term for it.

        ``uniform`` (SRFlow): ``hr + (U(0, 1) - 0.5) / bins`` and ``-ln(bins) * H * W``;
        ``gaussian`` (SRFlow-DA): ``hr + N(0, 1) * sigma`` with ``sigma = (4/sqrt(3))/255``
        and no log-det term (as the original).
        """
        kwargs = {"generator": generator, "dtype": hr.dtype, "device": hr.device}
        if self.config.dequantization == "gaussian":
            return hr + torch.randn(hr.shape, **kwargs) * GAUSSIAN_DEQUANTIZATION_SIGMA, 0.0
        bins = self.config.dequantization_bins
        noise = torch.rand(hr.shape, **kwargs)
        return hr + (noise - 0.5) / bins, -math.log(bins) * hr.shape[2] * hr.shape[3]

    def decode(
        self, lr: Tensor, latents: list[Tensor], *,
        conds: list[Tensor] | list[PreparedCond] | None = None, logdet: bool = True,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """Decode latents (encode order) given ``lr`` (or its :meth:`condition`).

        The latents may hold ``k`` samples per image (batch ``k * B``, sample-major) while
        ``lr`` and ``conds`` hold each image once: the conditioning-only computations then run
        once per image, not once per sample.

        Returns:
            ``(hr, logdet)`` where ``logdet`` is the original's reverse log-det: the inverse
            layers' log-dets minus the split log-densities (the negative of
            :attr:`Encoding.original_logdet` for the same latents); ``None`` without
            ``logdet`` (sampling: that work is skipped).
        """
        conds = self.conditioning(lr) if conds is None else conds  # lr unused when given
        result = self.flow.decode(latents, conds, logdet=logdet)
        assert isinstance(result.output, Tensor)
        if not logdet:
            return result.output, None
        return result.output, result.logdet - result.split_log_prob

    def log_prob(self, hr: Tensor, lr: Tensor) -> Tensor:
        """Continuous ``log p(hr | lr)`` in nats, ``(B,)``."""
        return self.encode(hr, lr).log_prob

    def nll_bits_per_dim(
        self, hr: Tensor, lr: Tensor, *, dequantize: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:  # fmt: skip
        """NLL in bits per dimension of the dequantized image (the training loss).

        With uniform ``dequantize`` the density is corrected by ``-3 H W ln(bins)`` (a proper
        per-dimension discretization); Gaussian dequantization (SRFlow-DA) has no such term:
        the value is the continuous NLL of the noisy image, as SRFlow-DA trains it.
        """
        enc = self.encode(hr, lr, dequantize=dequantize, generator=generator)
        uniform = dequantize and self.config.dequantization == "uniform"
        correction = 3 * enc.pixels * math.log(self.config.dequantization_bins) if uniform else 0
        return -(enc.log_prob - correction) / (LN2 * 3 * enc.pixels)

    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        """Latent shapes (encode order) for ``n`` samples of each image in ``lr``."""
        s = self.config.scale
        return self.flow.latent_shapes(lr.shape[0] * n, (lr.shape[2] * s, lr.shape[3] * s))

    def sample_latents(
        self,
        shapes: list[tuple[int, ...]],
        temperature: Temperature,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> list[Tensor]:
        """Draw latents ``N(0, T^2)``; ``temperature`` may give one value per latent tensor."""
        temps = _per_latent(temperature, len(shapes))
        return [
            sample_normal(shape, t, generator=generator, dtype=dtype, device=device)
            for shape, t in zip(shapes, temps, strict=True)
        ]

    @torch.no_grad()
    def sample(
        self,
        lr: Tensor,
        temperature: Temperature = 0.8,
        n: int = 1,
        generator: torch.Generator | None = None,
        *,
        batch_size: int | None = None,
    ) -> Tensor:
        """Draw ``n`` super-resolutions of each LR image: ``(n, B, 3, H, W)``.

        The encoder and every conditioning-only computation of the flow (the affine
        injectors, the conditioning part of the couplings' first convolutions) run once per
        image; samples are decoded ``batch_size`` images at a time (default:
        all ``n * B`` at once). Latents are drawn sample by sample, so the result for a given
        ``generator`` state does not depend on ``batch_size``.
        """
        conds = self.condition(lr)
        b = lr.shape[0]
        per_sample = self.latent_shapes(lr)
        draws = [
            self.sample_latents(
                per_sample, temperature, generator, dtype=lr.dtype, device=lr.device
            )
            for _ in range(n)
        ]
        chunk = max(1, (batch_size or n * b) // b)
        outs = []
        for start in range(0, n, chunk):
            group = draws[start : start + chunk]
            latents = [torch.cat([d[i] for d in group]) for i in range(len(per_sample))]
            outs.append(self.decode(lr, latents, conds=conds, logdet=False)[0])
        return torch.cat(outs).view(n, b, *outs[0].shape[1:])


def _per_latent(temperature: Temperature, count: int) -> list[float]:
    if isinstance(temperature, int | float):
        return [float(temperature)] * count
    temps = [float(t) for t in temperature]
    if len(temps) != count:
        raise ValueError(f"need one temperature per latent tensor ({count}), got {len(temps)}")
    return temps
