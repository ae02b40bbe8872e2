"""Factor-out with a learned conditional Gaussian prior (Glow's ``split2d``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srflow.flows.distributions import gaussian_log_prob
from srflow.flows.nets import ZeroConv2d


class SplitPrior(nn.Module):
    r"""Keep the first half of the channels and factor out the rest.

    A zero-initialized convolution of the kept half predicts ``(mean, logs)`` of the factored-out
    half ``z2`` (interleaved: even channels mean, odd channels log-std). The latent stored for
    ``z2`` is the normalized ``eps = (z2 - mean) / exp(logs)``, so that ``eps ~ N(0, 1)`` under
    the model and a temperature ``T`` draws ``eps ~ N(0, T^2)``.

    This is not a :class:`~srflow.flows.base.FlowLayer`: it returns the log-density of ``z2``
    separately instead of a log-det.

    Example:
        >>> split = SplitPrior(4)
        >>> x = torch.randn(2, 4, 3, 3)
        >>> kept, eps, log_p = split(x)
        >>> torch.allclose(split.inverse(kept, eps)[0], x)
        True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.factored = int(round(channels * 0.5))
        self.kept = channels - self.factored
        self.prior = ZeroConv2d(self.kept, 2 * self.factored)

    def mean_logs(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        """The prior of the factored-out half: ``(mean, log-std)`` predicted from ``kept``."""
        h = self.prior(kept)
        return h[:, 0::2], h[:, 1::2]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(kept, eps, log_p)`` where ``log_p`` is the log-density of ``z2``."""
        kept, z2 = x[:, : self.kept], x[:, self.kept :]
        mean, logs = self.mean_logs(kept)
        eps = (z2 - mean) / torch.exp(logs)
        return kept, eps, gaussian_log_prob(z2, mean, logs)

    def inverse(self, kept: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log_p)`` with ``x = concat(kept, mean + exp(logs) * eps)``."""
        mean, logs = self.mean_logs(kept)
        z2 = mean + torch.exp(logs) * eps.to(mean.dtype)
        return torch.cat([kept, z2], dim=1), gaussian_log_prob(z2, mean, logs)

    def eps_shape(self, kept_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the latent factored out from a kept tensor of ``kept_shape``."""
        return (kept_shape[0], self.factored, *kept_shape[2:])
