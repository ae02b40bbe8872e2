"""Which HR pixels can change when latents change only inside given positions (the region a
masked resampling may touch); the model computes it (:meth:`FlowSR.receptive_region`)."""

from __future__ import annotations

from torch import Tensor

from srflow.models.contract import FlowSR


def affected_region(model: FlowSR, changed: list[Tensor]) -> Tensor:
    """HR pixels the decoded image may differ in when only ``changed`` latent positions do.

    Args:
        model: the flow.
        changed: one boolean mask ``(B, 1, h_i, w_i)`` per latent tensor (encode order).

    Returns:
        Boolean ``(B, 1, H, W)`` at the (padded) HR size; ``False`` pixels are unchanged.

    Raises:
        CapabilityError: the model has no local receptive field (HCFlow: its finer levels
            are conditioned on features of the coarser ones, so a change can reach most of
            the image); one line saying so.
    """
    model.require("local_receptive_field", "the region a latent change reaches")
    return model.receptive_region(changed)
