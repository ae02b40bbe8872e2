"""Prepare once, sample many: decoding with a prepared conditioning equals plain decoding
within float32 rounding for every SRFlow-family architecture, keeps a fixed set of terms
however often it is used, and the pipeline samples through it."""

from __future__ import annotations

import gc

import pytest
import torch

from latent_models import perturbed_tiny, photo
from srflow.flows.prepared import PreparedCond
from srflow.models.srflow import SRFlow
from test_srflow_da_tiny import VARIANTS, tiny_da


def _models() -> dict[str, SRFlow]:
    found = {"srflow": perturbed_tiny(torch.float32)}
    found |= {name: tiny_da(name, torch.float32) for name in sorted(VARIANTS)}
    return found


MODELS = _models()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_prepared_decoding_equals_plain_decoding(name: str) -> None:
    model = MODELS[name]
    lr = photo("chelsea", 60, 150, 64, torch.float32)[:, ::4, ::4][None].contiguous()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        latents = model.sample_latents(model.latent_shapes(lr, 3), 0.3, generator)
        plain = model.decode(lr, latents)[0]
        prepared = model.condition(lr)
        assert all(isinstance(c, PreparedCond) for c in prepared)
        first = model.decode(lr, latents, conds=prepared)[0]
        kept = [len(c) for c in prepared]
        again = model.decode(lr, latents, conds=prepared)[0]
    assert sum(kept) > 0 and [len(c) for c in prepared] == kept  # no growth on reuse
    torch.testing.assert_close(first, plain, atol=2e-5, rtol=0)  # float32 rounding
    assert torch.equal(again, first)  # the kept terms give the same result every time


@pytest.mark.parametrize("name", ["srflow", "da"])
def test_a_single_decode_keeps_no_terms_and_gives_the_same_images(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``condition(lr, keep=False)`` (one batch: nothing to reuse) computes every term as the
    kept path does, bit for bit, and keeps none of them; a one-batch call uses it."""
    from srflow.inference.pipeline import SuperResolver

    model = perturbed_tiny(torch.float32) if name == "srflow" else tiny_da(name, torch.float32)
    lr = photo("chelsea", 60, 150, 64, torch.float32)[:, ::4, ::4][None].contiguous()
    latents = model.sample_latents(model.latent_shapes(lr, 2), 0.5, torch.Generator())
    with torch.no_grad():
        kept, unkept = model.condition(lr), model.condition(lr, keep=False)
        a = model.decode(lr, latents, conds=kept, logdet=False)[0]
        b = model.decode(lr, latents, conds=unkept, logdet=False)[0]
    assert torch.equal(a, b)
    assert sum(len(c) for c in kept) > 0 and sum(len(c) for c in unkept) == 0
    seen: list[bool] = []
    condition = model.condition
    monkeypatch.setattr(model, "condition",
                        lambda x, keep=True: seen.append(keep) or condition(x, keep))  # fmt: skip
    resolver = SuperResolver(model)
    resolver.super_resolve(lr[0], 0.5, samples=2, seed=1, batch_size=2)
    resolver.super_resolve(lr[0], 0.5, samples=3, seed=1, batch_size=2)
    assert seen == [False, True]


def test_sampling_reuses_the_prepared_terms() -> None:
    """Across batches and temperatures the injector networks run once per image."""
    from srflow.flows.coupling import AffineInjector
    from srflow.inference.pipeline import SuperResolver

    model = perturbed_tiny(torch.float32)
    calls = []
    injectors = [m for m in model.modules() if isinstance(m, AffineInjector)]
    hooks = [m.net.register_forward_hook(lambda *_: calls.append(1)) for m in injectors]
    lr = photo("astronaut", 0, 0, 64, torch.float32)[:, ::4, ::4].contiguous()
    try:
        outs = list(SuperResolver(model).sample_temperatures(lr, [0.2, 0.3], 4, 0, batch_size=2))
    finally:
        for hook in hooks:
            hook.remove()
    injectors = len(injectors)
    assert len(outs) == 2 and len(calls) == injectors  # 2 temperatures x 2 batches: once


def test_repeated_region_resampling_reuses_one_prepared_conditioning() -> None:
    """The explorer's loop: resample a region again and again, decoding each code with the
    image's prepared conditioning; equal to decoding from scratch, conditioning run once."""
    from srflow.latent import decode_code, encode_image, resample_code

    model = perturbed_tiny(torch.float32)
    hr = photo("astronaut", 0, 0, 32, torch.float32)
    code = encode_image(model, hr)
    calls = []
    conditioning = model.conditioning
    model.conditioning = lambda lr: calls.append(1) or conditioning(lr)  # type: ignore[method-assign]
    try:
        conds = model.condition(code.lr)
        mask = torch.zeros(32, 32, dtype=torch.bool)
        mask[8:20, 8:20] = True
        generator = torch.Generator().manual_seed(0)
        for _ in range(3):
            code = resample_code(model, code, 0.5, generator, mask)
            fast = decode_code(model, code, conds)
        assert len(calls) == 1
    finally:
        del model.conditioning
    torch.testing.assert_close(fast, decode_code(model, code), atol=2e-5, rtol=0)


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
