"""Inference-time folding and skipped log-dets: the fast sampling path computes the same
function as the unfolded layers (float64 within 1e-10), follows every parameter change, and
skips only the work sampling does not need."""

from __future__ import annotations

import pytest
import torch

from latent_models import perturbed_tiny, photo
from srflow.flows import nets
from srflow.flows.base import without_logdet
from srflow.flows.coupling import ConditionalAffineCoupling
from srflow.flows.nets import ActNormSubnet, ConvActNorm2d, SubnetSpec, ZeroConv2d
from srflow.flows.split import SplitPrior
from srflow.flows.step import FlowStep
from srflow.models.srflow import SRFlow
from test_srflow_da_tiny import VARIANTS, tiny_da


def _perturb(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _models() -> dict[str, SRFlow]:
    found = {"srflow": perturbed_tiny(torch.float64)}
    return found | {name: tiny_da(name, torch.float64) for name in sorted(VARIANTS)}


MODELS = _models()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_folded_decoding_equals_the_unfolded_layers(name: str) -> None:
    """No-grad decoding (folded ActNorms and output scales, fused inverse 1x1 convolution and
    ActNorm, reordered shift/scale channels, prepared terms) against the plain layers run
    with gradients enabled, where nothing is folded."""
    model = MODELS[name]
    lr = photo("chelsea", 60, 150, 64, torch.float64)[:, ::4, ::4][None].contiguous()
    latents = model.sample_latents(
        model.latent_shapes(lr, 3), 0.8, torch.Generator().manual_seed(0), dtype=torch.float64
    )
    with torch.enable_grad():
        plain_hr, plain_logdet = model.decode(lr, latents)
    with torch.no_grad():
        hr, logdet = model.decode(lr, latents, conds=model.condition(lr))
        fast_hr, none = model.decode(lr, latents, conds=model.condition(lr), logdet=False)
    torch.testing.assert_close(hr, plain_hr.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet, plain_logdet.detach(), rtol=1e-12, atol=1e-9)
    assert none is None and torch.equal(fast_hr, hr)  # the log-det work changes nothing else


def test_each_folded_layer_matches_its_unfolded_form() -> None:
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    layers: list[tuple[torch.nn.Module, tuple[torch.Tensor, ...]]] = [
        (ConvActNorm2d(6, 8, 3), (x,)),
        (ZeroConv2d(6, 4), (x,)),
    ]
    for layer, args in layers:
        layer = _perturb(layer.double())
        with torch.enable_grad():
            expected = layer(*args)
        with torch.no_grad():
            torch.testing.assert_close(layer(*args), expected.detach(), rtol=0, atol=1e-12)
    step = _perturb(FlowStep(6, 3, SubnetSpec(hidden_channels=8)).double())
    split = _perturb(SplitPrior(6).double())
    cond = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    with torch.enable_grad():
        step_out = step.inverse(x, cond)
        split_out = split.inverse(x[:, :3], x[:, 3:])
    with torch.no_grad():
        for got, want in zip(step.inverse(x, cond), step_out, strict=True):
            torch.testing.assert_close(got, want.detach(), rtol=0, atol=1e-10)
        for got, want in zip(split.inverse(x[:, :3], x[:, 3:]), split_out, strict=True):
            torch.testing.assert_close(got, want.detach(), rtol=0, atol=1e-10)


def test_folded_parameters_follow_every_change() -> None:
    """An optimizer step, load_state_dict and a dtype change are seen by the next call."""
    coupling = _perturb(ConditionalAffineCoupling(4, 3, SubnetSpec(hidden_channels=8)))
    x, cond = torch.randn(3, 4, 5, 5), torch.randn(1, 3, 5, 5)

    def fast() -> torch.Tensor:
        with torch.no_grad():
            return coupling.inverse(x, cond)[0]

    def plain() -> torch.Tensor:
        with torch.enable_grad():
            return coupling.inverse(x, cond)[0].detach()

    before = fast()
    optimizer = torch.optim.SGD(coupling.parameters(), lr=0.5)
    coupling(x, cond.expand(3, -1, -1, -1))[1].sum().backward()
    optimizer.step()
    assert not torch.allclose(fast(), before)
    torch.testing.assert_close(fast(), plain(), rtol=1e-5, atol=1e-5)
    other = _perturb(ConditionalAffineCoupling(4, 3, SubnetSpec(hidden_channels=8)), 5)
    coupling.load_state_dict(other.state_dict())
    torch.testing.assert_close(fast(), plain(), rtol=1e-5, atol=1e-5)
    coupling.double()
    x, cond = x.double(), cond.double()
    assert fast().dtype == torch.float64
    torch.testing.assert_close(fast(), plain(), rtol=0, atol=1e-12)


def test_training_still_differentiates_the_unfolded_graph() -> None:
    """In-place ReLUs and folding leave gradients intact: the subnet's gradient equals the
    one of an explicit out-of-place computation."""
    net = _perturb(ActNormSubnet(4, 6, SubnetSpec(hidden_channels=8)).double())
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x).square().sum(), x)

    def reference(v: torch.Tensor) -> torch.Tensor:
        h = v
        for module in net:
            h = torch.relu(h) if isinstance(module, torch.nn.ReLU) else module(h)
        return h

    (expected,) = torch.autograd.grad(reference(x).square().sum(), x)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


