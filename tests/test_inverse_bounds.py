"""Calibrated inverse bounds: they leave in-range decodes bit-identical, stop an exploding
inverse, travel with the checkpoint, and a malformed record is refused with one line."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import srflow
from latent_models import overflowing_model, perturbed_tiny, photo
from srflow.checkpoints import CheckpointError, load_model, save_model
from srflow.divergence import DivergenceWarning, InconsistentOutputWarning, count_diverged
from srflow.models.inverse_bounds import BOUNDS_KEY, calibrate_inverse_bounds
from srflow.models.srflow import SRFlow


def _lrs() -> list[torch.Tensor]:
    crops = [("astronaut", 0, 0), ("chelsea", 60, 150), ("coffee", 150, 250)]
    return [photo(name, top, left, 64, torch.float32)[:, ::4, ::4] for name, top, left in crops]


def _samples(model: SRFlow, lr: torch.Tensor, temperature: float, seed: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conds = model.features(lr[None])
        latents = model.sample_latents(model.latent_shapes(lr[None]), temperature, generator)
        return model.flow.decode(latents, conds).output


def test_calibrated_bounds_leave_in_range_decodes_unchanged() -> None:
    # the random tiny model stays in range up to about temperature 0.4
    model = perturbed_tiny(torch.float32)
    bounds = calibrate_inverse_bounds(model, _lrs(), temperatures=(0.0, 0.3))
    assert len(bounds) == len(model.flow.layers) and all(b > 0 for b in bounds)
    assert model.flow.inverse_bounds is None  # calibrating sets nothing by itself
    lr = _lrs()[1]
    free = [_samples(model, lr, 0.3, seed) for seed in (5, 6, 7)]  # not the calibration seed
    model.flow.inverse_bounds = bounds
    for seed, expected in zip((5, 6, 7), free, strict=True):
        assert torch.equal(_samples(model, lr, 0.3, seed), expected)  # bit-identical


def test_bounds_stop_an_exploding_inverse() -> None:
    model = overflowing_model()
    lr = _lrs()[0]
    assert sum(count_diverged(_samples(model, lr, 1.0))) > 0
    model.flow.inverse_bounds = tuple(4.0 for _ in model.flow.layers)
    bounded = _samples(model, lr, 1.0)
    assert torch.isfinite(bounded).all() and bounded.abs().max() <= 4.0
    assert count_diverged(bounded) == (0,)


def test_every_decode_diverging_leaves_nothing_to_calibrate_on() -> None:
    model = overflowing_model()
    with pytest.raises(ValueError, match="every calibration decode diverged"):
        calibrate_inverse_bounds(model, _lrs()[:1], temperatures=(1.0,))
    with pytest.raises(ValueError, match="margin"):
        calibrate_inverse_bounds(model, _lrs()[:1], margin=0.5)


def test_bounds_travel_with_the_checkpoint(tmp_path: Path) -> None:
    model = perturbed_tiny(torch.float32)
    bounds = tuple(float(i + 1) for i in range(len(model.flow.layers)))
    model.flow.inverse_bounds = bounds
    path = save_model(model, tmp_path / "bounded.safetensors")
    loaded = load_model(path)
    assert isinstance(loaded, SRFlow) and loaded.flow.inverse_bounds == bounds
    model.flow.inverse_bounds = None
    assert load_model(save_model(model, tmp_path / "free.safetensors")).flow.inverse_bounds is None


def _with_bounds_metadata(tmp_path: Path, text: str) -> Path:
    source = save_model(perturbed_tiny(torch.float32), tmp_path / "source.safetensors")
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    metadata[BOUNDS_KEY] = text
    path = tmp_path / "edited.safetensors"
    save_file(tensors, str(path), metadata)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json", "malformed inverse_bounds"), ('{"a": 1}', "malformed inverse_bounds"),
     (json.dumps([1.0, 2.0]), "does not fit"), (json.dumps([-1.0] * 22), "does not fit")],
)  # fmt: skip
def test_malformed_bounds_are_refused_with_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _with_bounds_metadata(tmp_path, text)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_the_embedded_model_ships_calibrated_bounds() -> None:
    from srflow.inference.api import default_model_path

    path = default_model_path()
    assert path is not None
    model = load_model(path)
    assert isinstance(model, SRFlow) and model.flow.inverse_bounds is not None
    # the README's old example: uniform noise at the default temperature overflowed
    # everywhere; with the bounds no value diverges, but the output is no super-resolution of
    # that noise (LR-PSNR about 10 dB): the LR check names it instead
    noise = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        hr = srflow.load(path).super_resolve(noise, temperature=0.8, seed=0)
    assert isinstance(hr, torch.Tensor) and torch.isfinite(hr).all()
    assert [type(w.message) for w in caught] == [InconsistentOutputWarning]
    assert "LR-PSNR 10." in str(caught[0].message)
