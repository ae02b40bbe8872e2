"""The one interface inference, evaluation and the latent tools use, whatever the family.

Both :class:`~srflow.models.srflow.SRFlow` (SRFlow, SRFlow-DA) and
:class:`~srflow.models.hcflow.HCFlow` satisfy :class:`FlowModel`: conditioning computed once
per LR image, latent shapes, latents drawn at a temperature, decoding of ``k`` samples per
image from one conditioning, and sampling. What differs (SRFlow's encoder, HCFlow's
HR -> LR trunk) stays on the classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

Temperature = float | Sequence[float]


class FlowConfig(Protocol):
    """What every model configuration tells its users."""

    @property
    def scale(self) -> int:
        """The super-resolution factor."""
        ...

    @property
    def size_multiple_lr(self) -> int:
        """LR sides must be multiples of this (inputs are padded to it)."""
        ...


@runtime_checkable
class FlowModel(Protocol):
    """A conditional flow that super-resolves: ``p(HR | LR)`` sampled through latents.

    Example:
        >>> from srflow.config.presets import load_preset
        >>> from srflow.models.srflow import SRFlow
        >>> isinstance(SRFlow(load_preset("tiny")), FlowModel)
        True
    """

    config: FlowConfig

    def conditioning(self, lr: Tensor) -> list[Tensor]:
        """What depends on the LR alone, computed once per image (``(B, ...)`` tensors)."""
        ...

    def condition(self, lr: Tensor, keep: bool = True) -> Sequence[object]:
        """:meth:`conditioning` prepared for many decodes (``decode(..., conds=...)``): what a
        family can keep between batches, temperatures and calls is kept (``keep=False``: the
        same results for a single decode, without keeping what it would never reuse)."""
        ...

    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        """Shapes of the latents of ``n`` samples of each image in ``lr``."""
        ...

    def sample_latents(
        self, shapes: list[tuple[int, ...]], temperature: Temperature,
        generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> list[Tensor]:  # fmt: skip
        """Latents ``N(0, T^2)`` of the given shapes (the family's drawing order)."""
        ...

    def decode(
        self, lr: Tensor, latents: list[Tensor], *, conds: Sequence[object] | None = None,
        logdet: bool = True,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """``(hr, logdet)``; the latents may hold ``k`` samples per image of ``lr``. With
        ``logdet=False`` the log-det work is skipped and ``None`` returned in its place."""
        ...

    def sample(
        self, lr: Tensor, temperature: float = 0.8, n: int = 1,
        generator: torch.Generator | None = None,
    ) -> Tensor:  # fmt: skip
        """``n`` samples of each image, ``(n, B, 3, H, W)`` in ``[0, 1]``."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """The module's parameters (device and dtype come from them)."""
        ...

    def eval(self) -> nn.Module:
        """Inference mode."""
        ...
