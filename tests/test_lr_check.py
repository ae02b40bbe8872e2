"""The LR check on every output: what it measures, that it catches a local blob, the warning
and exit status it gives, and the repair that redraws only where an output fails."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import srflow
from srflow.cli.main import main
from srflow.divergence import DivergenceWarning, InconsistentOutputWarning
from srflow.latent import downscale
from srflow.metrics.lr_check import (
    BLOCK,
    BLOCK_THRESHOLD_DB,
    IMAGE_THRESHOLD_DB,
    check_lr_consistency,
    lr_consistency,
)


def _photo_lr() -> torch.Tensor:
    hr = torch.from_numpy(np.ascontiguousarray(data.astronaut()[64:448, 64:448])).permute(2, 0, 1)
    return downscale(hr[None].float() / 255, 4)[0]  # (3, 96, 96)


def test_a_local_blob_is_caught_where_the_whole_image_figure_stays_high() -> None:
    hr = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1)[None] / 255
    lr = downscale(hr.float(), 4)
    (clean,) = lr_consistency(hr, lr, 4)
    assert clean.consistent and clean.lr_psnr > 45
    blob = hr.clone()
    blob[:, :, 200:224, 296:320] = torch.rand(1, 3, 24, 24, generator=torch.Generator())
    (found,) = lr_consistency(blob, lr, 4)
    assert found.lr_psnr > IMAGE_THRESHOLD_DB  # the whole image hides it ...
    assert found.worst_block_psnr < BLOCK_THRESHOLD_DB and not found.consistent  # ... a block not
    y, x = found.worst_block  # the blob covers LR rows 50-55, columns 74-79
    assert y <= 50 < y + BLOCK and x <= 74 < x + BLOCK
    assert found.failing[53, 77] and not found.failing[10, 10]
    with pytest.warns(InconsistentOutputWarning) as record:
        check_lr_consistency(torch.cat([hr, blob]), lr, 4, temperature=1.1)
    (warning,) = record
    assert warning.message.diverged == (0, 1)
    assert "not consistent with its input at temperature 1.1: LR-PSNR" in str(warning.message)


def test_hot_samples_of_the_embedded_model_are_flagged_and_repaired() -> None:
    resolver = srflow.load()
    lr = _photo_lr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        hot = resolver.super_resolve(lr, temperature=1.2, samples=3, seed=0)
    (flagged,) = [w.message for w in caught if isinstance(w.message, InconsistentOutputWarning)]
    assert sum(flagged.diverged) >= 2, flagged.lines
    repairs: list[tuple[int, int, object]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DivergenceWarning)
        stream = resolver.sample_temperatures(lr, [1.2], 3, 0, repair=True,
                                              on_repair=lambda *r: repairs.append(r))  # fmt: skip
        fixed = next(stream)
    assert not [w for w in caught if isinstance(w.message, InconsistentOutputWarning)]
    assert sorted(j for _, j, _ in repairs) == [j for j, f in enumerate(flagged.diverged) if f]
    assert all(r.fixed and 1 <= r.tries <= 4 for *_, r in repairs)  # type: ignore[attr-defined]
    assert all(c.consistent for c in lr_consistency(fixed, lr[None], 4))
    for j, bad in enumerate(flagged.diverged):  # outputs that passed are untouched
        assert torch.equal(fixed[j], hot[j]) == (not bad)
    with pytest.raises(ValueError, match="repair redraws the latents of a seeded, untiled run"):
        next(resolver.sample_temperatures(lr, [1.2], 1, 0, repair=True, tile=32))


def test_the_cli_names_inconsistent_outputs_and_repairs_them(tmp_path: Path, capsys) -> None:
    lr = (_photo_lr().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(lr).save(tmp_path / "photo.png")
    args = ["sr", str(tmp_path / "photo.png"), "-t", "0.8", "1.2", "-n", "2"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 3
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warned and all("_t1.20_s0" in line and "not consistent" in line for line in warned)
    assert main([*args, "-o", str(tmp_path / "b"), "--repair"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "redrawn" in line]
    assert len(notes) == len(warned) and "warning:" not in err
    for name in ("photo_sr_t0.80_s00.png", "photo_sr_t0.80_s01.png"):  # passed: the same
        same = [np.asarray(Image.open(tmp_path / d / name)) for d in ("a", "b")]
        assert np.array_equal(*same)
    assert main([*args, "-o", str(tmp_path / "c"), "--repair", "--tile", "32"]) == 2
    assert "--repair redraws untiled runs" in capsys.readouterr().err


def test_the_app_marks_inconsistent_samples() -> None:
    from srflow.app import actions
    from srflow.app.session import Session
    from srflow.data.image_io import image_from_pil

    lr = (_photo_lr().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    session = Session(image=image_from_pil(Image.fromarray(lr)), name="photo")
    resolver = srflow.load()
    calm = actions.draw_samples(session, resolver, 0.8, 2, 0, lambda *_: None)
    hot = actions.draw_samples(session, resolver, 1.2, 3, 0, lambda *_: None)
    assert calm.consistent == [True, True] and hot.consistent.count(False) >= 2
    assert "not consistent" in hot.note
