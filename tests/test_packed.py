"""Per-sample convolutions from kept, oneDNN-packed weights (srflow.flows.packed): the same
values as ``F.conv2d`` bit for bit, the plain path wherever packing cannot run, and models
that still copy (the training EMA deep-copies a model that may have sampled)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from latent_models import perturbed_tiny, photo
from srflow.flows import packed
from srflow.flows.packed import KeptConv, kept_conv
from srflow.models.srflow import SRFlow
from test_srflow_da_tiny import VARIANTS, tiny_da

needs_packing = pytest.mark.skipif(
    not packed._packing_available(), reason="this PyTorch build has no oneDNN packing"
)
CL = torch.channels_last


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


def _models() -> dict[str, SRFlow]:
    found = {"srflow": perturbed_tiny(torch.float32)}
    return found | {name: tiny_da(name, torch.float32) for name in sorted(VARIANTS)}


@needs_packing
@pytest.mark.parametrize("name", ["srflow", *sorted(VARIANTS)])
def test_packed_decoding_equals_the_plain_convolutions(name: str, monkeypatch) -> None:  # noqa: ANN001
    """The whole float32 sampling path, channels-last as the library runs it on the CPU."""
    from srflow.inference.pipeline import inference_layout

    model = inference_layout(_models()[name].eval(), torch.device("cpu"))
    lr = photo("chelsea", 60, 150, 64, torch.float32)[:, ::4, ::4][None].contiguous()
    g = torch.Generator().manual_seed(0)
    latents = model.sample_latents(model.latent_shapes(lr, 3), 0.8, g)
    with torch.no_grad():
        conds = model.condition(lr)
        fast = model.decode(lr, latents, conds=conds, logdet=False)[0]
        monkeypatch.setattr(KeptConv, "_packed_runs", staticmethod(lambda x: False))
        plain = model.decode(lr, latents, conds=conds, logdet=False)[0]
    assert torch.equal(fast, plain)


def test_a_model_that_sampled_still_deep_copies_and_pickles() -> None:
    model = perturbed_tiny(torch.float32).eval()
    lr = photo("chelsea", 60, 150, 64, torch.float32)[:, ::4, ::4][None].contiguous()
    g = torch.Generator().manual_seed(1)
    latents = model.sample_latents(model.latent_shapes(lr, 2), 0.8, g)
    with torch.no_grad():
        before = model.decode(lr, latents, conds=model.condition(lr), logdet=False)[0]
        twin = copy.deepcopy(model)  # as the training EMA does
        assert torch.equal(twin.decode(lr, latents, conds=twin.condition(lr), logdet=False)[0],
                           before)  # fmt: skip
        revived = pickle.loads(pickle.dumps(model))
        assert torch.equal(
            revived.decode(lr, latents, conds=revived.condition(lr), logdet=False)[0], before
        )
