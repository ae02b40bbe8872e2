"""The Python API (``srflow.load``, ``super_resolve``) and tiled decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import srflow
from latent_models import overflowing_model
from srflow.checkpoints import CheckpointError, save_model
from srflow.data.resize import imresize
from srflow.families import load_preset
from srflow.inference import SuperResolver, api
from srflow.inference.tiling import plan_tiles
from srflow.models.srflow import SRFlow


def tiny_model(dtype: torch.dtype = torch.float32) -> SRFlow:
    """The tiny preset with every zero-initialised layer perturbed, so samples differ."""
    model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        gen = torch.Generator().manual_seed(2)
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model.to(dtype).eval()


@pytest.fixture(scope="module")
def resolver() -> SuperResolver:
    return SuperResolver(tiny_model())


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    """A 48x48 LR crop of the astronaut photograph, float (3, 48, 48)."""
    crop = np.ascontiguousarray(data.astronaut()[40:232:4, 120:312:4])
    return torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0


def test_tensor_input_shapes_seed_and_batches(
    resolver: SuperResolver, astronaut: torch.Tensor
) -> None:
    lr = astronaut[:, :20, :26]
    a = resolver.super_resolve(lr, temperature=0.8, samples=3, seed=5)
    b = resolver.super_resolve(lr.unsqueeze(0), temperature=0.8, samples=3, seed=5, batch_size=1)
    assert isinstance(a, torch.Tensor) and a.shape == (3, 3, 80, 104)
    assert a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)  # batching changes rounding only
    assert (a[0] - a[1]).abs().mean() > 1e-3
    c = resolver.super_resolve(lr, temperature=0.8, samples=3, seed=6)
    assert (a - c).abs().mean() > 1e-3
    zero = resolver.super_resolve(lr, temperature=0.0, samples=2, seed=5)
    assert torch.equal(zero[0], zero[1])
    with pytest.raises(ValueError, match=r"\(3, h, w\)"):
        resolver.super_resolve(torch.rand(2, 3, 8, 8))


def test_pil_and_path_inputs_keep_mode_and_alpha(resolver: SuperResolver, tmp_path: Path) -> None:
    rgb = np.ascontiguousarray(data.coffee()[100:300:8, 150:350:8])  # 25x25, padded inside
    gray = Image.fromarray(rgb).convert("L")
    out = resolver.super_resolve(gray, samples=2, seed=0)
    assert [im.mode for im in out] == ["L", "L"] and out[0].size == (100, 100)
    alpha = np.linspace(0, 255, 25 * 25).reshape(25, 25).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    rgba.save(tmp_path / "rgba.png")
    (sr,) = resolver.super_resolve(tmp_path / "rgba.png", seed=0)
    assert sr.mode == "RGBA" and sr.size == (100, 100)
    expected = imresize(alpha.astype(np.float64) / 255.0, scale=4)
    assert np.abs(np.asarray(sr)[:, :, 3] / 255.0 - np.clip(expected, 0, 1)).max() <= 0.5 / 255
    (again,) = resolver.super_resolve(str(tmp_path / "rgba.png"), seed=0)
    assert np.array_equal(np.asarray(sr), np.asarray(again))
    with pytest.raises(srflow.inference.InputTooSmallError, match="at least 2x2"):
        resolver.super_resolve(Image.new("RGB", (1, 7)))


def test_load_path_default_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_model(tiny_model(), tmp_path / "m.safetensors")
    model = srflow.load(path, device="cpu")
    assert isinstance(model, SuperResolver) and model.scale == 4
    monkeypatch.setattr(api, "default_model_path", lambda: None)
    with pytest.raises(CheckpointError, match="no default model in this install.*--model|path"):
        srflow.load()
    monkeypatch.setattr(api, "default_model_path", lambda: path)
    assert srflow.load().scale == 4
    (tmp_path / "bad.safetensors").write_text("not a model")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        srflow.load(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="not available|unknown device"):
        srflow.load(path, device="nonsense")


def _interior(tiles: list, scale: int, margin: int, shape: tuple[int, int]) -> torch.Tensor:
    """Mask of HR pixels at least ``margin`` LR pixels away from every tile's core border
    (image borders excepted)."""
    mask = torch.zeros(shape, dtype=torch.bool)
    for t in tiles:
        y0, y1 = t.core_y[0] + (margin if t.core_y[0] else 0), t.core_y[1] - margin
        x0, x1 = t.core_x[0] + (margin if t.core_x[0] else 0), t.core_x[1] - margin
        mask[y0 * scale : y1 * scale, x0 * scale : x1 * scale] = True
    return mask


def test_tiling_latent_field_is_global(resolver: SuperResolver) -> None:
    crop = np.ascontiguousarray(data.astronaut()[40:200:4, 120:280:4])  # 40x40
    lr = torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0
    untiled = resolver.super_resolve(lr, 0.8, samples=2, seed=1)
    # with context covering the whole image every tile sees what untiled decoding sees
    covered = resolver.super_resolve(lr, 0.8, samples=2, seed=1, tile=20, tile_overlap=20)
    torch.testing.assert_close(covered, untiled, atol=1e-5, rtol=0)
    # short context: two tile grids agree with each other and with the untiled output 4 LR
    # pixels inside the tile cores (measured 0.4 and 0.7 levels of 255 for this model), while
    # right at the core borders the cut-off is visible (tens of levels)
    a = resolver.super_resolve(lr, 0.8, samples=2, seed=1, tile=20, tile_overlap=6)
    b = resolver.super_resolve(lr, 0.8, samples=2, seed=1, tile=16, tile_overlap=6)
    assert a.shape == b.shape == untiled.shape == (2, 3, 160, 160)
    mask_a = _interior(plan_tiles((40, 40), 20, 6, 2), 4, 4, (160, 160))
    mask_b = _interior(plan_tiles((40, 40), 16, 6, 2), 4, 4, (160, 160))
    diff_a = (a - untiled).abs().amax(dim=(0, 1)) * 255
    diff_b = (b - untiled).abs().amax(dim=(0, 1)) * 255
    assert diff_a[mask_a].max() < 2 and diff_b[mask_b].max() < 2
    assert ((a - b).abs().amax(dim=(0, 1)) * 255)[mask_a & mask_b].max() < 2
    assert diff_a.max() > 5 and diff_b.max() > 5


@pytest.mark.parametrize("tile", [None, 16])
def test_diverged_outputs_are_counted_and_clamped(tile: int | None) -> None:
    from srflow.divergence import DivergenceWarning, InconsistentOutputWarning

    model = overflowing_model()
    lr = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.warns(DivergenceWarning) as record:
        out = SuperResolver(model).super_resolve(lr, temperature=1.0, samples=2, tile=tile)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    (warning,) = [w.message for w in record if type(w.message) is DivergenceWarning]
    assert isinstance(warning, DivergenceWarning)
    (garbage,) = [w.message for w in record if isinstance(w.message, InconsistentOutputWarning)]
    assert garbage.diverged == (1, 1) and "not consistent" in garbage.describe(1)
    assert len(warning.diverged) == 2 and all(n > 0 for n in warning.diverged)
    assert warning.values_per_image == out[0].numel() and warning.temperature == 1.0
    assert str(warning).endswith("clamped to 0 or 1); a lower temperature avoids it")
    assert "% of the values diverged at temperature 1.0" in str(warning)


def test_batch_size_changes_outputs_by_float_rounding_only(resolver: SuperResolver) -> None:
    """As documented: the same latents; batched convolutions round differently, so 8-bit
    outputs may differ by one level in a tiny share of the pixels, never more."""
    crop = np.ascontiguousarray(data.astronaut()[40:200:4, 120:280:4])  # 40x40
    lr = torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0
    whole = resolver.super_resolve(lr, 0.3, samples=4, seed=2)
    single = resolver.super_resolve(lr, 0.3, samples=4, seed=2, batch_size=1)
    levels = [torch.round(x * 255) for x in (whole, single)]
    assert (levels[0] - levels[1]).abs().max() <= 1
    assert (levels[0] != levels[1]).float().mean() < 1e-3
    assert (whole - single).abs().max() < 1e-4


def test_tiled_sampling_prepares_each_tile_once(
    resolver: SuperResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiled, every temperature and batch of a call reuses each tile's prepared conditioning
    (computed once per tile), and the images equal those of separate calls."""
    crop = np.ascontiguousarray(data.astronaut()[40:200:4, 120:280:4])  # 40x40: 2x2 tiles
    lr = torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0
    calls = []
    prepare = resolver.sampler.prepare
    with monkeypatch.context() as patch:
        patch.setattr(resolver.sampler, "prepare",
                      lambda x, keep=True, **k: calls.append(keep) or prepare(x, keep, **k))
        outs = list(resolver.sample_temperatures(lr, [0.5, 0.8], [3, 2], 7, tile=20,
                                                 tile_overlap=6, batch_size=2))  # fmt: skip
    assert len(calls) == len(plan_tiles((40, 40), 20, 6, 2)) == 4
    assert all(calls)  # several batches per tile: the terms are kept
    for temperature, n, out in zip([0.5, 0.8], [3, 2], outs, strict=True):
        alone = resolver.super_resolve(lr, temperature, samples=n, seed=7, tile=20,
                                       tile_overlap=6, batch_size=2)  # fmt: skip
        assert torch.equal(out, alone)


def test_the_embedded_model_has_its_name() -> None:
    import srflow

    assert srflow.load().description == "SRFlow 4x (default_x4, srflow's embedded model)"
