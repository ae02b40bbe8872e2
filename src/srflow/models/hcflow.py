"""HCFlow: hierarchical conditional flow (Liang et al., ICCV 2021).

The bijection maps the HR image to the LR image ``y`` plus one high-frequency part per level
(:class:`~srflow.models.hcflow_trunk.HCFlowTrunk`); each part has a conditional flow with a
predicted Gaussian (:class:`~srflow.models.hcflow_conditional.ConditionalLevelFlow`),
conditioned on the LR at the coarsest level and on the kept channels plus the coarser
levels' features below. ``y`` is not a latent: its density is a Gaussian of log-std ``-6``
around the given LR (the "Dirac" LR term), evaluated at ``y`` quantized to 8 bits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from srflow.data.transforms import quantize_8bit
from srflow.flows.coupling import broadcast_batch
from srflow.flows.distributions import gaussian_log_prob
from srflow.models.contract import (
    Capabilities,
    Conditioning,
    Encoding,
    FlowSR,
    as_conditioning,
    seeded_init,
)
from srflow.models.hcflow_conditional import ConditionalLevelFlow, level_condition
from srflow.models.hcflow_config import HCFlowConfig
from srflow.models.hcflow_trunk import HCFlowTrunk

LN2 = math.log(2.0)


@dataclass(frozen=True)
class HCFlowEncoding(Encoding):
    """An HR image's LR, latents and likelihood terms (per sample, ``(B,)``).

    Attributes:
        latents: normalized latents per level, finest first.
        lr: the flow's own LR ``y`` (the latents decode back to the HR with it).
        pixels: ``H * W`` of the HR.
        y: the flow's LR output (unclamped, unquantized); lr_quant: ``y`` to 8 bits.
        logdet_trunk, logdet_conditional: log-dets of the trunk and the conditional steps.
        prior_log_prob: per level, the log-density of the transformed part.
        lr_log_prob: the LR term ``log N(lr_quant; lr, exp(-6)^2)`` (0 without an LR).
        dequantization_logdet: ``-ln(bins) * pixels`` or 0.
    """

    y: Tensor
    lr_quant: Tensor
    logdet_trunk: Tensor
    logdet_conditional: Tensor
    prior_log_prob: list[Tensor]
    lr_log_prob: Tensor
    dequantization_logdet: float

    @property
    def logdet(self) -> Tensor:
        """The original's returned log-det: dequantization, trunk, conditional steps and the
        priors of the transformed parts."""
        priors = torch.stack(self.prior_log_prob).sum(0)
        return self.dequantization_logdet + self.logdet_trunk + self.logdet_conditional + priors

    @property
    def objective(self) -> Tensor:
        """The original's objective: :attr:`logdet` plus the LR term."""
        return self.logdet + self.lr_log_prob

    @property
    def nll(self) -> Tensor:
        """The original's NLL: ``-objective / (ln 2 * H * W)`` (bits per HR pixel)."""
        return -self.objective / (LN2 * self.pixels)

    @property
    def log_prob(self) -> Tensor:
        """Continuous ``log p(hr | lr)`` in nats: the log-dets, the priors and the LR term
        (no dequantization term)."""
        return self.objective - self.dequantization_logdet

    @property
    def original_nll(self) -> Tensor:
        """:attr:`nll`, the figure the original reports."""
        return self.nll


