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

from srflow.config.hcflow import HCFlowConfig
from srflow.flows.base import without_logdet
from srflow.flows.coupling import broadcast_batch
from srflow.flows.distributions import gaussian_log_prob, sample_normal
from srflow.models.hcflow_conditional import ConditionalLevelFlow, level_condition
from srflow.models.hcflow_trunk import HCFlowTrunk

LN2 = math.log(2.0)


def quantize_8bit(x: Tensor) -> Tensor:
    """``round(clamp(x, 0, 1) * 255) / 255`` (the original's LR quantization), with a
    straight-through gradient (the identity), as the original trains through it."""
    quantized = torch.round(x.clamp(0, 1) * 255.0) / 255.0
    return x + (quantized - x).detach() if x.requires_grad else quantized


@dataclass(frozen=True)
class HCFlowEncoding:
    """An HR image's LR, latents and likelihood terms (per sample, ``(B,)``).

    Attributes:
        y: the flow's LR output (unclamped, unquantized); lr_quant: ``y`` to 8 bits.
        latents: normalized latents per level, finest first.
        logdet_trunk, logdet_conditional: log-dets of the trunk and the conditional steps.
        prior_log_prob: per level, the log-density of the transformed part.
        lr_log_prob: the LR term ``log N(lr_quant; lr, exp(-6)^2)`` (0 without an LR).
        pixels: ``H * W`` of the HR; dequantization_logdet: ``-ln(bins) * pixels`` or 0.
    """

    y: Tensor
    lr_quant: Tensor
    latents: list[Tensor]
    logdet_trunk: Tensor
    logdet_conditional: Tensor
    prior_log_prob: list[Tensor]
    lr_log_prob: Tensor
    pixels: int
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


class HCFlow(nn.Module):
    """HCFlow for diverse SR (``task="sr"``) or image rescaling (``task="rescale"``).

    Example:
        >>> config = HCFlowConfig(levels=2, trunk_steps=1, conditional_steps=1,
        ...                       rrdb_blocks=(1, 1), rrdb_growth=8, hidden_channels=8)
        >>> model = HCFlow(config).eval()
        >>> model.sample(torch.rand(1, 3, 4, 4), 0.8, 2, torch.Generator()).shape
        torch.Size([2, 1, 3, 16, 16])
    """

    def __init__(self, config: HCFlowConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
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
            y, lr_quant, latents, logdet_trunk, logdet_cond, priors, lr_log_prob,
            hr.shape[2] * hr.shape[3], deq_logdet,
        )  # fmt: skip

    def downscale(self, hr: Tensor) -> Tensor:
        """The flow's LR ``y`` of ``hr`` (the trunk alone; unclamped and unquantized: store
        :func:`quantize_8bit` of it). ``hr``'s sides must be multiples of the scale."""
        return self.trunk.encode(hr)[0]

    def conditioning(self, lr: Tensor) -> list[Tensor]:
        """What depends on the LR alone: the coarsest level's features (one per image)."""
        return [self.levels[-1].features(lr)]

    def condition(self, lr: Tensor, keep: bool = True) -> list[Tensor]:
        """:meth:`conditioning` for many decodes: the finer levels are conditioned on each
        sample's own coarser result, so only the coarsest features are shared (``keep`` is
        for the common interface: there is nothing more to keep)."""
        return self.conditioning(lr)

    def decode(
        self, lr: Tensor, latents: list[Tensor], *, conds: list[Tensor] | None = None,
        logdet: bool = True,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """``(hr, logdet)`` from the LR (inserted as the flow's ``y`` as it is) and the
        normalized latents (finest first); ``hr`` is not clamped.

        The latents may hold ``k`` samples per image (batch ``k * B``, sample-major) while
        ``lr`` (and ``conds`` from :meth:`conditioning`) hold each image once. Without
        ``logdet`` the log-det work is skipped and ``None`` returned in its place.
        """
        if not logdet:
            with without_logdet():
                return self.decode(lr, latents, conds=conds)[0], None
        if len(latents) != self.config.levels:
            raise ValueError(f"expected {self.config.levels} latent tensors, got {len(latents)}")
        batch = latents[0].shape[0]
        x = broadcast_batch(lr, batch).expand(batch, *lr.shape[1:])
        logdet = lr.new_zeros(batch)
        coarser: list[Tensor] = []
        for level in reversed(range(self.config.levels)):
            flow = self.levels[level]
            if level == self.config.levels - 1:
                features = (conds or self.conditioning(lr))[0]
                features = broadcast_batch(features, batch).expand(batch, *features.shape[1:])
                part, d = flow.decode_with_features(latents[level], features)
            else:
                part, features, d = flow.decode(latents[level], level_condition(x, coarser))
            coarser.insert(0, features)
            x, d_trunk = self.trunk.decode_level(level, x, part)
            logdet = logdet + d + d_trunk
        return x, logdet

    def sample_latents(
        self, shapes: list[tuple[int, ...]], temperature: float | Sequence[float],
        generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> list[Tensor]:  # fmt: skip
        """Latents ``N(0, T^2)`` (finest first), drawn coarsest first as the original does;
        ``temperature`` may give one value per latent tensor."""
        temps = (
            [float(temperature)] * len(shapes) if isinstance(temperature, int | float)
            else [float(t) for t in temperature]
        )  # fmt: skip
        if len(temps) != len(shapes):
            raise ValueError(f"need one temperature per latent tensor ({len(shapes)})")
        drawn = {
            i: sample_normal(shapes[i], temps[i], generator=generator, dtype=dtype, device=device)
            for i in reversed(range(len(shapes)))
        }
        return [drawn[i] for i in range(len(shapes))]

    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        """Latent shapes (finest first) for ``n`` samples of each image in ``lr``."""
        b, _, h, w = lr.shape
        levels = self.config.levels
        return [
            (b * n, c, h * 2 ** (levels - 1 - level), w * 2 ** (levels - 1 - level))
            for level, c in enumerate(self.part_channels)
        ]

    @torch.no_grad()
    def sample(
        self, lr: Tensor, temperature: float = 0.9, n: int = 1,
        generator: torch.Generator | None = None, *, batch_size: int | None = None,
    ) -> Tensor:  # fmt: skip
        """``n`` samples per LR image, ``(n, B, 3, H, W)`` clamped to ``[0, 1]``.

        The temperature scales the noise around each level's *predicted* mean (0: the means).
        Noise is drawn sample by sample, coarsest level first, as the original's sampler; the
        coarsest level's LR features are computed once, and ``batch_size`` samples (default:
        all) are decoded together.
        """
        shapes = self.latent_shapes(lr)
        conds = self.conditioning(lr)
        draws = [
            [z.to(lr.device) for z in self.sample_latents(shapes, temperature, generator,
                                                          dtype=lr.dtype)]
            for _ in range(n)
        ]  # fmt: skip
        per_batch = max(1, batch_size or n)
        outs = []
        for start in range(0, n, per_batch):
            group = draws[start : start + per_batch]
            latents = [torch.cat([d[i] for d in group]) for i in range(len(shapes))]
            hr = self.decode(lr, latents, conds=conds, logdet=False)[0].clamp(0, 1)
            outs.append(hr.view(len(group), *lr.shape[:1], *hr.shape[1:]))
        return torch.cat(outs)
