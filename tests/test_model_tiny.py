"""Whole-model properties on the tiny preset."""

from __future__ import annotations

import pytest
import torch

from flow_checks import assert_log_prob_is_change_of_variables
from srflow.checkpoints import CheckpointError, load_model, save_model
from srflow.families import load_preset
from srflow.flows import data_dependent_init
from srflow.models.contract import Conditioning
from srflow.models.srflow import SRFlow


def _tiny(dtype: torch.dtype = torch.float64) -> SRFlow:
    model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():  # leave the zero init so that every layer does something
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_encode_decode_round_trip_float64() -> None:
    model = _tiny()
    hr = torch.rand(2, 3, 16, 24, dtype=torch.float64)
    lr = torch.rand(2, 3, 4, 6, dtype=torch.float64)
    enc = model.encode(hr, lr)
    back, logdet = model.decode(lr, enc.latents)
    torch.testing.assert_close(back, hr, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet, -enc.original_logdet, atol=1e-9, rtol=0)


def test_model_log_prob_equals_jacobian_change_of_variables() -> None:
    """log p(hr) = log|det d latents / d hr| + log N(latents; 0, I), via autograd."""
    hr = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    lr = torch.rand(1, 3, 2, 2, dtype=torch.float64)
    assert_log_prob_is_change_of_variables(_tiny(), hr, lr)


@pytest.mark.parametrize("lr_hw", [(2, 2), (4, 6), (6, 4), (8, 10)])
def test_latent_shapes_match_encode(lr_hw: tuple[int, int]) -> None:
    model = _tiny(torch.float32)
    lr = torch.rand(1, 3, *lr_hw)
    hr = torch.rand(1, 3, lr_hw[0] * 4, lr_hw[1] * 4)
    assert [tuple(z.shape) for z in model.encode(hr, lr).latents] == model.latent_shapes(lr)


def test_sampling_is_deterministic_and_diverse() -> None:
    # float64, so that batched and one-by-one convolutions agree to rounding
    model = _tiny(torch.float64)
    lr = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    a = model.sample(lr, 0.8, n=3, generator=torch.Generator().manual_seed(7))
    b = model.sample(lr, 0.8, n=3, generator=torch.Generator().manual_seed(7), batch_size=1)
    assert a.shape == (3, 1, 3, 16, 16)
    torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert (a[0] - a[1]).abs().mean() > 1e-3
    t0 = model.sample(lr, 0.0, n=2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(t0[0], t0[1], atol=0, rtol=0)


def test_per_level_temperature() -> None:
    model = _tiny(torch.float32)
    shapes = model.latent_shapes(torch.rand(1, 3, 4, 4))
    latents = model.sample_latents(shapes, [0.0, 1.0], torch.Generator().manual_seed(0))
    assert latents[0].abs().max() == 0 and latents[1].abs().max() > 0
    with pytest.raises(ValueError, match="one per latent tensor"):
        model.sample_latents(shapes, [0.5], torch.Generator())


def test_one_optimizer_step_lowers_nll() -> None:
    model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(0)).train()
    hr = torch.rand(4, 3, 16, 16)
    lr = torch.nn.functional.avg_pool2d(hr, 4)
    with data_dependent_init(model), torch.no_grad():
        model.nll_bits_per_dim(hr, lr, dequantize=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = model.nll_bits_per_dim(hr, lr, dequantize=False).mean()
    for _ in range(3):
        opt.zero_grad()
        model.nll_bits_per_dim(hr, lr, dequantize=False).mean().backward()
        opt.step()
    after = model.nll_bits_per_dim(hr, lr, dequantize=False).mean()
    assert torch.isfinite(before) and after < before


def test_checkpoint_round_trip_rebuilds_from_embedded_config(tmp_path) -> None:
    model = _tiny(torch.float32)
    path = save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(path)
    assert loaded.config == model.config
    lr = torch.rand(1, 3, 4, 4)
    g = torch.Generator()
    torch.testing.assert_close(
        loaded.sample(lr, 0.7, generator=g.manual_seed(3)),
        model.sample(lr, 0.7, generator=g.manual_seed(3)),
        atol=0, rtol=0,
    )  # fmt: skip


def test_bad_checkpoints_give_one_line_errors(tmp_path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="broken.safetensors"):
        load_model(bad)
    pth = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, pth)
    with pytest.raises(CheckpointError, match=r"matches no model family \(tried NCSR, SRFlow"):
        load_model(pth)
    truncated = tmp_path / "cut.safetensors"
    full = save_model(_tiny(torch.float32), tmp_path / "full.safetensors").read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_model(truncated)
    with pytest.raises(CheckpointError, match="no such model file"):
        load_model(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("images", [1, 2])
def test_shared_conditioning_equals_repeated_conditioning(images: int) -> None:
    """Decoding k samples per image with the conditioning given once per image (the fast
    path) equals decoding with the conditioning repeated for every sample."""
    model = _tiny(torch.float64)
    lr = torch.rand(images, 3, 4, 6, dtype=torch.float64)
    k = 3
    shapes = model.latent_shapes(lr, n=k)
    latents = model.sample_latents(shapes, 0.9, torch.Generator().manual_seed(2), dtype=lr.dtype)
    conds = model.features(lr)
    with torch.no_grad():
        fast, fast_logdet = model.decode(lr, latents)
        repeated = Conditioning(lr.repeat(k, 1, 1, 1), [c.repeat(k, 1, 1, 1) for c in conds])
        slow, slow_logdet = model.decode(repeated, latents)
        again = model.flow.encode(fast, conds)
    # float64 rounding only (the perturbed tiny model's outputs reach ~1e4)
    torch.testing.assert_close(fast, slow, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(fast_logdet, slow_logdet, atol=1e-9, rtol=1e-12)
    assert fast_logdet.shape == (k * images,)
    for z, z_again in zip(latents, again.output, strict=True):
        torch.testing.assert_close(z_again, z, atol=1e-8, rtol=1e-8)


def test_decoding_with_collapsed_affine_scales_stays_finite() -> None:
    """Scales at their lower bound (a weak model at a high temperature) overflow the inverse;
    the output must stay finite instead of turning into NaN where +inf and -inf mix."""
    from srflow.flows.nets import ZeroConv2d

    model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(1)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ZeroConv2d):
                module.bias.fill_(-40.0)  # shift -40, scale sigmoid(-38) + eps = eps
    lr = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    latents = model.sample_latents(model.latent_shapes(lr), 1.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        hr, _ = model.decode(lr, latents)
    assert torch.isfinite(hr).all()
    assert hr.abs().max() > 1e6  # it did overflow: the values are meaningless, but finite