class HCFlow(FlowSR):
    """HCFlow for diverse SR (``task="sr"``) or image rescaling (``task="rescale"``).

    Example:
        >>> config = HCFlowConfig(levels=2, trunk_steps=1, conditional_steps=1,
        ...                       rrdb_blocks=(1, 1), rrdb_growth=8, hidden_channels=8)
        >>> model = HCFlow(config).eval()
        >>> model.sample(torch.rand(1, 3, 4, 4), 0.8, 2, torch.Generator()).shape
        torch.Size([2, 1, 3, 16, 16])
    """

    def __init__(self, config: HCFlowConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        with seeded_init(generator):
            self._build(config)

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        """A downscaling flow; a rescaling model when its task is ``rescale``."""
        return Capabilities(
            downscale=True,
            rescaling=self.config.task == "rescale",
            reasons={
                "local_receptive_field": "HCFlow's finer levels are conditioned on features of "
                "the coarser ones, so a latent change can reach most of the image",
                "rescaling": "an HCFlow super-resolution model, not trained for rescaling",
                "encoder_pretraining": "HCFlow has no encoder with an SR output of its own",
                "noise_level": "HCFlow is not conditioned on a noise level (NCSR models are)",
            },
        )

    def _build(self, config: HCFlowConfig) -> None:
        sr = config.task == "sr"
        self.trunk = HCFlowTrunk(
            config.levels, config.trunk_steps, haar=not sr,
            hidden_channels=config.hidden_channels, dense_growth=config.dense_growth,
        )  # fmt: skip
        width = 128 if sr else 64
        channels, shapes = 3, []
        for level in range(config.levels):
            channels *= 4
            kept = 3 if level == config.levels - 1 else channels // 2
            shapes.append((channels - kept, kept))
            channels = kept
        last = config.levels - 1
        # the coarsest level sees the LR; the others their kept channels and coarser features
        conds = [
            3 if lv == last else kept + width * (last - lv) for lv, (_, kept) in enumerate(shapes)
        ]
        self.levels = nn.ModuleList(
            ConditionalLevelFlow(
                part,
                cond,
                config.conditional_steps,
                config.rrdb_blocks,
                config.rrdb_growth,
                sr,
                not sr,
                config.hidden_channels,
            )
            for (part, _), cond in zip(shapes, conds, strict=True)
        )
        self.part_channels = [part for part, _ in shapes]

    def encode(self, hr: Tensor, lr: Tensor | None = None, *, noise: Tensor | None = None
               ) -> HCFlowEncoding:  # fmt: skip
        """HR ``(B, 3, H, W)`` in ``[0, 1]`` -> LR, latents and likelihood terms.

        ``noise``: ``U(0, 1)`` draws of ``hr``'s shape for the one-sided dequantization
        ``hr + noise / bins`` (the original always adds it, also at test time).
        """
        deq_logdet = 0.0
        if noise is not None:
            hr = hr + noise / self.config.dequantization_bins
            deq_logdet = -math.log(self.config.dequantization_bins) * hr.shape[2] * hr.shape[3]
        x, kept, parts = hr, [], []
        logdet_trunk = hr.new_zeros(hr.shape[0])
        for level in range(self.config.levels):
            x, part, d = self.trunk.encode_level(level, x)
            kept.append(x)
            parts.append(part)
            logdet_trunk = logdet_trunk + d
        y = x
        latents: list[Tensor] = [y] * self.config.levels
        priors: list[Tensor] = [y] * self.config.levels
        logdet_cond = hr.new_zeros(hr.shape[0])
        coarser: list[Tensor] = []
        for level in reversed(range(self.config.levels)):
            cond = y if level == self.config.levels - 1 else level_condition(kept[level], coarser)
            out = self.levels[level].encode(parts[level], cond)
            latents[level], priors[level] = out.eps, out.log_prob
            logdet_cond = logdet_cond + out.logdet
            coarser.insert(0, out.features)
        lr_quant = quantize_8bit(y)
        lr_log_prob = (
            gaussian_log_prob(lr_quant, lr, torch.full_like(lr, self.config.lr_log_std))
            if lr is not None else hr.new_zeros(hr.shape[0])
        )  # fmt: skip
        return HCFlowEncoding(
            latents, y, hr.shape[2] * hr.shape[3], y, lr_quant, logdet_trunk, logdet_cond,
            priors, lr_log_prob, deq_logdet,
        )  # fmt: skip

    def downscale(self, hr: Tensor) -> Tensor:
        """The flow's LR ``y`` of ``hr`` (the trunk alone; unclamped and unquantized: store
        :func:`quantize_8bit` of it). ``hr``'s sides must be multiples of the scale."""
        return self.trunk.encode(hr)[0]

    @property
    def flow_levels(self) -> int:
        """The number of levels ``L``."""
        return self.config.levels

    def latent_levels(self) -> list[int]:
        """One latent tensor per level, finest first."""
        return list(range(1, self.config.levels + 1))

    def latent_draw_order(self) -> list[int]:
        """Coarsest level first, as the original's sampler draws them."""
        return list(reversed(range(self.config.levels)))

    def prepare(
        self, lr: Tensor, keep: bool = True, *, noise_level: float | None = None
    ) -> Conditioning:
        """What depends on the LR alone: the coarsest level's features (one per image). The
        finer levels are conditioned on each sample's own coarser result, so nothing more is
        shared (``keep`` changes nothing)."""
        self.check_noise_level(noise_level)
        return Conditioning(lr, [self.levels[-1].features(lr)], keep)

    def decode(
        self, conditioning: Conditioning | Tensor, latents: list[Tensor], *,
        logdet: bool = True, conds: Sequence[object] | None = None,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """``(hr, logdet)`` from the LR (inserted as the flow's ``y`` as it is; or a prepared
        :class:`Conditioning`'s LR) and the normalized latents (finest first); ``hr`` is
        not clamped.

        The latents may hold ``k`` samples per image (batch ``k * B``, sample-major) while the
        LR holds each image once. Without ``logdet``, ``None`` is returned in the log-det's
        place.
        """
        prepared = as_conditioning(self, conditioning, conds)
        lr, want_logdet = prepared.lr, logdet
        if len(latents) != self.config.levels:
            raise ValueError(f"expected {self.config.levels} latent tensors, got {len(latents)}")
        batch = latents[0].shape[0]
        x = broadcast_batch(lr, batch).expand(batch, *lr.shape[1:])
        logdet = lr.new_zeros(batch)
        coarser: list[Tensor] = []
        for level in reversed(range(self.config.levels)):
            flow = self.levels[level]
            if level == self.config.levels - 1:
                features = prepared.features[0]
                features = broadcast_batch(features, batch).expand(batch, *features.shape[1:])
                part, d = flow.decode_with_features(latents[level], features)
            else:
                part, features, d = flow.decode(latents[level], level_condition(x, coarser))
            coarser.insert(0, features)
            x, d_trunk = self.trunk.decode_level(level, x, part)
            logdet = logdet + d + d_trunk
        return x, logdet if want_logdet else None

    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        """Latent shapes (finest first) for ``n`` samples of each image in ``lr``."""
        b, _, h, w = lr.shape
        levels = self.config.levels
        return [
            (b * n, c, h * 2 ** (levels - 1 - level), w * 2 ** (levels - 1 - level))
            for level, c in enumerate(self.part_channels)
        ]
