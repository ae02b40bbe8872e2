"""The memory estimate made before each image: it scales with the image and the batch, and a
call that cannot fit is refused on one line that suggests a tile that does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.inference import memory
from test_cli_sr import errors
from test_inference_api import tiny_model


def test_estimate_scales_with_area_batch_and_tiles() -> None:
    model = tiny_model()
    one = memory.estimate_bytes(model, (64, 64), 1)
    assert one is not None and one > 0
    assert memory.estimate_bytes(model, (128, 128), 1) == pytest.approx(4 * one, rel=1e-6)  # area
    assert memory.estimate_bytes(model, (64, 64), 4) > one  # type: ignore[operator]
    tiled = memory.estimate_bytes(model, (1024, 1024), 1, tile=64, samples=1)
    untiled = memory.estimate_bytes(model, (1024, 1024), 1)
    assert tiled is not None and untiled is not None and tiled < untiled / 2


def test_estimate_is_an_upper_bound_of_the_conditioning() -> None:
    model = tiny_model()
    with torch.no_grad():
        conds = model.prepare(torch.zeros(1, 3, 48, 48)).features
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
                 "-t", "0", "--tile", str(tile)]) in (0, 3)  # fmt: skip


def test_plan_prefers_fewer_samples_at_a_time_then_tiles() -> None:
    model = tiny_model()
    options = dict(tile_overlap=16, samples=4, scale=4)
    four = memory.estimate_bytes(model, (256, 256), 4, samples=4)
    one = memory.estimate_bytes(model, (256, 256), 1, samples=4)
    assert memory.plan_memory(model, (256, 256), four, batch=4, tile=None, **options) == (
        memory.MemoryPlan(4, None, four, four)
    )
    plan = memory.plan_memory(model, (256, 256), one, batch=4, tile=None, **options)
    assert plan is not None and (plan.batch, plan.tile) == (1, None)
    tiled = memory.estimate_bytes(model, (256, 256), 1, tile=128, samples=4)
    assert tiled is not None and tiled < one  # type: ignore[operator]
    plan = memory.plan_memory(model, (256, 256), one - 1, batch=4, tile=None, **options)
    assert plan is not None and plan.tile is not None and plan.tile < 256
    assert plan.estimate <= one - 1 and "tiles of" in plan.describe()
    assert memory.plan_memory(model, (256, 256), 1000, batch=4, tile=None, **options) is None
    assert memory.parse_bytes("2GiB") == 2 * 2**30
    with pytest.raises(ValueError, match="not a memory size: 'lots'"):
        memory.parse_bytes("lots")


def test_max_memory_picks_a_plan_and_says_so(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_file = save_model(tiny_model(), tmp_path / "tiny.safetensors")
    big = np.ascontiguousarray(data.astronaut()[:128, :128])
    Image.fromarray(big).save(tmp_path / "big.png")
    model = tiny_model()
    held = 300 * 2**20  # what the process holds comes off the budget
    monkeypatch.setattr(memory, "in_use_bytes", lambda device: held)
    untiled = memory.estimate_bytes(model, (128, 128), 1)
    tiled = memory.estimate_bytes(model, (128, 128), 2, tile=64, samples=2)
    assert tiled < untiled  # type: ignore[operator]
    budget = held + memory.SLACK_BYTES + untiled - 1  # type: ignore[operator]
    out = tmp_path / "out"
    args = ["sr", str(tmp_path / "big.png"), "-o", str(out), "--model", str(model_file), "-n", "2",
            "-t", "0.2"]  # fmt: skip
    assert main([*args, "--max-memory", str(budget)]) in (0, 3)  # 3: a random model
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: big.png: memory budget ")
    assert "2 samples at a time, tiles of 64 LR pixels" in notes[0]  # untiled does not fit
    assert sorted(p.name for p in out.iterdir()) == [
        "big_sr_t0.20_s00.png", "big_sr_t0.20_s01.png"
    ]  # fmt: skip
    assert main([*args, "--max-memory", "1k"]) == 1
    (line,) = errors(capsys)
    assert "128x128 does not fit in --max-memory 0M: needs at least about " in line
    assert "(the model and runtime hold 300M" in line and line.endswith("M or more")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--max-memory", "lots"])
    assert exit_info.value.code == 2


_PEAK_OF_CHILD = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "srflow", *sys.argv[1:]], capture_output=True,
                      text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
print(done.stderr)
"""


@pytest.mark.slow
def test_max_memory_bounds_the_whole_process_or_refuses(tmp_path) -> None:  # noqa: ANN001
    """The embedded model on a 256x192 photo: the whole process's peak stays within the budget,
    or the command refuses before decoding and names the smallest budget that works."""
    import subprocess
    import sys

    from skimage import data

    crop = np.ascontiguousarray(data.astronaut()[:384, :512:2][::2])  # 256x192
    Image.fromarray(crop).save(tmp_path / "photo.png")

    def run(budget: str) -> tuple[int, int, str]:
        args = ["sr", str(tmp_path / "photo.png"), "-o", str(tmp_path / "o"), "-t", "0.8",
                "--max-memory", budget]  # fmt: skip
        out = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, *args], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        status, peak = map(int, out.splitlines()[0].split())
        return status, peak, out

    status, peak, _ = run("600M")
    assert status == 0 and peak <= memory.parse_bytes("600M"), peak / 2**20
    status, peak, out = run("300M")
    assert status == 1 and "does not fit in --max-memory 300M" in out
    least = int(out.split("use --max-memory ")[1].split("M")[0])
    assert 300 < least < 600 and peak < memory.parse_bytes("300M")  # refused before decoding
