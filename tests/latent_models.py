"""Tiny models and real photographs for the latent-tool tests (helpers, not tests).

``perturbed_tiny`` is the tiny preset with every parameter nudged off its (often zero)
initialisation so that every layer acts. It is not LR-consistent: a random flow ignores most
of its conditioning. ``consistent_tiny`` is made LR-consistent in closed form (training is far
too slow for the test suite): the LR is routed through the encoder into the first conditional
step's affine injector, whose shift is fitted by least squares to predict the image from its
LR on real photographs, and the ActNorm after it is set to shrink everything the deeper
layers add. Its samples are a linear 4x upscaling of the LR plus small, latent-driven detail.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skimage_data

from srflow.families import load_preset
from srflow.latent import downscale
from srflow.models.srflow import SRFlow


def photo(name: str, top: int, left: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    """A square crop of one of scikit-image's bundled photographs, ``(3, size, size)``."""
    array = getattr(skimage_data, name)()[top : top + size, left : left + size]
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).to(dtype) / 255


def perturbed_tiny(dtype: torch.dtype = torch.float64, seed: int = 1) -> SRFlow:
    """The tiny preset, every parameter perturbed by ``N(0, 0.05^2)``, in eval mode."""
    model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(seed)).to(dtype)
    noise = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    return model.eval()


def overflowing_model(dtype: torch.dtype = torch.float32) -> SRFlow:
    """The perturbed tiny model with every affine scale at its lower bound: its inverse
    overflows at temperature 1 (an "exploding inverse", for the divergence tests)."""
    from srflow.flows.nets import ZeroConv2d

    model = perturbed_tiny(dtype)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ZeroConv2d):
                module.bias.fill_(-40.0)
    return model


@functools.cache
def consistent_tiny() -> SRFlow:
    """An LR-consistent tiny model (float64; see the module doc). Do not modify it."""
    dtype = torch.float64
    model = perturbed_tiny(dtype, seed=3)
    enc = model.encoder
    squeeze, transition, step1, step2 = list(model.flow.layers)[:4]
    net = step1.injector.net
    with torch.no_grad():
        # the trunk carries the LR unchanged in channels 0..2 (x1.2 per RRDB block) ...
        enc.conv_first.weight[:3] = 0
        enc.conv_first.bias[:3] = 0
        for c in range(3):
            enc.conv_first.weight[c, c, 1, 1] = 1.0
        for block in enc.trunk:
            for rdb in (block.rdb1, block.rdb2, block.rdb3):
                rdb.conv5.weight[:3] = 0
                rdb.conv5.bias[:3] = 0
        # ... and the injector's hidden channels 0..2 read it from the first stacked block
        offset = enc.conv_first.out_channels
        for conv in (net[0], net[2]):
            conv.weight[:3] = 0
            conv.actnorm.bias[:, :3] = 0
            conv.actnorm.logs[:, :3] = 0
        for c in range(3):
            net[0].weight[c, offset + c, 1, 1] = 1 / 1.2
            net[2].weight[c, c, 0, 0] = 1.0
        step1.coupling.net[4].weight.zero_()
        step1.coupling.net[4].bias.zero_()
        step2.actnorm.logs.fill_(5.0)  # decoding multiplies the deeper layers' output by e^-5
        step2.actnorm.bias.zero_()
        model.flow.layers[4].prior.weight.zero_()  # level-1 split prior: eps = z2
        model.flow.layers[4].prior.bias.zero_()
        crops = [("astronaut", 0, 0), ("chelsea", 0, 150), ("coffee", 150, 250)]
        hr = torch.stack([photo(name, top, left, 128, dtype) for name, top, left in crops])
        cond = model.features(downscale(hr, 4))[0]
        x, _ = squeeze(hr, cond)
        x, _ = transition(x, cond)
        x, _ = step1.actnorm(x)
        u, _ = step1.invconv(x)  # the injector's input: its shift should cancel it
        hidden = net[3](net[2](net[1](net[0](cond))))
        cols = F.unfold(hidden, 3, padding=1).permute(0, 2, 1).reshape(-1, 9 * hidden.shape[1])
        design = torch.cat([cols, torch.ones(cols.shape[0], 1, dtype=dtype)], 1)
        target = -u.permute(0, 2, 3, 1).reshape(-1, u.shape[1])
        # the design is rank-deficient (9 of 145 singular values ~1e-18): the default driver
        # (pivoted QR) returned a different solution from run to run, so the model (and the
        # tests built on it) varied; the minimum-norm solution (SVD) is the unique one
        solution = torch.linalg.lstsq(design, target, rcond=1e-10, driver="gelsd").solution
        last = net[4]
        last.weight.zero_()
        last.bias.zero_()
        last.logs.zero_()
        last.weight[0::2] = solution[:-1].T.reshape(u.shape[1], hidden.shape[1], 3, 3)
        last.bias[0::2] = solution[-1]
    return model
