"""Activation normalization (Glow, Kingma & Dhariwal 2018)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from srflow.flows.base import FlowLayer, batch_constant


class ActNorm2d(FlowLayer):
    r"""Per-channel affine normalization :math:`y = (x + b) \odot e^{s}`.

    ``log|det| = H W \sum_c s_c``. Parameters ``bias`` and ``logs`` have shape ``(1, C, 1, 1)``
    (the names of the original SRFlow checkpoints). The data-dependent initialization of Glow
    (``b = -mean``, ``s = log(1 / (std + 1e-6))`` over batch and space) runs only inside
    :func:`data_dependent_init`, never as a hidden side effect of ``forward``.

    Example:
        >>> layer = ActNorm2d(3)
        >>> x = torch.randn(2, 3, 4, 4)
        >>> y, logdet = layer(x)
        >>> torch.allclose(layer.inverse(y)[0], x)
        True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self._init_pending = False

    @torch.no_grad()
    def initialize_from(self, x: Tensor) -> None:
        """Set ``bias``/``logs`` so that ``x`` is normalized to zero mean, unit std per channel."""
        bias = -x.mean(dim=(0, 2, 3), keepdim=True)
        var = ((x + bias) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        self.bias.copy_(bias)
        self.logs.copy_(torch.log(1.0 / (var.sqrt() + 1e-6)))

    def normalize(self, x: Tensor) -> Tensor:
        """Apply the affine map without computing the log-det (for use inside sub-networks)."""
        if self._init_pending:
            self.initialize_from(x)
            self._init_pending = False
        return (x + self.bias) * torch.exp(self.logs)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = self.normalize(x)
        return y, batch_constant(self.logs.sum() * (x.shape[2] * x.shape[3]), x)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = y * torch.exp(-self.logs) - self.bias
        return x, batch_constant(-self.logs.sum() * (y.shape[2] * y.shape[3]), y)


@contextmanager
def data_dependent_init(module: nn.Module) -> Iterator[None]:
    """Within this context, the next forward of each ActNorm initializes it from its input.

    Run one forward pass of a training batch inside the context (Glow's initialization)::

        with data_dependent_init(model):
            model.log_prob(hr, lr)
    """
    norms = [m for m in module.modules() if isinstance(m, ActNorm2d)]
    for norm in norms:
        norm._init_pending = True
    try:
        yield
    finally:
        for norm in norms:
            norm._init_pending = False
