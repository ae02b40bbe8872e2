"""SRFlow's sampling twin: the same flow decoded by :mod:`srflow.sampling` (folded and packed
weights, conditioning-only terms kept per image), equal to :meth:`SRFlow.decode` within float
rounding (tests/test_sampling_twin.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from srflow.models.contract import Conditioning, as_conditioning
from srflow.models.twin import SamplingTwin
from srflow.sampling.stack import decode_stack

if TYPE_CHECKING:
    from srflow.models.srflow import SRFlow


class SRFlowSamplingTwin(SamplingTwin):
    """Decodes an :class:`~srflow.models.srflow.SRFlow` (or SRFlow-DA) model's latents fast.

    Example:
        >>> import torch
        >>> from srflow.families import load_preset
        >>> from srflow.models.srflow import SRFlow
        >>> model = SRFlow(load_preset("tiny")).eval()
        >>> twin = model.sampling_twin()
        >>> lr = torch.rand(1, 3, 8, 8)
        >>> z = model.sample_latents(model.latent_shapes(lr), 0.5, torch.Generator())
        >>> fast, _ = twin.decode(twin.prepare(lr), z, logdet=False)
        >>> torch.allclose(fast, model.decode(lr, z)[0], atol=1e-5)
        True
    """

    model: SRFlow

    def decode(
        self, conditioning: Conditioning | Tensor, latents: list[Tensor], *, logdet: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        if logdet:
            return self.model.decode(conditioning, latents)
        model = self.model
        prepared = as_conditioning(model, conditioning, None)
        flow = model.flow
        x = decode_stack(
            flow.layers, flow.layer_levels, latents,
            model.level_conditions(prepared.features, prepared.noise_level), prepared.cache,
            prepared.keep, flow.inverse_bounds,
        )  # fmt: skip
        return model.flow_output(x, prepared.lr), None