def test_without_logdet_skips_the_log_densities() -> None:
    model = MODELS["srflow"]
    lr = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    latents = model.sample_latents(model.latent_shapes(lr), 0.5, dtype=torch.float64)
    with torch.no_grad(), without_logdet():
        result = model.flow.decode(latents, model.conditioning(lr))
    assert torch.count_nonzero(result.logdet) == 0
    assert torch.count_nonzero(result.split_log_prob) == 0


def test_kept_inverse_follows_in_place_updates_and_dtype_changes() -> None:
    """The fused inverse 1x1 convolution + ActNorm of a flow step is kept between calls;
    it is recomputed after an in-place update and after a dtype change."""
    step = _perturb(FlowStep(6, None))
    y = torch.randn(2, 6, 4, 4)

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            fast = step.inverse(y.to(step.invconv.weight.dtype))[0]
        with torch.enable_grad():
            plain = step.inverse(y.to(step.invconv.weight.dtype))[0].detach()
        return fast, plain

    first, _ = both()
    with torch.no_grad():
        step.invconv.weight.add_(0.1 * torch.eye(6))
        step.actnorm.logs.add_(0.2)
    fast, plain = both()
    assert not torch.allclose(fast, first)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    step.double()
    fast, plain = both()
    assert fast.dtype == torch.float64
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-12)


def test_fused_add_relu_equals_add_then_relu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused kernel and the fallback for builds without it: ``relu(x + other)`` bit for
    bit, ``other`` broadcast over the samples, written into ``x``."""
    x = torch.randn(4, 8, 5, 5).to(memory_format=torch.channels_last)
    other = torch.randn(1, 8, 5, 5).to(memory_format=torch.channels_last)
    expected = torch.relu(x + other)
    for fused in (nets._ADD_RELU_, None):
        monkeypatch.setattr(nets, "_ADD_RELU_", fused)
        y = x.clone()
        assert nets.add_relu_(y, other) is y
        assert torch.equal(y, expected)
    # off the CPU (CUDA, MPS: the kernel is CPU-only) the plain ops run
    def refuse(*_: object) -> None:
        raise AssertionError("the fused kernel ran off the CPU")

    monkeypatch.setattr(nets, "_ADD_RELU_", refuse)
    assert nets.add_relu_(torch.zeros(2, device="meta"), torch.zeros(2, device="meta")).is_meta
    # dtypes the fused kernel refuses (bfloat16 under autocast), and mixed ones
    monkeypatch.undo()
    for a, b in ((x.bfloat16(), other.bfloat16()), (x.bfloat16(), other)):
        want = torch.relu((a.float() + b.float()).bfloat16())
        torch.testing.assert_close(nets.add_relu_(a, b), want)


def test_sampling_runs_under_bfloat16_autocast() -> None:
    """The fast sampling path under ``torch.autocast`` (what benchmarks/precision.py's 'all'
    mode measures): bfloat16 activations take the unfused add + ReLU, and the samples stay
    near float32's."""
    model = perturbed_tiny(torch.float32)
    lr = photo("chelsea", 60, 150, 64, torch.float32)[:, ::4, ::4][None].contiguous()
    generator = torch.Generator().manual_seed(0)
    latents = model.sample_latents(model.latent_shapes(lr, 2), 0.5, generator)
    with torch.no_grad():
        conds = model.condition(lr)
        want, _ = model.decode(lr, latents, conds=conds, logdet=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got, _ = model.decode(lr, latents, conds=model.condition(lr), logdet=False)
    assert got.isfinite().all()
    assert (got.float() - want).abs().max() < 0.1 * want.abs().max()
