"""Decode a flow's layer stack with the sampling twin's layers (:mod:`srflow.sampling.layers`).

The flow of SRFlow, SRFlow-DA (and any family built of the same layers) is one list of layers
with the flow level of each; decoding runs it backwards. Flow steps and split priors take
their fast inverse; other layers (squeezes, or layers without a fast form) their reference
inverse. Each layer's output is limited to the calibrated inverse bounds when the flow has
them, as the reference decode limits it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from srflow.flows.split import SplitPrior
from srflow.flows.step import FlowStep, NoiseCondition, split_condition
from srflow.sampling.layers import split_inverse, step_inverse
from srflow.sampling.terms import LevelTerms


@torch.no_grad()
def decode_stack(
    layers: Sequence[nn.Module], layer_levels: Sequence[int], latents: list[Tensor],
    conds: Sequence[Tensor | NoiseCondition], cache: dict[tuple[int, str], object], keep: bool,
    bounds: Sequence[float] | None,
) -> Tensor:  # fmt: skip
    """The image of ``latents`` (encode order: split latents, then the top latent).

    Args:
        layers, layer_levels: the flow's layers in encode order and the level (1-based) of each.
        latents: ``k`` samples of each image (batch ``k * B``, sample-major).
        conds: each level's conditioning (its features, with a noise map for NCSR), each image
            once.
        cache, keep: where conditioning-only terms are kept, and whether
            (:class:`~srflow.sampling.terms.LevelTerms`).
        bounds: per layer, the largest ``|value|`` its inverse may output, or ``None``.
    """
    n_splits = sum(isinstance(m, SplitPrior) for m in layers)
    if len(latents) != n_splits + 1:
        raise ValueError(f"expected {n_splits + 1} latent tensors, got {len(latents)}")
    split = [split_condition(c) for c in conds]
    terms = [LevelTerms(f, cache, keep) for f, _ in split]
    noise_terms = [None if m is None else LevelTerms(m, cache, keep) for _, m in split]
    x = latents[-1]
    remaining = list(latents[:-1])
    for index in reversed(range(len(layers))):
        layer, level = layers[index], layer_levels[index]
        if isinstance(layer, SplitPrior):
            x = split_inverse(layer, x, remaining.pop())
        elif isinstance(layer, FlowStep):
            x = step_inverse(layer, x, terms[level - 1], noise_terms[level - 1])
        else:
            x, _ = layer.inverse(x, conds[level - 1])  # type: ignore[operator]
        if bounds is not None:  # each layer's output is a new tensor: clamped in place
            x = x.clamp_(-bounds[index], bounds[index])
    return x
