"""The latent tools on HCFlow: exact encoding, masked resampling, style transfer, levels."""

from __future__ import annotations

import pytest
import torch

from srflow.latent import (
    affected_region,
    decode_code,
    encode_image,
    latent_masks,
    resample_code,
    style_transfer,
)
from srflow.models.contract import CapabilityError, FlowSR
from srflow.models.hcflow import HCFlow
from srflow.models.hcflow_config import HCFlowConfig

CONFIG = HCFlowConfig(levels=2, trunk_steps=1, conditional_steps=1, rrdb_blocks=(1, 1),
                      rrdb_growth=8, hidden_channels=8)  # fmt: skip


@pytest.fixture(scope="module")
def model() -> HCFlow:
    torch.manual_seed(1)
    return HCFlow(CONFIG).eval()


def smooth(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 4, w // 4, generator=g, dtype=torch.float64)
    return torch.nn.functional.interpolate(coarse, (h, w), mode="bilinear")[0]


def test_hcflow_is_a_flow_model(model: HCFlow) -> None:
    assert isinstance(model, FlowSR)


def test_encode_decode_is_exact_in_float64(model: HCFlow) -> None:
    hr = smooth(24, 40, 0)  # any size: no padding needed at LR multiple 1
    code = encode_image(model.double(), hr)
    assert [tuple(z.shape) for z in code.latents] == [(1, 6, 12, 20), (1, 21, 6, 10)]
    torch.testing.assert_close(decode_code(model, code)[0], hr, rtol=0, atol=1e-10)
    # the code's LR is the flow's own (the latents do not depend on a given LR)
    torch.testing.assert_close(code.lr, model.encode(hr[None]).y)
    model.float()


def test_masked_resampling_keeps_latents_outside_the_mask(model: HCFlow) -> None:
    hr = smooth(32, 32, 1).float()
    code = encode_image(model, hr)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[:, :16] = True
    out = resample_code(model, code, [0.5, 0.9], torch.Generator().manual_seed(0), mask)
    masks = latent_masks(mask, [tuple(z.shape) for z in code.latents], (32, 32))
    for before, after, m in zip(code.latents, out.latents, masks, strict=True):
        m = m.expand_as(before)
        assert torch.equal(before[~m], after[~m]) and not torch.equal(before[m], after[m])


def test_per_level_temperatures_follow_the_levels(model: HCFlow) -> None:
    assert model.latent_temperatures([0.5, 0.9]) == [0.5, 0.9]
    assert model.latent_temperatures(0.7) == [0.7, 0.7]
    with pytest.raises(ValueError, match="one per flow level \\(2\\)"):
        model.latent_temperatures([0.1, 0.2, 0.3])


def test_style_transfer_uses_the_source_latents_with_the_target_lr(model: HCFlow) -> None:
    source, target_hr = smooth(32, 32, 2).float(), smooth(32, 32, 3).float()
    target_lr = encode_image(model, target_hr).lr[0]
    out = style_transfer(model, source, target_lr, temperature=0.8,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    source_code = encode_image(model, source)
    assert all(torch.equal(a, b) for a, b in zip(out.latents, source_code.latents, strict=True))
    assert torch.equal(out.lr[0], target_lr)


def test_no_local_bound_for_hcflow(model: HCFlow) -> None:
    with pytest.raises(CapabilityError, match="latent change can reach most of the image"):
        affected_region(model, [torch.zeros(1, 1, 16, 16, dtype=torch.bool)] * 2)
