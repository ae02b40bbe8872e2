"""Latent codes: encode/decode round trips on real photographs, latent files, temperatures."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from latent_models import perturbed_tiny, photo
from srflow.latent import (
    LatentFileError,
    check_compatible,
    decode_code,
    downscale,
    encode_image,
    load_latents,
    sample_code,
    save_latents,
)


def test_round_trip_float64_with_own_lr() -> None:
    """Three real photographs in one batch, each with its own bicubic LR."""
    model = perturbed_tiny()
    hr = torch.stack([photo(name, 40, 60, 64, torch.float64)
                      for name in ("astronaut", "chelsea", "coffee")])  # fmt: skip
    code = encode_image(model, hr)
    torch.testing.assert_close(code.lr, downscale(hr, 4), atol=0, rtol=0)
    torch.testing.assert_close(decode_code(model, code), hr, atol=1e-10, rtol=0)


def test_round_trip_pads_odd_sizes_and_takes_a_given_lr() -> None:
    model = perturbed_tiny()
    hr = photo("coffee", 0, 0, 100, torch.float64)[:, :92, :100]  # not multiples of 8
    lr = downscale(hr[None], 4)[0] * 0.9  # any LR of the right size
    code = encode_image(model, hr, lr)
    assert code.image_size == (92, 100) and code.padded_size == (96, 104)
    torch.testing.assert_close(code.lr[0, :, :23, :25], lr, atol=0, rtol=0)
    torch.testing.assert_close(decode_code(model, code)[0], hr, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="is not 4x the LR"):
        encode_image(model, hr, lr[:, :, :-1])


def test_round_trip_float32_within_1e_4() -> None:
    """float32: the worst pixel error over a real photo stays below 1e-4 (0.03 grey levels)."""
    model = perturbed_tiny(torch.float32)
    hr = photo("astronaut", 100, 100, 96, torch.float32)
    back = decode_code(model, encode_image(model, hr))[0]
    assert (back - hr).abs().max() < 1e-4


def test_latents_file_round_trip_is_bit_exact(tmp_path) -> None:
    model = perturbed_tiny()
    code = encode_image(model, photo("chelsea", 0, 100, 64, torch.float64)[:, :60])
    path = save_latents(tmp_path / "sub" / "z.safetensors", code)
    back = load_latents(path)
    assert back.image_size == (60, 64) and back.scale == 4
    assert back.model_hash == code.model_hash
    for a, b in zip(back.latents, code.latents, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert torch.equal(back.lr, code.lr)
    check_compatible(model, back)
    assert not list(tmp_path.glob("sub/.*"))  # no temporary file left


def test_bad_latents_files_give_one_line_errors(tmp_path) -> None:
    with pytest.raises(LatentFileError, match="no such latents file"):
        load_latents(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"definitely not safetensors")
    with pytest.raises(LatentFileError, match="junk.safetensors: cannot read latents"):
        load_latents(junk)
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, other)
    with pytest.raises(LatentFileError, match="other.safetensors: not an srflow latents file"):
        load_latents(other)
    model = perturbed_tiny()
    code = encode_image(model, photo("coffee", 0, 0, 32, torch.float64))
    path = save_latents(tmp_path / "z.safetensors", code)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(LatentFileError, match="cut.safetensors"):
        load_latents(cut)
    wrong = code.with_latents([z[:, :, :2] for z in code.latents])
    with pytest.raises(LatentFileError, match="do not fit the model"):
        check_compatible(model, wrong)


def test_per_level_temperatures_follow_the_latent_levels() -> None:
    model = perturbed_tiny(torch.float32)
    assert model.latent_levels() == [1, 3]  # tiny: split after level 1, top latent at level 3
    assert model.latent_temperatures([0.9, 0.7, 0.5]) == [0.9, 0.5]  # one per level
    assert model.latent_temperatures([0.9, 0.5]) == [0.9, 0.5]  # one per latent
    with pytest.raises(ValueError, match="one per flow level"):
        model.latent_temperatures([0.1, 0.2, 0.3, 0.4])
    code = sample_code(model, torch.rand(3, 8, 8), [1.0, 0.0, 0.0], torch.Generator())
    assert code.latents[0].std() > 0.5 and code.latents[1].abs().max() == 0
