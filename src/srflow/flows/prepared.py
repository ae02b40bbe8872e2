"""Prepare once, sample many: a level's conditioning with its conditioning-only terms.

Every conditional layer of SRFlow and SRFlow-DA computes part of its work from the
conditioning tensor alone: an affine injector's shift and scale, the conditioning part of a
coupling's first convolution (linear in its input channels). :class:`PreparedCond` wraps one
level's conditioning tensor and keeps each layer's term after its first use, so further
batches, temperatures and calls for the same image skip that work. It is for inference (the
terms are computed once, without a gradient history to share).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

T = TypeVar("T")


class PreparedCond:
    """One level's conditioning tensor ``(B, C, H, W)`` (each image once) and the
    conditioning-only terms of its layers, computed on first use and kept (``keep=False``:
    computed the same way but not kept, for a single decode, which would never reuse them;
    kept terms take memory for every layer at once, e.g. 1.8 GB for SRFlow DF2K 4x on a
    256x256 LR).

    Example:
        >>> cond = PreparedCond(torch.ones(1, 2, 3, 3))
        >>> layer = nn.Identity()
        >>> cond.term(layer, lambda c: c.sum()).item(), cond.term(layer, lambda c: 0).item()
        (18.0, 18.0)
    """

    def __init__(self, tensor: Tensor, keep: bool = True) -> None:
        self.tensor = tensor
        self.keep = keep
        self._terms: dict[tuple[int, str], object] = {}

    @property
    def shape(self) -> torch.Size:
        """The conditioning tensor's shape."""
        return self.tensor.shape

    def term(self, layer: nn.Module, compute: Callable[[Tensor], T], kind: str = "") -> T:
        """``compute(tensor)`` for ``layer`` (and ``kind``, when a layer keeps several),
        computed once (without gradients) and kept (or, with ``keep=False``, each time)."""
        key = (id(layer), kind)
        if key in self._terms:
            return self._terms[key]  # type: ignore[return-value]
        with torch.no_grad():
            value = compute(self.tensor)
        if self.keep:
            self._terms[key] = value
        return value

    def __len__(self) -> int:
        return len(self._terms)


def prepare(conds: list[Tensor], keep: bool = True) -> list[PreparedCond]:
    """Wrap each level's conditioning tensor (see :class:`PreparedCond`)."""
    return [c if isinstance(c, PreparedCond) else PreparedCond(c, keep) for c in conds]
