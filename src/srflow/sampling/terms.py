"""Prepare once, sample many: the conditioning-only terms of one level's layers.

Every conditional layer of SRFlow and SRFlow-DA computes part of its work from the
conditioning tensor alone: an affine injector's shift and scale, the conditioning part of a
coupling's first convolution (linear in its input channels). The sampling twin keeps each such
term in the :class:`~srflow.models.contract.Conditioning` after its first use, so further
batches, temperatures and calls for the same image skip that work (``keep=False``: computed
the same way but not kept, for a single decode, which would never reuse them; kept terms take
memory for every layer at once, e.g. 1.8 GB for SRFlow DF2K 4x on a 256x256 LR).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

T = TypeVar("T")


class LevelTerms:
    """One level's conditioning tensor ``(B, C, H, W)`` (each image once) and the
    conditioning-only terms of its layers, kept in ``cache`` (shared by the levels of one
    conditioning: keys name the layer).

    Example:
        >>> terms = LevelTerms(torch.ones(1, 2, 3, 3), {}, keep=True)
        >>> layer = nn.Identity()
        >>> terms.term(layer, lambda c: c.sum()).item(), terms.term(layer, lambda c: 0).item()
        (18.0, 18.0)
    """

    def __init__(self, tensor: Tensor, cache: dict[tuple[int, str], object], keep: bool) -> None:
        self.tensor = tensor
        self.cache = cache
        self.keep = keep

    def term(self, layer: nn.Module, compute: Callable[[Tensor], T], kind: str = "") -> T:
        """``compute(tensor)`` for ``layer`` (and ``kind``, when a layer keeps several),
        computed once (without gradients) and kept (or, with ``keep=False``, each time)."""
        key = (id(layer), kind)
        if key in self.cache:
            return self.cache[key]  # type: ignore[return-value]
        with torch.no_grad():
            value = compute(self.tensor)
        if self.keep:
            self.cache[key] = value
        return value
