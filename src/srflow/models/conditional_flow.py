"""Multi-level conditional Glow: per level squeeze -> transitional steps -> K steps -> split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from srflow.flows.nets import SubnetSpec
from srflow.flows.split import SplitPrior
from srflow.flows.squeeze import Squeeze2d
from srflow.flows.step import FlowStep, NoiseCondition
from srflow.models.srflow_config import FlowConfig


@dataclass(frozen=True)
class FlowPass:
    """Result of running the flow in either direction.

    Attributes:
        output: latents (encode: split latents level by level, then the top latent) or the
            reconstructed image (decode).
        logdet: ``(B,)`` sum of the layers' log-determinants in the direction run.
        split_log_prob: ``(B,)`` log-density of the factored-out tensors under their priors.
    """

    output: list[Tensor] | Tensor
    logdet: Tensor
    split_log_prob: Tensor


def subnet_spec(config: FlowConfig) -> SubnetSpec:
    """The coupling sub-network structure of a flow config."""
    return SubnetSpec(
        config.subnet, config.hidden_channels, config.subnet_depth, config.subnet_kernel
    )


class ConditionalFlow(nn.Module):
    """The flow network of SRFlow and SRFlow-DA (``FlowUpsamplerNet``) as a list of layers.

    ``layers`` keeps the original layer order and numbering, so parameters line up with the
    original checkpoints: for each level a :class:`Squeeze2d` (by ``squeeze_factor``),
    ``transitional_steps`` unconditional :class:`FlowStep`\\ s, ``steps_per_level``
    conditional ones (with a :class:`SplitPrior` after each step index in
    ``split_after_steps``), then a :class:`SplitPrior` if the level is in ``split_levels``.
    Level ``l`` is conditioned on ``conds[l - 1]``.

    Args:
        config: the flow's structure.
        cond_channels: channels of each conditioning tensor.
        in_channels: image channels.
        generator: random source for initial weights.
        noise: NCSR's noise-conditioned part of the conditional steps: ``(map channels,
            applies(level, step))``, whether step ``step`` (0-based) of level ``level``
            (1-based) applies it; ``None``: no such part.
    """

    def __init__(
        self,
        config: FlowConfig,
        cond_channels: int,
        in_channels: int = 3,
        generator: torch.Generator | None = None,
        noise: tuple[int, Callable[[int, int], bool]] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList()
        self.layer_levels: list[int] = []
        subnet, eps = subnet_spec(config), config.affine_eps
        channels = in_channels
        for level in range(1, config.levels + 1):
            channels *= config.squeeze_factor**2
            new: list[nn.Module] = [Squeeze2d(config.squeeze_factor)]
            new += [
                FlowStep(channels, None, subnet, eps, generator)
                for _ in range(config.transitional_steps)
            ]
            for step in range(config.steps_per_level):
                noise_channels, applies = noise if noise is not None else (None, None)
                new.append(FlowStep(
                    channels, cond_channels, subnet, eps, generator, noise_channels,
                    applies is not None and applies(level, step),
                ))  # fmt: skip
                if step in config.split_after_steps:
                    new.append(split := SplitPrior(channels))
                    channels = split.kept
            if level in config.split_levels:
                new.append(split := SplitPrior(channels))
                channels = split.kept
            self.layers.extend(new)
            self.layer_levels += [level] * len(new)
        self.top_channels = channels
        #: Per layer (in :attr:`layers` order), the largest ``|value|`` its inverse may output,
        #: or ``None`` (unbounded): calibrated on training images
        #: (:mod:`srflow.models.inverse_bounds`) so that in-distribution decoding is unchanged
        #: while an exploding inverse is stopped.
        self.inverse_bounds: tuple[float, ...] | None = None

    def encode(self, x: Tensor, conds: Sequence[Tensor | NoiseCondition]) -> FlowPass:
        """Map an HR image ``(B, C, H, W)`` to its latents."""
        logdet = x.new_zeros(x.shape[0])
        split_log_prob = x.new_zeros(x.shape[0])
        latents = []
        for layer, level in zip(self.layers, self.layer_levels, strict=True):
            if isinstance(layer, SplitPrior):
                x, eps, log_p = layer(x)
                latents.append(eps)
                split_log_prob = split_log_prob + log_p
            else:
                x, d = layer(x, conds[level - 1])
                logdet = logdet + d
        latents.append(x)
        return FlowPass(latents, logdet, split_log_prob)

    def decode(
        self, latents: list[Tensor], conds: Sequence[Tensor | NoiseCondition],
        observe: Callable[[int, Tensor], None] | None = None,
    ) -> FlowPass:  # fmt: skip
        """Map latents (in :meth:`encode` order) back to an HR image, each layer's output
        limited to :attr:`inverse_bounds` when set; ``observe(index, output)`` sees each
        layer's output before the bound (for calibrating it). ``conds`` may hold each image
        once while the latents hold ``k`` samples of each (batch ``k * B``, sample-major)."""
        n_splits = sum(isinstance(m, SplitPrior) for m in self.layers)
        if len(latents) != n_splits + 1:
            raise ValueError(f"expected {n_splits + 1} latent tensors, got {len(latents)}")
        x = latents[-1]
        remaining = list(latents[:-1])
        logdet = x.new_zeros(x.shape[0])
        split_log_prob = x.new_zeros(x.shape[0])
        bounds = self.inverse_bounds
        for index in reversed(range(len(self.layers))):
            layer, level = self.layers[index], self.layer_levels[index]
            if isinstance(layer, SplitPrior):
                x, log_p = layer.inverse(x, remaining.pop())
                split_log_prob = split_log_prob + log_p
            else:
                x, d = layer.inverse(x, conds[level - 1])
                logdet = logdet + d
            if observe is not None:
                observe(index, x)
            if bounds is not None:
                x = x.clamp(-bounds[index], bounds[index])
        return FlowPass(x, logdet, split_log_prob)

    def latent_shapes(self, batch: int, hr_hw: tuple[int, int]) -> list[tuple[int, ...]]:
        """Shapes of the latents (encode order) for an HR image of size ``hr_hw``."""
        h, w = hr_hw
        shapes = []
        for layer in self.layers:
            if isinstance(layer, Squeeze2d):
                h, w = h // layer.factor, w // layer.factor
            elif isinstance(layer, SplitPrior):
                shapes.append((batch, layer.factored, h, w))
        shapes.append((batch, self.top_channels, h, w))
        return shapes

    def layer_type_names(self) -> list[str]:
        """Type of each layer in order: squeeze, transition, step or split."""
        names = {Squeeze2d: "squeeze", SplitPrior: "split"}
        return [
            names.get(type(m), "step" if getattr(m, "is_conditional", False) else "transition")
            for m in self.layers
        ]
