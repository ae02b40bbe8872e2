"""The sampling twin (srflow.sampling, SRFlow's twin): the reference layers' maps from folded
and packed weights and kept conditioning-only terms. It equals the reference decode (float64
within 1e-10, float32 within 2e-5), follows every parameter change, runs packed convolutions
bit for bit like plain ones, keeps a fixed set of terms however often it is used, and is what
the pipeline samples with."""

from __future__ import annotations

import copy
import gc
import pickle

import pytest
import torch
import torch.nn.functional as F

from latent_models import perturbed_tiny, photo
from srflow.flows import split as split_module
from srflow.flows.coupling import AffineInjector, ConditionalAffineCoupling
from srflow.flows.nets import ActNormSubnet, ConvActNorm2d, SubnetSpec, ZeroConv2d
from srflow.flows.split import SplitPrior
from srflow.flows.step import FlowStep
from srflow.models.contract import Conditioning
from srflow.models.srflow import SRFlow
from srflow.sampling import layers as fast
from srflow.sampling import packed
from srflow.sampling.folding import conv_actnorm_params, zero_conv_params
from srflow.sampling.packed import KeptConv, kept_conv
from srflow.sampling.terms import LevelTerms
from test_srflow_da_tiny import VARIANTS, tiny_da

CL = torch.channels_last
needs_packing = pytest.mark.skipif(
    not packed._packing_available(), reason="this PyTorch build has no oneDNN packing"
)


