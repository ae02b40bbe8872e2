"""Masks and masked operations: latents outside the mask are kept bit for bit and the image
changes only inside the receptive field of the masked latent positions."""

from __future__ import annotations

import pytest
import torch

from latent_models import perturbed_tiny, photo
from srflow.latent import (
    affected_region,
    content_transfer,
    decode_code,
    encode_image,
    fit_mask,
    latent_masks,
    normalize_code,
    resample_code,
    style_transfer,
)


def test_fit_mask_sizes() -> None:
    small = torch.tensor([[True, False], [False, False]])
    assert torch.equal(fit_mask(small, (2, 2)), small)
    big = fit_mask(small, (8, 8))  # 4x: pixel repetition
    assert big[:4, :4].all() and big.sum() == 16
    fine = torch.zeros(16, 16, dtype=torch.bool)
    fine[5, 13] = True  # one pixel of a 2x finer mask selects its whole HR pixel
    reduced = fit_mask(fine, (8, 8))
    assert reduced[2, 6] and reduced.sum() == 1
    with pytest.raises(ValueError, match="m.png: the mask is 3x2, which does not fit"):
        fit_mask(torch.ones(2, 3), (8, 8), "m.png")


def test_latent_positions_are_inside_if_any_footprint_pixel_is() -> None:
    mask = torch.zeros(32, 48, dtype=torch.bool)
    mask[5, 17] = True
    level1, top = latent_masks(mask, [(1, 6, 16, 24), (1, 96, 4, 6)], (32, 48))
    assert level1.shape == (1, 1, 16, 24) and top.shape == (1, 1, 4, 6)
    assert level1[0, 0, 2, 8] and level1.sum() == 1  # 2x2 footprints
    assert top[0, 0, 0, 2] and top.sum() == 1  # 8x8 footprints


def _corner_mask(size: int) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[4:12, 6:12] = True
    return mask


@pytest.fixture(scope="module")
def encoded() -> tuple:
    """A perturbed tiny model, the code of a real photo and its decoding."""
    model = perturbed_tiny()
    code = encode_image(model, photo("astronaut", 60, 150, 128, torch.float64))
    return model, code, decode_code(model, code)[0]


def _check_locality(model, before, after, mask: torch.Tensor, x0=None) -> torch.Tensor:
    """Latents outside the latent masks identical; image identical outside the region."""
    masks = latent_masks(mask, [tuple(z.shape) for z in before.latents], before.padded_size)
    for m, z0, z1 in zip(masks, before.latents, after.latents, strict=True):
        outside = ~m.expand_as(z0)
        assert torch.equal(z0[outside], z1[outside])
        assert not torch.equal(z0[~outside], z1[~outside])
    region = affected_region(model, masks)[0, 0]
    assert region[mask].all()
    assert region.float().mean() < 0.5  # the bound is far from the whole image
    x0 = decode_code(model, before)[0] if x0 is None else x0
    x1 = decode_code(model, after)[0]
    assert torch.equal(x0[:, ~region], x1[:, ~region])  # bit for bit
    changed = (x0 - x1).abs().amax(0) > 0
    assert changed[mask].float().mean() > 0.9
    return changed & region


def test_masked_resampling_is_local(encoded: tuple) -> None:
    model, code, x0 = encoded
    mask = _corner_mask(128)
    new = resample_code(model, code, [0.9, 0.7, 0.5], torch.Generator().manual_seed(0), mask)
    changed = _check_locality(model, code, new, mask, x0)
    # the bound is honest and not loose: changes reach within one top-level block (8 px) of
    # its far edges
    rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
    region = affected_region(
        model, latent_masks(mask, [tuple(z.shape) for z in code.latents], code.padded_size)
    )[0, 0]
    assert rows.max() >= region.any(1).nonzero().max() - 8
    assert cols.max() >= region.any(0).nonzero().max() - 8


@pytest.mark.parametrize("mode", ["global", "local", "spatial"])
def test_masked_normalization_is_local(encoded: tuple, mode: str) -> None:
    model, code, x0 = encoded
    mask = _corner_mask(128)
    new = normalize_code(model, code, mode, 0.5, torch.Generator().manual_seed(1), mask)
    _check_locality(model, code, new, mask, x0)


def test_masked_style_transfer_mixes_source_and_base() -> None:
    model = perturbed_tiny()
    source = photo("chelsea", 0, 100, 96, torch.float64)
    target_lr = photo("astronaut", 0, 0, 96, torch.float64)[:, ::4, ::4]
    mask = torch.zeros(96, 96, dtype=torch.bool)
    mask[:, :48] = True
    whole = style_transfer(model, source, target_lr)
    mixed = style_transfer(model, source, target_lr, mask=mask, generator=torch.Generator())
    base = style_transfer(model, source, target_lr, mask=torch.zeros_like(mask),
                          generator=torch.Generator())  # fmt: skip
    assert torch.equal(whole.latents[0], encode_image(model, source).latents[0])
    for zw, zm, zb in zip(whole.latents, mixed.latents, base.latents, strict=True):
        half = zw.shape[3] // 2
        assert torch.equal(zm[..., :half], zw[..., :half])
        assert torch.equal(zm[..., half:], zb[..., half:])
    with pytest.raises(ValueError, match="must be 96x96"):
        style_transfer(model, source[:, :, :64], target_lr)


def test_content_transfer_keeps_the_edited_image_outside_the_region() -> None:
    model = perturbed_tiny()
    hr = photo("astronaut", 200, 200, 128, torch.float64)
    content = photo("coffee", 100, 100, 128, torch.float64)
    mask = _corner_mask(128)
    code = content_transfer(model, hr, content, mask, generator=torch.Generator().manual_seed(2))
    edited = torch.where(mask, content, hr)
    _check_locality(model, encode_image(model, edited), code, mask)
    out = decode_code(model, code)[0]
    masks = latent_masks(mask, [tuple(z.shape) for z in code.latents], code.padded_size)
    outside = ~affected_region(model, masks)[0, 0]
    torch.testing.assert_close(out[:, outside], hr[:, outside], atol=1e-10, rtol=0)
