"""SRFlow: a conditional normalizing flow for super-resolution (Lugmayr et al., ECCV 2020)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from srflow.encoders.rrdb import RRDBEncoder
from srflow.flows.distributions import gaussian_log_prob
from srflow.flows.split import SplitPrior
from srflow.flows.step import NoiseCondition
from srflow.models.conditional_flow import ConditionalFlow
from srflow.models.contract import (
    Capabilities,
    Conditioning,
    Encoding,
    FlowSR,
    as_conditioning,
    seeded_init,
)
from srflow.models.inverse_bounds import bounds_metadata, load_bounds_metadata
from srflow.models.receptive import receptive_region
from srflow.models.srflow_config import ModelConfig
from srflow.models.srflow_twin import SRFlowSamplingTwin
from srflow.models.temperature import Temperature

LN2 = math.log(2.0)
#: Standard deviation of SRFlow-DA's Gaussian dequantization noise, ``(4 / sqrt(3)) / 255``.
GAUSSIAN_DEQUANTIZATION_SIGMA = (4.0 / math.sqrt(3.0)) / 255.0

__all__ = ["GAUSSIAN_DEQUANTIZATION_SIGMA", "SRFlow", "SRFlowEncoding", "Temperature"]


@dataclass(frozen=True)
class SRFlowEncoding(Encoding):
    """An HR image's latents and likelihood terms (all per sample, shape ``(B,)``).

    Attributes:
        latents: split latents level by level, then the top latent (the original's order).
        lr: the LR the latents were encoded with.
        pixels: ``H * W`` of the HR image.
        logdet: sum of the layers' log-determinants (no prior terms, no dequantization).
        split_log_prob: log-density of the factored-out tensors under the split priors.
        top_log_prob: standard-normal log-density of the top latent.
        dequantization_logdet: ``-ln(bins) * pixels`` when the input was dequantized, else 0,
            the original's (per-pixel, not per-dimension) correction.
    """

    logdet: Tensor
    split_log_prob: Tensor
    top_log_prob: Tensor
    dequantization_logdet: float = 0.0

    @property
    def log_prob(self) -> Tensor:
        """Continuous log-density ``log p(hr | lr)`` in nats."""
        return self.logdet + self.split_log_prob + self.top_log_prob

    @property
    def original_logdet(self) -> Tensor:
        """The original implementation's "logdet" (includes split priors and dequantization)."""
        return self.logdet + self.split_log_prob + self.dequantization_logdet

    @property
    def original_nll(self) -> Tensor:
        """The original implementation's reported "nll": bits per HR *pixel*."""
        return -(self.original_logdet + self.top_log_prob) / (LN2 * self.pixels)


class SRFlow(FlowSR):
    """RRDB encoder + multi-level conditional flow modelling ``p(HR | LR)``: SRFlow (Lugmayr
    et al., ECCV 2020) and, by its config, SRFlow-DA (Jo et al., NTIRE 2021).

    Images are float tensors in ``[0, 1]``: LR ``(B, 3, h, w)``, HR ``(B, 3, scale*h,
    scale*w)``. The LR size must be a multiple of :attr:`ModelConfig.size_multiple_lr`.
    The temperature (SRFlow's "heat") is the standard deviation of every latent.

    Example:
        >>> from srflow.families import load_preset
        >>> model = SRFlow(load_preset("tiny")).eval()
        >>> lr = torch.rand(1, 3, 8, 8)
        >>> model.sample(lr, temperature=0.8, n=2, generator=torch.Generator()).shape
        torch.Size([2, 1, 3, 32, 32])
    """

    capabilities = Capabilities(
        local_receptive_field=True,
        encoder_pretraining=True,
        reasons={
            "downscale": "SRFlow-family models only super-resolve: they have no flow from HR "
            "to LR (image rescaling needs an HCFlow model)",
            "rescaling": "not an image rescaling model",
            "noise_level": "this model is not conditioned on a noise level (NCSR models are)",
        },
    )

    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        enc = config.encoder
        with seeded_init(generator):
            self.encoder = RRDBEncoder(
                enc.features, enc.growth, enc.blocks, config.scale, enc.stacked_blocks
            )
            self.flow = ConditionalFlow(
                config.flow, enc.cond_channels, 3, generator, self.noise_part(config)
            )
        self._factors = [
            config.level_feature_factor(level) for level in range(1, config.flow.levels + 1)
        ]

    @property
    def flow_levels(self) -> int:
        """The number of flow levels ``L``."""
        return self.config.flow.levels

    def latent_levels(self) -> list[int]:
        """Flow level of each latent tensor: each split's level, then the last level."""
        flow = self.flow
        splits = [
            level
            for layer, level in zip(flow.layers, flow.layer_levels, strict=True)
            if isinstance(layer, SplitPrior)
        ]
        return [*splits, self.config.flow.levels]

    def features(self, lr: Tensor) -> list[Tensor]:
        """Per-level conditioning tensors (level 1 first) computed from ``lr`` by the encoder."""
        self._check_lr(lr)
        features = self.encoder.features_at(lr, sorted(set(self._factors)))
        return [features[f] for f in self._factors]

    def prepare(
        self, lr: Tensor, keep: bool = True, *, noise_level: float | None = None
    ) -> Conditioning:
        """The encoder's features of ``lr`` (one per flow level), for many decodes. The
        sampling twin (:meth:`sampling_twin`) also keeps each conditional layer's
        conditioning-only term in it after first use (``keep=False``: for one decode, each
        term freed after use)."""
        self.check_noise_level(noise_level)
        return Conditioning(lr, self.features(lr), keep, self.default_noise(noise_level))

    @staticmethod
    def noise_part(config: ModelConfig) -> tuple[int, Callable[[int, int], bool]] | None:
        """The noise-conditioned part of the steps (NCSR); none in SRFlow and SRFlow-DA."""
        return None

    def default_noise(self, noise_level: float | None) -> float | None:
        """The noise level a conditioning carries (none: this family has no noise part)."""
        return noise_level

    def level_conditions(
        self, features: list[Tensor], noise: float | Tensor | None
    ) -> list[Tensor] | list[NoiseCondition]:
        """What each flow level is conditioned on: its features (NCSR: with a noise map)."""
        return features

    def flow_input(self, hr: Tensor, lr: Tensor) -> Tensor:
        """What the flow encodes of an HR image: the image itself (a residual model: its
        difference to the LR's upscale)."""
        return hr

    def flow_output(self, x: Tensor, lr: Tensor) -> Tensor:
        """The HR image of the flow's output (:meth:`flow_input` undone)."""
        return x

    def _check_lr(self, lr: Tensor) -> None:
        m = self.config.size_multiple_lr
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"LR must be (B, 3, h, w), got {tuple(lr.shape)}")
        if lr.shape[2] % m or lr.shape[3] % m:
            raise ValueError(f"LR height and width must be multiples of {m}, got {lr.shape[2:]}")

    def encode(
        self, hr: Tensor, lr: Tensor, *, dequantize: bool = False,
        generator: torch.Generator | None = None, noise_level: float | None = None,
    ) -> SRFlowEncoding:  # fmt: skip
        """Encode ``hr`` given ``lr``; with ``dequantize`` add the training noise first
        (:meth:`dequantize`); ``noise_level`` as :meth:`prepare` takes it."""
        self.check_noise_level(noise_level)
        noise = self.default_noise(noise_level)
        return self.encode_given(hr, lr, noise, dequantize=dequantize, generator=generator)

    def encode_given(
        self, hr: Tensor, lr: Tensor, noise: float | Tensor | None, *,
        dequantize: bool = False, generator: torch.Generator | None = None,
    ) -> SRFlowEncoding:  # fmt: skip
        """:meth:`encode` conditioned on any noise source :meth:`level_conditions` takes (a
        noise-conditioned family's training passes the noise it added to the HR)."""
        if hr.shape[2:] != torch.Size([s * self.config.scale for s in lr.shape[2:]]):
            raise ValueError(
                f"HR {tuple(hr.shape)} is not {self.config.scale}x LR {tuple(lr.shape)}"
            )
        conds = self.level_conditions(self.features(lr), noise)
        pixels = hr.shape[2] * hr.shape[3]
        deq_logdet = 0.0
        if dequantize:
            hr, deq_logdet = self.dequantize(hr, generator)
        result = self.flow.encode(self.flow_input(hr, lr), conds)
        latents = result.output
        assert isinstance(latents, list)
        return SRFlowEncoding(
            latents, lr, pixels, result.logdet, result.split_log_prob,
            gaussian_log_prob(latents[-1]), deq_logdet,
        )  # fmt: skip

    def dequantize(
        self, hr: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, float]:
        """``hr`` plus the configured training noise, and the original's log-det term for it.

        ``uniform`` (SRFlow): ``hr + (U(0, 1) - 0.5) / bins`` and ``-ln(bins) * H * W``;
        ``gaussian`` (SRFlow-DA): ``hr + N(0, 1) * sigma`` with ``sigma = (4/sqrt(3))/255``
        and no log-det term (as the original); ``none``: ``hr`` as it is.
        """
        if self.config.dequantization == "none":
            return hr, 0.0
        kwargs = {"generator": generator, "dtype": hr.dtype, "device": hr.device}
        if self.config.dequantization == "gaussian":
            return hr + torch.randn(hr.shape, **kwargs) * GAUSSIAN_DEQUANTIZATION_SIGMA, 0.0
        bins = self.config.dequantization_bins
        noise = torch.rand(hr.shape, **kwargs)
        return hr + (noise - 0.5) / bins, -math.log(bins) * hr.shape[2] * hr.shape[3]

    def decode(
        self, conditioning: Conditioning | Tensor, latents: list[Tensor], *,
        logdet: bool = True, conds: Sequence[object] | None = None,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """Decode latents (encode order) given a prepared :class:`Conditioning` or an LR.

        The latents may hold ``k`` samples per image (batch ``k * B``, sample-major) while the
        conditioning holds each image once: the conditioning-only computations then run
        once per image, not once per sample.

        Returns:
            ``(hr, logdet)`` where ``logdet`` is the original's reverse log-det: the inverse
            layers' log-dets minus the split log-densities (the negative of
            :attr:`SRFlowEncoding.original_logdet` for the same latents); ``None`` without
            ``logdet`` (:meth:`sampling_twin` decodes faster, computing no log-det).
        """
        prepared = as_conditioning(self, conditioning, conds)
        level_conds = self.level_conditions(prepared.features, prepared.noise_level)
        result = self.flow.decode(latents, level_conds)
        assert isinstance(result.output, Tensor)
        hr = self.flow_output(result.output, prepared.lr)
        if not logdet:
            return hr, None
        return hr, result.logdet - result.split_log_prob

    def nll_bits_per_dim(
        self, hr: Tensor, lr: Tensor, *, dequantize: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:  # fmt: skip
        """NLL in bits per dimension of the dequantized image (the training loss).

        With uniform ``dequantize`` the density is corrected by ``-3 H W ln(bins)`` (a proper
        per-dimension discretization); Gaussian dequantization (SRFlow-DA) has no such term:
        the value is the continuous NLL of the noisy image, as SRFlow-DA trains it; ``none``
        gives the continuous NLL of the image itself.
        """
        enc = self.encode(hr, lr, dequantize=dequantize, generator=generator)
        uniform = dequantize and self.config.dequantization == "uniform"
        correction = 3 * enc.pixels * math.log(self.config.dequantization_bins) if uniform else 0
        return -(enc.log_prob - correction) / (LN2 * 3 * enc.pixels)

    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        """Latent shapes (encode order) for ``n`` samples of each image in ``lr``."""
        s = self.config.scale
        return self.flow.latent_shapes(lr.shape[0] * n, (lr.shape[2] * s, lr.shape[3] * s))

    def sampling_twin(self) -> SRFlowSamplingTwin:
        """The fast sampling twin (:mod:`srflow.models.srflow_twin`), sharing these weights."""
        return SRFlowSamplingTwin(self)

    def checkpoint_metadata(self) -> dict[str, str]:
        """The flow's calibrated inverse bounds (:mod:`srflow.models.inverse_bounds`)."""
        return bounds_metadata(self.flow)

    def load_checkpoint_metadata(self, metadata: Mapping[str, str]) -> None:
        """Restore the calibrated inverse bounds a checkpoint stores."""
        load_bounds_metadata(self.flow, metadata)

    def receptive_region(self, changed: list[Tensor]) -> Tensor:
        """HR pixels a change of the ``changed`` latent positions can reach
        (:func:`~srflow.models.receptive.receptive_region`)."""
        return receptive_region(self.flow.layers, changed)
