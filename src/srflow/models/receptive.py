"""Which HR pixels can change when latents change only inside given positions.

Decoding runs the flow backwards. Per layer, a change at a position can spread:

* a flow step's affine coupling: by the radius of its sub-network (it reads the passive
  half through 3x3 and 1x1 convolutions, radius 1 + 0 + 1 = 2 for SRFlow's); ActNorm and the
  1x1 convolution act per position; the affine injector depends on the conditioning only;
* a split (decode: ``z2 = mean(kept) + exp(logs(kept)) * eps``): by the radius of its prior
  convolution, plus the positions where ``eps`` itself changed;
* an un-squeeze: one position becomes its 2x2 (``f`` x ``f``) block.

Following this through the decoder gives a set of HR pixels that contains every pixel the
change can reach (an upper bound of the receptive field of the changed latents): outside it
the decoded image is unchanged, bit for bit, because the same arithmetic sees the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from srflow.flows.split import SplitPrior
from srflow.flows.squeeze import Squeeze2d
from srflow.flows.step import FlowStep


def conv_radius(module: nn.Module) -> int:
    """Sum of the spatial radii of the convolutions in ``module`` (applied in sequence)."""
    return sum(
        ((conv.kernel_size[0] - 1) // 2) * conv.dilation[0]
        for conv in module.modules()
        if isinstance(conv, nn.Conv2d)
    )


def _layer_radius(layer: nn.Module) -> int:
    if isinstance(layer, FlowStep):
        return conv_radius(layer.coupling.net) if layer.coupling is not None else 0
    return conv_radius(layer)  # unknown layer: every convolution counts (conservative)


def _dilate(mask: Tensor, radius: int) -> Tensor:
    if radius == 0:
        return mask
    return F.max_pool2d(mask.float(), 2 * radius + 1, stride=1, padding=radius) > 0


def receptive_region(layers: Sequence[nn.Module], changed: list[Tensor]) -> Tensor:
    """HR pixels the decoded image may differ in when only ``changed`` latent positions do.

    Args:
        layers: the flow's layers in encode order (squeezes, steps, split priors).
        changed: one boolean mask ``(B, 1, h_i, w_i)`` per latent tensor (encode order: the
            split latents, then the top latent).

    Returns:
        Boolean ``(B, 1, H, W)`` at the (padded) HR size; ``False`` pixels are unchanged.
    """
    remaining = list(changed[:-1])
    region = changed[-1].bool()
    for layer in reversed(layers):
        if isinstance(layer, Squeeze2d):
            f = layer.factor
            region = region.repeat_interleave(f, 2).repeat_interleave(f, 3)
        elif isinstance(layer, SplitPrior):
            region = _dilate(region, conv_radius(layer.prior)) | remaining.pop().bool()
        else:
            region = _dilate(region, _layer_radius(layer))
    return region
