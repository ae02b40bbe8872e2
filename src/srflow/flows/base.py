"""The invertible-layer contract and the sequential container.

Sign convention (as FrEIA and zuko): ``forward`` maps data towards the latent space and
returns ``log|det df/dx|`` per sample; ``inverse`` maps back and returns
``log|det df^-1/dy| = -log|det df/dx|``. Log-dets have shape ``(B,)``.
"""

from __future__ import annotations

import abc

from torch import Tensor, nn


def sum_except_batch(x: Tensor) -> Tensor:
    """Sum every dimension but the first: ``(B, ...) -> (B,)``."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


class FlowLayer(nn.Module, abc.ABC):
    """An invertible layer ``y = f(x | cond)``.

    Subclasses implement :meth:`forward` and :meth:`inverse`; each returns the transformed
    tensor and its log-det contribution of shape ``(B,)``.
    """

    @abc.abstractmethod
    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(f(x), log|det df/dx|)``."""

    @abc.abstractmethod
    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(f^-1(y), log|det df^-1/dy|)``."""


class FlowSequence(FlowLayer):
    """Layers applied in order; log-dets are summed. ``inverse`` runs them in reverse.

    Example:
        >>> import torch
        >>> from srflow.flows.actnorm import ActNorm2d
        >>> seq = FlowSequence([ActNorm2d(4), ActNorm2d(4)])
        >>> y, logdet = seq(torch.randn(2, 4, 3, 3))
        >>> tuple(logdet.shape)
        (2,)
    """

    def __init__(self, layers: list[FlowLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, step_logdet = layer(x, cond)
            logdet = logdet + step_logdet
        return x, logdet

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = y.new_zeros(y.shape[0])
        for layer in reversed(self.layers):
            y, step_logdet = layer.inverse(y, cond)
            logdet = logdet + step_logdet
        return y, logdet


def batch_constant(value: Tensor, x: Tensor) -> Tensor:
    """Broadcast a scalar log-det to ``(B,)`` in ``x``'s dtype and device."""
    return value.to(x.dtype).expand(x.shape[0]).clone()
