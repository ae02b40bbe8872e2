"""Calibrated inverse bounds: stop an exploding inverse without touching normal outputs.

SRFlow's affine scales ``sigmoid(s + 2) + eps`` can sit near ``eps = 1e-4`` where the
training data needed strong contraction. Decoding divides by them; at high temperatures or on
inputs unlike the training images, one layer's overshoot feeds the next layer's scale network
and the values run away (to ``1e20`` and beyond, then ``inf``/``NaN``). A flow layer's inverse
output on images that decode normally stays in a range: calibrating that range per layer on
the training images and clamping to ``margin`` times it leaves such decodes unchanged
(clamping a value inside its range is the identity) while cutting the feedback loop of a
diverging one. ``docs/robustness.md`` has the measurements on photos and non-photos for the
embedded model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from srflow.divergence import DIVERGED_BEYOND

if TYPE_CHECKING:
    from srflow.models.conditional_flow import ConditionalFlow
    from srflow.models.srflow import SRFlow

logger = logging.getLogger(__name__)

#: Factor on the largest calibrated ``|value|`` of each layer.
DEFAULT_MARGIN = 2.0
#: The checkpoint metadata key that holds the bounds (a JSON list, one per flow layer).
BOUNDS_KEY = "inverse_bounds"


def bounds_metadata(flow: ConditionalFlow) -> dict[str, str]:
    """The checkpoint metadata of ``flow``'s bounds (nothing when it has none)."""
    if flow.inverse_bounds is None:
        return {}
    return {BOUNDS_KEY: json.dumps(list(flow.inverse_bounds))}


def load_bounds_metadata(flow: ConditionalFlow, metadata: Mapping[str, str]) -> None:
    """Set ``flow``'s bounds from checkpoint metadata (unchanged when there are none).

    Raises:
        ValueError: malformed bounds, or bounds that do not fit the flow's layers.
    """
    text = metadata.get(BOUNDS_KEY)
    if text is None:
        return
    try:
        bounds = tuple(float(b) for b in json.loads(text))
    except (ValueError, TypeError, RecursionError):
        raise ValueError(f"malformed {BOUNDS_KEY} metadata") from None
    if len(bounds) != len(flow.layers) or not all(b > 0 for b in bounds):
        raise ValueError(f"{BOUNDS_KEY} does not fit the model's flow layers")
    flow.inverse_bounds = bounds


@torch.no_grad()
def calibrate_inverse_bounds(
    model: SRFlow, lr_images: Iterable[Tensor], temperatures: Sequence[float] = (0.0, 0.8, 1.0),
    *, seed: int = 0, margin: float = DEFAULT_MARGIN,
) -> tuple[float, ...]:  # fmt: skip
    """Per flow layer, ``margin`` times the largest ``|value|`` its inverse outputs when
    decoding samples of ``lr_images`` (``(3, h, w)`` training LRs) at ``temperatures``.

    Decodes that diverge anyway (an output value beyond
    :data:`~srflow.divergence.DIVERGED_BEYOND` of mid-grey) are left out: they are what the
    bounds are for. Set the result as ``model.flow.inverse_bounds``; a saved checkpoint keeps it.

    Raises:
        ValueError: if no decode stayed in range (nothing to calibrate on).
    """
    if margin < 1:
        raise ValueError(f"margin must be at least 1, got {margin}")
    flow = model.flow
    saved, flow.inverse_bounds = flow.inverse_bounds, None
    largest = [0.0] * len(flow.layers)
    used = 0
    try:
        for lr in lr_images:
            batch = lr.unsqueeze(0).to(next(model.parameters()))
            conds = model.features(batch)
            shapes = model.latent_shapes(batch)
            for temperature in temperatures:
                generator = torch.Generator().manual_seed(seed)
                latents = model.sample_latents(shapes, temperature, generator)
                seen = [0.0] * len(flow.layers)

                def observe(index: int, x: Tensor, seen: list[float] = seen) -> None:
                    seen[index] = float(x.abs().max())

                hr = flow.decode([z.to(batch) for z in latents], conds, observe).output
                assert isinstance(hr, Tensor)
                if (hr - 0.5).abs().le(DIVERGED_BEYOND).all():
                    largest = [max(a, b) for a, b in zip(largest, seen, strict=True)]
                    used += 1
    finally:
        flow.inverse_bounds = saved
    if not used:
        raise ValueError("every calibration decode diverged: no range to calibrate on")
    logger.info("inverse bounds calibrated on %d decodes", used)
    return tuple(margin * max(b, 1e-6) for b in largest)
