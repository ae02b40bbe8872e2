"""Check each output against its LR and, on request, repair the ones that fail.

Every super-resolution the pipeline returns goes through :class:`OutputCheck`: the LR check
of :mod:`srflow.metrics.lr_check` and its warning for the outputs that fail it. With
``repair`` the failing outputs are redrawn first: the sample's latents (the very ones the
pipeline drew, :meth:`~srflow.inference.pipeline.SuperResolver.sample_codes`) are redrawn
only over the failing LR blocks (dilated by one block; the whole sample for a model without
a local receptive field) at ``REPAIR_FACTOR`` times the temperature, then that again, up to
``MAX_TRIES`` times, the last try at temperature 0 there. Everything outside the redrawn
region stays as it was (for models with a local receptive field). How often it is needed at
each temperature is in docs/robustness.md#lr-consistency.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from srflow.divergence import DivergenceWarning, InconsistentOutputWarning
from srflow.latent import decode_code, resample_code
from srflow.metrics.lr_check import BLOCK, LRConsistency, lr_consistency
from srflow.models.temperature import Temperature

if TYPE_CHECKING:
    from srflow.inference.pipeline import SuperResolver

#: Each redraw multiplies the temperature by this.
REPAIR_FACTOR = 0.7
#: Redraws at most; the last one at temperature 0 over the failing region.
MAX_TRIES = 4


@dataclass(frozen=True)
class Repair:
    """What repairing one output took.

    Attributes:
        tries: redraws made.
        temperature: the temperature of the last redraw.
        fixed: whether the output passes the LR check now.
    """

    tries: int
    temperature: Temperature
    fixed: bool

    def describe(self) -> str:
        """``redrawn twice where it failed the LR check, at temperature 0.39 at last``."""
        times = {1: "once", 2: "twice"}.get(self.tries, f"{self.tries} times")
        t = self.temperature
        shown = "-".join(f"{v:.2f}" for v in t) if isinstance(t, list) else f"{t:.2f}"
        outcome = "" if self.fixed else "; still not consistent"
        return f"redrawn {times} where it failed the LR check, last at temperature {shown}" + (
            outcome
        )


#: ``(temperature index, sample index, repair)`` for each output that was repaired.
RepairFn = Callable[[int, int, Repair], None]


def _scaled(temperature: Temperature, factor: float) -> Temperature:
    if isinstance(temperature, list):
        return [t * factor for t in temperature]
    return temperature * factor


def _redraw_mask(found: LRConsistency, scale: int) -> Tensor:
    """The HR mask over the failing LR blocks, one block wider on each side."""
    grown = F.max_pool2d(found.failing[None, None].float(), 2 * BLOCK + 1, 1, BLOCK)[0, 0]
    return grown.bool().repeat_interleave(scale, 0).repeat_interleave(scale, 1)


class OutputCheck:
    """The LR check (and optional repair) of the outputs of one pipeline call."""

    def __init__(
        self, resolver: SuperResolver, rgb: Tensor, seed: int | None, noise_level: float | None,
        repair: bool, on_repair: RepairFn | None,
    ) -> None:  # fmt: skip
        self.resolver, self.rgb, self.seed = resolver, rgb, seed
        self.noise_level, self.repair, self.on_repair = noise_level, repair, on_repair

    def finish(self, index: int, temperature: Temperature, out: Tensor) -> Tensor:
        """Check ``out`` (the samples of temperature ``index``), repair the failing ones when
        asked (in place), and warn for those that still fail."""
        model = self.resolver.model
        found = lr_consistency(out, self.rgb[None], model.consistency_lr)
        if self.repair and not all(c.consistent for c in found):
            found = self._repair(index, temperature, out, found)
        if not all(c.consistent for c in found):
            lines = tuple("" if c.consistent else c.describe() for c in found)
            warnings.warn(InconsistentOutputWarning(lines, temperature), stacklevel=4)
        return out

    def _repair(
        self, index: int, temperature: Temperature, out: Tensor, found: list[LRConsistency]
    ) -> list[LRConsistency]:
        resolver, model = self.resolver, self.resolver.model
        codes = resolver.sample_codes(self.rgb, temperature, out.shape[0], self.seed,
                                      self.noise_level)  # fmt: skip
        prepared = resolver.sampler.prepare(codes[0].lr, noise_level=self.noise_level)
        local = model.capabilities.local_receptive_field
        for j, current in enumerate(found):
            if current.consistent:
                continue
            code, t = codes[j], temperature
            generator = torch.Generator().manual_seed(((self.seed or 0) * 1_000_003 + j) % 2**63)
            tries = 0
            while not current.consistent and tries < MAX_TRIES:
                tries += 1
                t = _scaled(t, REPAIR_FACTOR) if tries < MAX_TRIES else _scaled(t, 0.0)
                mask = _redraw_mask(current, resolver.scale) if local else None
                if mask is not None:
                    mask = mask[: code.padded_size[0], : code.padded_size[1]]
                    pad = (0, code.padded_size[1] - mask.shape[1], 0,
                           code.padded_size[0] - mask.shape[0])  # fmt: skip
                    mask = F.pad(mask, pad)
                code = resample_code(model, code, t, generator, mask)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DivergenceWarning)
                    image = decode_code(model, code, prepared)[0]
                current = lr_consistency(image[None], self.rgb[None], model.consistency_lr)[0]
            out[j] = image.clamp(0, 1).to(out)
            found[j] = current
            if self.on_repair is not None:
                self.on_repair(index, j, Repair(tries, t, current.consistent))
        return found
