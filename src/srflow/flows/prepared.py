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
    conditioning-only terms of its layers, computed on first use and kept.

    Example:
        >>> cond = PreparedCond(torch.ones(1, 2, 3, 3))
        >>> layer = nn.Identity()
        >>> cond.term(layer, lambda c: c.sum()).item(), cond.term(layer, lambda c: 0).item()
        (18.0, 18.0)
    """

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor
        self._terms: dict[tuple[int, str], object] = {}

    @property
    def shape(self) -> torch.Size:
        """The conditioning tensor's shape."""
        return self.tensor.shape

    def term(self, layer: nn.Module, compute: Callable[[Tensor], T], kind: str = "") -> T:
        """``compute(tensor)`` for ``layer`` (and ``kind``, when a layer keeps several),
        computed once (without gradients) and kept."""
        key = (id(layer), kind)
        if key not in self._terms:
            with torch.no_grad():
                self._terms[key] = compute(self.tensor)
        return self._terms[key]  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._terms)


def prepare(conds: list[Tensor]) -> list[PreparedCond]:
    """Wrap each level's conditioning tensor (see :class:`PreparedCond`)."""
    return [c if isinstance(c, PreparedCond) else PreparedCond(c) for c in conds]