def _perturb(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _models(dtype: torch.dtype) -> dict[str, SRFlow]:
    found = {"srflow": perturbed_tiny(dtype)}
    return found | {name: tiny_da(name, dtype) for name in sorted(VARIANTS)}


MODELS64 = _models(torch.float64)
MODELS32 = _models(torch.float32)


def _lr(dtype: torch.dtype) -> torch.Tensor:
    return photo("chelsea", 60, 150, 64, dtype)[:, ::4, ::4][None].contiguous()


def _latents(model: SRFlow, lr: torch.Tensor, n: int, temperature: float, seed: int) -> list[
    torch.Tensor
]:  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    return model.sample_latents(model.latent_shapes(lr, n), temperature, generator, dtype=lr.dtype)


def _terms(tensor: torch.Tensor) -> LevelTerms:
    return LevelTerms(tensor, {}, keep=True)


# --- the twin equals the reference ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS64))
def test_the_twin_decodes_what_the_reference_decodes(name: str) -> None:
    """Folded ActNorms and output scales, the fused inverse 1x1 convolution and ActNorm,
    reordered shift/scale channels and kept terms against the plain layers, 3 samples of one
    image; the twin's log-det decode is the reference's own."""
    model = MODELS64[name]
    twin = model.sampling_twin()
    lr = _lr(torch.float64)
    generator = torch.Generator().manual_seed(0)
    latents = model.sample_latents(model.latent_shapes(lr, 3), 0.8, generator, dtype=lr.dtype)
    plain_hr, plain_logdet = model.decode(lr, latents)
    hr, none = twin.decode(twin.prepare(lr), latents, logdet=False)
    assert none is None
    torch.testing.assert_close(hr, plain_hr.detach(), rtol=0, atol=1e-10)
    same, logdet = twin.decode(lr, latents, logdet=True)
    assert torch.equal(same, plain_hr) and torch.equal(logdet, plain_logdet)


@pytest.mark.parametrize("name", sorted(MODELS32))
def test_float32_twin_and_kept_terms(name: str) -> None:
    """float32 within rounding; the kept terms do not grow on reuse and give the same result
    every time."""
    model = MODELS32[name]
    twin = model.sampling_twin()
    lr = _lr(torch.float32)
    latents = _latents(model, lr, 3, 0.3, 3)
    with torch.no_grad():
        plain = model.decode(lr, latents)[0]
    prepared = twin.prepare(lr)
    first = twin.decode(prepared, latents, logdet=False)[0]
    kept = len(prepared.cache)
    again = twin.decode(prepared, latents, logdet=False)[0]
    assert kept > 0 and len(prepared.cache) == kept  # no growth on reuse
    torch.testing.assert_close(first, plain, atol=2e-5, rtol=0)  # float32 rounding
    assert torch.equal(again, first)  # the kept terms give the same result every time


def test_each_fast_layer_matches_its_reference() -> None:
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    conv = _perturb(ConvActNorm2d(6, 8, 3).double())
    weight, bias = conv_actnorm_params(conv)
    torch.testing.assert_close(F.conv2d(x, weight, bias, padding=1), conv(x), rtol=0, atol=1e-12)
    zero = _perturb(ZeroConv2d(6, 4).double())
    weight, bias = zero_conv_params(zero)
    torch.testing.assert_close(F.conv2d(x, weight, bias, padding=1), zero(x), rtol=0, atol=1e-12)
    step = _perturb(FlowStep(6, 3, SubnetSpec(hidden_channels=8)).double())
    split = _perturb(SplitPrior(6).double())
    cond = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        want = step.inverse(x, cond)[0]
        torch.testing.assert_close(fast.step_inverse(step, x, _terms(cond)), want, rtol=0,
                                   atol=1e-10)  # fmt: skip
        want = split.inverse(x[:, :3], x[:, 3:])[0]
        torch.testing.assert_close(fast.split_inverse(split, x[:, :3], x[:, 3:]), want, rtol=0,
                                   atol=1e-10)  # fmt: skip


def test_sampling_computes_no_log_densities(monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin skips all log-det and prior log-density work (slogdet, log-densities)."""
    model = MODELS64["srflow"]
    lr = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    latents = model.sample_latents(model.latent_shapes(lr), 0.5, dtype=torch.float64)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a log-det was computed while sampling")

    monkeypatch.setattr(split_module, "gaussian_log_prob", refuse)
    monkeypatch.setattr(torch.linalg, "slogdet", refuse)
    hr, logdet = model.sampling_twin().decode(lr, latents, logdet=False)
    assert logdet is None and hr.isfinite().all()


def test_fast_layers_follow_every_parameter_change() -> None:
    """An optimizer step, load_state_dict and a dtype change are seen by the next call."""
    coupling = _perturb(ConditionalAffineCoupling(4, 3, SubnetSpec(hidden_channels=8)))
    x, cond = torch.randn(3, 4, 5, 5), torch.randn(1, 3, 5, 5)

    def twin() -> torch.Tensor:
        y = fast.coupling_inverse(coupling, x.to(cond.dtype), LevelTerms(cond, {}, keep=False))
        return y

    def plain() -> torch.Tensor:
        with torch.no_grad():
            return coupling.inverse(x.to(cond.dtype), cond)[0]

    with torch.no_grad():
        before = twin()
    optimizer = torch.optim.SGD(coupling.parameters(), lr=0.5)
    coupling(x, cond.expand(3, -1, -1, -1))[1].sum().backward()
    optimizer.step()
    with torch.no_grad():
        assert not torch.allclose(twin(), before)
        torch.testing.assert_close(twin(), plain(), rtol=1e-5, atol=1e-5)
        other = _perturb(ConditionalAffineCoupling(4, 3, SubnetSpec(hidden_channels=8)), 5)
        coupling.load_state_dict(other.state_dict())
        torch.testing.assert_close(twin(), plain(), rtol=1e-5, atol=1e-5)
        coupling.double()
        cond = cond.double()
        assert twin().dtype == torch.float64
        torch.testing.assert_close(twin(), plain(), rtol=0, atol=1e-12)


def test_kept_inverse_follows_in_place_updates_and_dtype_changes() -> None:
    """The fused inverse 1x1 convolution + ActNorm of a flow step is kept between calls;
    it is recomputed after an in-place update and after a dtype change."""
    step = _perturb(FlowStep(6, None))
    y = torch.randn(2, 6, 4, 4)
    empty = LevelTerms(torch.zeros(1), {}, keep=False)

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            x = y.to(step.invconv.weight.dtype)
            return fast.step_inverse(step, x, empty), step.inverse(x)[0]

    first, _ = both()
    with torch.no_grad():
        step.invconv.weight.add_(0.1 * torch.eye(6))
        step.actnorm.logs.add_(0.2)
    got, want = both()
    assert not torch.allclose(got, first)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    step.double()
    got, want = both()
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_training_differentiates_the_reference_graph() -> None:
    """In-place ReLUs leave gradients intact: the subnet's gradient equals the one of an
    explicit out-of-place computation."""
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


def test_fused_add_relu_equals_add_then_relu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused kernel and the fallback for builds without it: ``relu(x + other)`` bit for
    bit, ``other`` broadcast over the samples, written into ``x``."""
    x = torch.randn(4, 8, 5, 5).to(memory_format=CL)
    other = torch.randn(1, 8, 5, 5).to(memory_format=CL)
    expected = torch.relu(x + other)
    for fused in (fast._ADD_RELU_, None):
        monkeypatch.setattr(fast, "_ADD_RELU_", fused)
        y = x.clone()
        assert fast.add_relu_(y, other) is y
        assert torch.equal(y, expected)

    def refuse(*_: object) -> None:  # off the CPU (the kernel is CPU-only) the plain ops run
        raise AssertionError("the fused kernel ran off the CPU")

    monkeypatch.setattr(fast, "_ADD_RELU_", refuse)
    assert fast.add_relu_(torch.zeros(2, device="meta"), torch.zeros(2, device="meta")).is_meta
    monkeypatch.undo()  # dtypes the fused kernel refuses (bfloat16 under autocast), mixed ones
    for a, b in ((x.bfloat16(), other.bfloat16()), (x.bfloat16(), other)):
        want = torch.relu((a.float() + b.float()).bfloat16())
        torch.testing.assert_close(fast.add_relu_(a, b), want)


def test_sampling_runs_under_bfloat16_autocast() -> None:
    """The twin under ``torch.autocast`` (what benchmarks/precision.py's 'all' mode measures):
    bfloat16 activations take the unfused add + ReLU, and the samples stay near float32's."""
    model = MODELS32["srflow"]
    twin = model.sampling_twin()
    lr = _lr(torch.float32)
    latents = _latents(model, lr, 2, 0.5, 0)
    want, _ = twin.decode(twin.prepare(lr), latents, logdet=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = twin.decode(twin.prepare(lr), latents, logdet=False)
    assert got.isfinite().all()
    assert (got.float() - want).abs().max() < 0.1 * want.abs().max()


# --- packed convolutions ----------------------------------------------------------------------


@needs_packing
@pytest.mark.parametrize(("cin", "cout", "k"), [(6, 64, 3), (64, 64, 1), (64, 12, 3), (12, 12, 1)])
@pytest.mark.parametrize("layout", [CL, torch.contiguous_format])
def test_a_kept_convolution_equals_conv2d_bit_for_bit(cin, cout, k, layout) -> None:  # noqa: ANN001
    g = torch.Generator().manual_seed(cin + cout + k)
    weight = torch.randn(cout, cin, k, k, generator=g).contiguous(memory_format=layout)
    bias = torch.randn(cout, generator=g)
    x = torch.randn(3, cin, 17, 9, generator=g).contiguous(memory_format=layout)
    kept = KeptConv.of(weight, bias)
    assert kept.packable and not kept.packs
    plain = F.conv2d(x, weight, bias, padding=k // 2)
    with torch.no_grad():
        assert torch.equal(kept(x), plain)
        assert torch.equal(kept(x, relu=True), plain.relu())
        assert kept(x).is_contiguous(memory_format=layout)
    if layout == CL:  # packed for this input's shape on its first call
        assert list(kept.packs) == [tuple(x.shape)] and kept.packs[tuple(x.shape)].is_mkldnn
    assert torch.equal(KeptConv.of(weight, None)(x), F.conv2d(x, weight, padding=k // 2))


@needs_packing
def test_each_input_shape_gets_its_own_pack() -> None:
    """oneDNN chooses the weight's format from the input's shape too: a 64 -> 96 weight packed
    for a 64x64 input was reordered again on every call on a 2x2 input."""
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(96, 64, 3, 3, generator=g).contiguous(memory_format=CL)
    kept = KeptConv.of(weight, torch.randn(96, generator=g))
    shapes = [(4, 64, 64, 64), (4, 64, 2, 2), (2, 64, 2, 2), (2, 64, 8, 8), (4, 64, 3, 5)]
    with torch.no_grad():
        for shape in shapes:
            x = torch.randn(shape, generator=g).contiguous(memory_format=CL)
            assert torch.equal(kept(x), F.conv2d(x, weight, kept.bias, padding=1))
            assert tuple(x.shape) in kept.packs
        first = kept.packs[shapes[-1]]
        kept(x)
        assert kept.packs[shapes[-1]] is first  # kept, not packed again
    assert list(kept.packs) == shapes[-packed.MAX_PACKED_SHAPES :]  # the oldest dropped


@needs_packing
def test_packing_from_several_threads() -> None:
    """The app samples from worker threads: shapes come and go while others run."""
    from concurrent.futures import ThreadPoolExecutor

    weight = torch.randn(16, 8, 3, 3).contiguous(memory_format=CL)
    kept = KeptConv.of(weight, None)
    inputs = [torch.randn(2 + k % 3, 8, 4 + k, 5).contiguous(memory_format=CL) for k in range(8)]

    def run(x: torch.Tensor) -> bool:
        with torch.no_grad():
            return all(torch.equal(kept(x), F.conv2d(x, weight, padding=1)) for _ in range(20))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(run, inputs * 4))
    assert len(kept.packs) <= packed.MAX_PACKED_SHAPES


def test_the_plain_path_where_packing_cannot_run() -> None:
    weight, x = torch.randn(8, 4, 3, 3), torch.randn(2, 4, 6, 6)
    kept = KeptConv.of(weight, torch.randn(8))
    expected = F.conv2d(x.double(), weight.double(), kept.bias.double(), padding=1)
    assert torch.equal(kept(x.double(), relu=True), expected.relu())  # float64 input
    assert not KeptConv.of(weight.double(), None).packable  # float64 weights: not packed
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: F.conv2d's bfloat16
        assert kept(x).dtype == torch.bfloat16
    with torch.backends.mkldnn.flags(enabled=False):
        torch.testing.assert_close(kept(x), F.conv2d(x, weight, kept.bias, padding=1))


def test_kept_conv_follows_parameter_changes() -> None:
    conv = torch.nn.Conv2d(4, 8, 3, padding=1).to(memory_format=CL)
    x = torch.randn(1, 4, 5, 5).contiguous(memory_format=CL)
    with torch.no_grad():
        first = kept_conv(conv)
        assert kept_conv(conv) is first
        conv.weight.mul_(2.0)
        assert kept_conv(conv) is not first
        # PyTorch may run a convolution this small outside oneDNN: float32 rounding apart
        torch.testing.assert_close(kept_conv(conv)(x), conv(x), rtol=1e-6, atol=1e-6)


@needs_packing
@pytest.mark.parametrize("name", ["srflow", *sorted(VARIANTS)])
def test_packed_decoding_equals_the_plain_convolutions(name: str, monkeypatch) -> None:  # noqa: ANN001
    """The whole float32 sampling path, channels-last as the library runs it on the CPU."""
    from srflow.inference.pipeline import inference_layout

    model = inference_layout(_models(torch.float32)[name].eval(), torch.device("cpu"))
    twin = model.sampling_twin()
    lr = _lr(torch.float32)
    latents = _latents(model, lr, 3, 0.8, 0)
    prepared = twin.prepare(lr)
    got = twin.decode(prepared, latents, logdet=False)[0]
    monkeypatch.setattr(KeptConv, "_packed_runs", staticmethod(lambda x: False))
    assert torch.equal(got, twin.decode(prepared, latents, logdet=False)[0])


def test_a_model_that_sampled_still_deep_copies_and_pickles() -> None:
    model = perturbed_tiny(torch.float32).eval()
    lr = _lr(torch.float32)
    latents = _latents(model, lr, 2, 0.8, 1)
    before = model.sampling_twin().decode(lr, latents, logdet=False)[0]
    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):  # as the EMA does
        assert torch.equal(copied.sampling_twin().decode(lr, latents, logdet=False)[0], before)


# --- prepared once, sampled many times ------------------------------------------------------


@pytest.mark.parametrize("name", ["srflow", "da"])
def test_a_single_decode_keeps_no_terms_and_gives_the_same_images(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prepare(lr, keep=False)`` (one batch: nothing to reuse) computes every term as the
    kept path does, bit for bit, and keeps none of them; a one-batch call uses it."""
    from srflow.inference.pipeline import SuperResolver

    model = perturbed_tiny(torch.float32) if name == "srflow" else tiny_da(name, torch.float32)
    twin = model.sampling_twin()
    lr = _lr(torch.float32)
    latents = model.sample_latents(model.latent_shapes(lr, 2), 0.5, torch.Generator())
    kept, unkept = twin.prepare(lr), twin.prepare(lr, keep=False)
    kept_hr = twin.decode(kept, latents, logdet=False)[0]
    assert torch.equal(kept_hr, twin.decode(unkept, latents, logdet=False)[0])
    assert len(kept.cache) > 0 and len(unkept.cache) == 0
    resolver = SuperResolver(model)
    seen: list[bool] = []
    prepare = resolver.sampler.prepare
    monkeypatch.setattr(resolver.sampler, "prepare",
                        lambda x, keep=True, **k: seen.append(keep) or prepare(x, keep, **k))
    resolver.super_resolve(lr[0], 0.5, samples=2, seed=1, batch_size=2)
    resolver.super_resolve(lr[0], 0.5, samples=3, seed=1, batch_size=2)
    assert seen == [False, True]


def test_sampling_reuses_the_prepared_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Across batches and temperatures the injector networks run once per image."""
    from srflow.inference.pipeline import SuperResolver

    model = perturbed_tiny(torch.float32)
    calls = []
    forward = fast.subnet_forward
    monkeypatch.setattr(fast, "subnet_forward", lambda net, x: calls.append(1) or forward(net, x))
    lr = photo("astronaut", 0, 0, 64, torch.float32)[:, ::4, ::4].contiguous()
    outs = list(SuperResolver(model).sample_temperatures(lr, [0.2, 0.3], 4, 0, batch_size=2))
    injectors = sum(isinstance(m, AffineInjector) for m in model.modules())
    assert len(outs) == 2 and len(calls) == injectors  # 2 temperatures x 2 batches: once


def test_repeated_region_resampling_reuses_one_prepared_conditioning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The explorer's loop: resample a region again and again, decoding each code with the
    image's prepared conditioning; equal to decoding from scratch, the encoder run once."""
    from srflow.latent import decode_code, encode_image, resample_code

    model = perturbed_tiny(torch.float32)
    code = encode_image(model, photo("astronaut", 0, 0, 32, torch.float32))
    calls = []
    features = model.features
    monkeypatch.setattr(model, "features", lambda lr: calls.append(1) or features(lr))
    prepared = model.sampling_twin().prepare(code.lr)
    assert isinstance(prepared, Conditioning)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[8:20, 8:20] = True
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        code = resample_code(model, code, 0.5, generator, mask)
        kept = decode_code(model, code, prepared)
    assert len(calls) == 1
    monkeypatch.undo()
    torch.testing.assert_close(kept, decode_code(model, code), atol=2e-5, rtol=0)


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


@pytest.mark.parametrize("samples", [1, 5])
def test_repeated_calls_do_not_grow_memory(samples: int) -> None:
    """Calls again and again (the explorer, a server) hold no more tensors after the tenth
    call than after the second: nothing prepared or cached piles up."""
    from srflow.inference.pipeline import SuperResolver

    resolver = SuperResolver(perturbed_tiny(torch.float32))
    lr = photo("astronaut", 0, 0, 64, torch.float32)[:, ::4, ::4].contiguous()

    def call(seed: int) -> None:
        list(resolver.sample_temperatures(lr, [0.5, 0.8], samples, seed, batch_size=2))

    for seed in range(2):
        call(seed)
    before = _live_tensors()
    for seed in range(2, 10):
        call(seed)
    assert _live_tensors() == before
