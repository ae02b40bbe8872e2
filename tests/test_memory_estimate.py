"""The memory estimate made before each image: it scales with the image and the batch, and a
call that cannot fit is refused on one line that suggests a tile that does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from srflow.cli.main import main
from srflow.inference import memory
from srflow.models.checkpoint import save_model
from test_cli_sr import errors
from test_inference_api import tiny_model


def test_estimate_scales_with_area_batch_and_tiles() -> None:
    model = tiny_model()
    one = memory.estimate_bytes(model, (64, 64), 1)
    assert one is not None and one > 0
    assert memory.estimate_bytes(model, (128, 128), 1) == pytest.approx(4 * one, rel=1e-6)
    assert memory.estimate_bytes(model, (64, 64), 4) > one  # type: ignore[operator]
    tiled = memory.estimate_bytes(model, (1024, 1024), 1, tile=64, samples=1)
    untiled = memory.estimate_bytes(model, (1024, 1024), 1)
    assert tiled is not None and untiled is not None and tiled < untiled / 10


def test_estimate_is_an_upper_bound_of_the_conditioning() -> None:
    model = tiny_model()
    with torch.no_grad():
        conds = model.conditioning(torch.zeros(1, 3, 48, 48))
    size = sum(c.numel() * c.element_size() for c in conds)
    assert memory.estimate_bytes(model, (48, 48), 1) > memory.FIXED_FACTOR * size * 0.99


def test_too_big_for_the_free_memory_is_refused_with_a_tile_that_fits(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_file = save_model(tiny_model(), tmp_path / "tiny.safetensors")
    big = np.ascontiguousarray(data.astronaut()[:256, :256])
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(big[:32, :32]).save(tmp_path / "small.png")
    model = tiny_model()
    need_small = memory.estimate_bytes(model, (32, 32), 1)
    fits_tile = memory.estimate_bytes(model, (256, 256), 1, tile=64, samples=1)
    free = max(need_small, fits_tile) + 1  # type: ignore[type-var]
    assert free < memory.estimate_bytes(model, (256, 256), 1)  # type: ignore[operator]
    monkeypatch.setattr(memory, "available_bytes", lambda device: free)
    out = tmp_path / "out"
    status = main(["sr", str(tmp_path / "big.png"), str(tmp_path / "small.png"), "-o", str(out),
                   "--model", str(model_file), "-t", "0"])  # fmt: skip
    assert status == 1
    (line,) = errors(capsys)
    assert line.startswith(f"error: {tmp_path / 'big.png'}: 256x256 needs about ")
    assert "GB free on cpu): use --tile " in line
    tile = int(line.split("--tile ")[1].split()[0])
    assert memory.estimate_bytes(model, (256, 256), 1, tile=tile, samples=1) <= free
    assert (out / "small_sr_t0.00_s00.png").is_file()
    assert not (out / "big_sr_t0.00_s00.png").exists()
    assert main(["sr", str(tmp_path / "big.png"), "-o", str(out), "--model", str(model_file),
                 "-t", "0", "--tile", str(tile)]) == 0  # fmt: skip
