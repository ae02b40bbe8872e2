"""``srflow sr`` and ``srflow downscale`` end to end, in process, with a tiny model on small crops
of scikit-image's photographs (astronaut, chelsea, coffee)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from srflow.checkpoints import save_model
from srflow.cli import common
from srflow.cli.main import main
from srflow.data.image_io import write_image
from srflow.data.resize import imresize
from test_inference_api import tiny_model

# The random test model's inverse diverges on a few % of the values at these temperatures:
# written, reported on a warning line, exit status 3 (srflow.cli.divergence).
DIVERGED = 3

ASTRONAUT = np.ascontiguousarray(data.astronaut()[0:256:8, 128:384:8])  # 32x32
CHELSEA = np.ascontiguousarray(data.chelsea()[::11, ::13])  # 28x35: padded to 28x36 inside
COFFEE = np.ascontiguousarray(data.coffee()[100:300:8, 200:392:8])  # 25x24


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def sr(model: Path, *args: object) -> int:
    return main(["sr", "--model", str(model), *map(str, args)])


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_outputs_sizes_names_determinism_diversity(
    model_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    Image.fromarray(ASTRONAUT).save(tmp_path / "astronaut.png")
    Image.fromarray(CHELSEA).save(tmp_path / "chelsea.jpg", quality=95)
    inputs = [tmp_path / "astronaut.png", tmp_path / "chelsea.jpg"]
    caplog.set_level(logging.INFO)
    args = ("-t", 0, 0.9, "-n", 2, "--seed", 3)
    assert sr(model_file, *inputs, "-o", tmp_path / "a", *args) == DIVERGED
    assert "padding the 35x28 input to 36x28 (mirrored)" in caplog.text
    assert sr(model_file, *inputs, "-o", tmp_path / "b", *args) == DIVERGED
    notes = [x for x in capsys.readouterr().err.splitlines() if x.startswith("note:")]
    assert notes == ["note: temperature 0 gives the same output for every seed: one sample "
                     "at t=0 instead of 2"] * 2  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"{stem}_sr_t{t}_s0{i}.png" for stem in ("astronaut", "chelsea")
                     for t, n in (("0.00", 1), ("0.90", 2)) for i in range(n)]  # fmt: skip
    for name in names:  # same seed, same bytes
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    out = {name: pixels(tmp_path / "a" / name).astype(float) for name in names}
    assert out["astronaut_sr_t0.00_s00.png"].shape == (128, 128, 3)
    assert out["chelsea_sr_t0.90_s01.png"].shape == (112, 140, 3)
    spread = np.abs(out["chelsea_sr_t0.90_s00.png"] - out["chelsea_sr_t0.90_s01.png"]).mean()
    assert spread > 2.0  # levels of 255: the samples are diverse
    assert sr(model_file, inputs[0], "-o", tmp_path / "c", "-t", 0, 0.9, "--seed", 4) == DIVERGED
    other_seed = pixels(tmp_path / "c" / "astronaut_sr_t0.90_s00.png").astype(float)
    assert np.abs(other_seed - out["astronaut_sr_t0.90_s00.png"]).mean() > 2.0
    at_zero = pixels(tmp_path / "c" / "astronaut_sr_t0.00_s00.png").astype(float)
    assert np.array_equal(at_zero, out["astronaut_sr_t0.00_s00.png"])  # the seed does not matter


def test_real_world_modes(model_file: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    coffee16 = torch.from_numpy(COFFEE).permute(2, 0, 1).double() / 255.0
    coffee16 = coffee16 + torch.linspace(0, 1 / 300, 24)  # values between the 8-bit levels
    write_image(src / "deep.png", coffee16, bit_depth=16)
    Image.fromarray(ASTRONAUT).convert("L").save(src / "gray.png")
    alpha = np.linspace(0, 255, 25 * 24).reshape(25, 24).astype(np.uint8)
    Image.fromarray(np.dstack([COFFEE, alpha]), "RGBA").save(src / "rgba.png")
    palette = Image.fromarray(CHELSEA).quantize(16)
    palette.save(src / "palette.png", transparency=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.fromarray(ASTRONAUT[:, :24]).save(src / "rotated.jpg", exif=exif, quality=95)
    with Image.open(src / "rotated.jpg") as img:
        upright = np.asarray(img).copy()
    Image.fromarray(np.rot90(upright, -1).copy()).save(src / "upright.png")
    assert sr(model_file, src, "-o", out, "--seed", 2) == DIVERGED
    deep = out / "deep_sr_t0.80_s00.png"
    assert deep.read_bytes()[24] == 16  # IHDR bit depth: 16-bit in, 16-bit out
    assert pixels(out / "gray_sr_t0.80_s00.png").shape == (128, 128)  # mode L
    rgba = pixels(out / "rgba_sr_t0.80_s00.png")
    assert rgba.shape == (100, 96, 4)
    expected = np.clip(imresize(alpha / 255.0, scale=4), 0, 1) * 255
    assert np.abs(rgba[:, :, 3] - expected).max() <= 0.5 + 1e-9  # bicubic-upscaled alpha
    assert pixels(out / "palette_sr_t0.80_s00.png").shape == (112, 140, 4)  # transparency kept
    rotated = pixels(out / "rotated_sr_t0.80_s00.png")
    assert rotated.shape == (96, 128, 3)  # 32 wide, 24 high once upright
    assert np.array_equal(rotated, pixels(out / "upright_sr_t0.80_s00.png"))


def test_bad_inputs_are_reported_and_the_rest_done(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(COFFEE).save(src / "good.png")
    (src / "notes.txt").write_text("not an image")
    whole = (src / "good.png").read_bytes()
    (src / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (src / "empty.jpg").write_bytes(b"")
    (src / "garbage.webp").write_bytes(b"RIFF" + bytes(range(200)))
    Image.fromarray(COFFEE[:1, :5]).save(src / "tiny.png")
    (tmp_path / "no_images").mkdir()
    status = sr(model_file, src, tmp_path / "missing.png", tmp_path / "no_images", "-o", out)
    assert status == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    for name in ("truncated.png", "empty.jpg", "garbage.webp", "missing.png", "no_images"):
        assert sum(name in line for line in lines) == 1, (name, lines)
    assert any("tiny.png" in line and "at least 2x2" in line for line in lines)
    assert len(lines) == 6
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {src / 'notes.txt'}: skipped, not an image file"]  # not a failure
    assert sorted(p.name for p in out.iterdir()) == ["good_sr_t0.80_s00.png"]


def test_unwritable_output(model_file: Path, tmp_path: Path, capsys) -> None:
    Image.fromarray(COFFEE).save(tmp_path / "good.png")
    Image.fromarray(ASTRONAUT).save(tmp_path / "other.png")
    (tmp_path / "a_file").write_text("")
    assert sr(model_file, tmp_path / "good.png", "-o", tmp_path / "a_file" / "out") == 2
    (line,) = errors(capsys)
    assert "a_file" in line and "cannot create output folder" in line
    out = tmp_path / "out"
    (out / "good_sr_t0.80_s00.png").mkdir(parents=True)  # the target name is taken
    assert sr(model_file, tmp_path / "good.png", tmp_path / "other.png", "-o", out) == 1
    (line,) = errors(capsys)
    assert "good_sr_t0.80_s00.png: cannot write" in line
    assert (out / "other_sr_t0.80_s00.png").is_file() and no_temporary_files(out)


def test_bad_models_and_options(
    model_file: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(COFFEE).save(tmp_path / "good.png")
    (tmp_path / "text.safetensors").write_text("this is not a model")
    (tmp_path / "junk.pth").write_bytes(b"\x80\x02junk" * 10)
    out = tmp_path / "out"
    for model in ("text.safetensors", "junk.pth", "absent.safetensors"):
        assert sr(tmp_path / model, tmp_path / "good.png", "-o", out) == 2
        (line,) = errors(capsys)
        assert model in line
    monkeypatch.setattr(common, "default_model_path", lambda: None)
    assert main(["sr", str(tmp_path / "good.png"), "-o", str(out)]) == 2
    (line,) = errors(capsys)
    assert "no default model" in line and "--model" in line
    assert main(["info"]) == 2
    (line,) = errors(capsys)
    assert "no default model" in line and "srflow info MODEL" in line
    for option in (["-n", "0"], ["--device", "nonsense"], ["--half"], ["--tile", "0"],
                   ["--tile", "15"]):  # fmt: skip
        assert sr(model_file, tmp_path / "good.png", "-o", out, *option) == 2
        assert len(errors(capsys)) == 1
    assert not out.exists()  # fatal problems are found before anything is written


def test_tiled_output_close_to_untiled(model_file: Path, tmp_path: Path) -> None:
    big = np.ascontiguousarray(data.astronaut()[0:384:8, 100:452:8])  # 48x44
    Image.fromarray(big).save(tmp_path / "big.png")
    assert sr(model_file, tmp_path / "big.png", "-o", tmp_path / "whole") == DIVERGED
    tiled = ("--tile", 24, "--tile-overlap", 10)  # 2x2 tiles
    assert sr(model_file, tmp_path / "big.png", "-o", tmp_path / "tiled", *tiled) == DIVERGED
    whole = pixels(tmp_path / "whole" / "big_sr_t0.80_s00.png").astype(float)
    tiles = pixels(tmp_path / "tiled" / "big_sr_t0.80_s00.png").astype(float)
    assert whole.shape == tiles.shape == (192, 176, 3)
    # measured: 0.03% of the values differ, by one level
    assert np.abs(whole - tiles).mean() < 0.05 and np.abs(whole - tiles).max() <= 4


def test_downscale(tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(ASTRONAUT).save(src / "astronaut.png")
    Image.fromarray(CHELSEA).save(src / "odd.png")
    Image.fromarray(ASTRONAUT).convert("L").save(src / "gray.png")
    alpha = np.linspace(0, 255, 32 * 32).reshape(32, 32).astype(np.uint8)
    Image.fromarray(np.dstack([ASTRONAUT, alpha]), "RGBA").save(src / "rgba.png")
    Image.fromarray(ASTRONAUT[:3, :3]).save(src / "small.png")
    assert main(["downscale", str(src), "-o", str(out)]) == 1
    lines = errors(capsys)
    assert len(lines) == 2 and "odd.png" in lines[0] and "not a multiple of 4" in lines[0]
    assert "small.png" in lines[1]
    assert np.array_equal(pixels(out / "astronaut.png"), imresize(ASTRONAUT, scale=0.25))
    assert pixels(out / "gray.png").shape == (8, 8)
    assert np.array_equal(pixels(out / "rgba.png")[:, :, 3], imresize(alpha, scale=0.25))
    assert main(["downscale", str(src / "odd.png"), "-o", str(out), "--crop"]) == 0
    assert np.array_equal(pixels(out / "odd.png"), imresize(CHELSEA[:28, :32], scale=0.25))
    assert main(["downscale", str(src / "odd.png"), "-o", str(out), "-s", "1"]) == 2
    assert len(errors(capsys)) == 1


def test_closed_pipe_ends_quietly(monkeypatch, capsys) -> None:
    """``srflow info | head -1``: the reader left; exit 141 with no traceback."""
    import os
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: writing raises BrokenPipeError
    stdout = os.fdopen(write_end, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        assert main(["info"]) == 141
    finally:
        stdout.close()


def test_outputs_into_the_input_folder_and_notes(tmp_path: Path, capsys) -> None:
    """`srflow sr DIR -o DIR` super-resolves the inputs, never its own earlier outputs; a
    non-image file in the folder is a note, not a failure."""
    from srflow.checkpoints import save_model
    from srflow.families import load_preset
    from srflow.models.srflow import SRFlow

    model = save_model(SRFlow(load_preset("tiny")), tmp_path / "m.safetensors")
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(ASTRONAUT[:16, :16]).save(folder / "a.png")
    (folder / "readme.txt").write_text("not an image")
    for _ in range(2):
        code = main(["sr", str(folder), "-o", str(folder), "--model", str(model)])
        assert code in (0, 3)  # 3: the random model's outputs are not LR-consistent
        assert sorted(p.name for p in folder.glob("*.png")) == ["a.png", "a_sr_t0.80_s00.png"]
    for _ in range(2):  # another suffix: neither its own nor the earlier outputs are inputs
        code = main(["sr", str(folder), "-o", str(folder), "--model", str(model), "--suffix",
                     "up"])  # fmt: skip
        assert code in (0, 3)
        names = sorted(p.name for p in folder.glob("*.png"))
        assert names == ["a.png", "a_sr_t0.80_s00.png", "a_up_t0.80_s00.png"], names
    err = capsys.readouterr().err
    assert "note: " in err and "readme.txt: skipped, not an image file" in err
    assert "error" not in err


def test_tiled_progress_is_a_clean_percentage(model_file: Path, tmp_path: Path, capsys) -> None:
    import warnings

    big = np.ascontiguousarray(data.astronaut()[0:384:8, 100:452:8])  # 48x44: 3x3 tiles
    Image.fromarray(big).save(tmp_path / "big.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sr(model_file, tmp_path / "big.png", "-o", tmp_path / "o", "-T", 16, "-n", 2, "-t", 0.3)
    assert not [w for w in caught if "tqdm" in type(w.message).__name__.lower()]
    err = capsys.readouterr().err
    assert "big.png:" in err and "%|" in err
    assert not re.search(r"\d\.\d+/2", err) and "-" not in err.split("<")[-1].split("]")[0]


def test_a_second_run_notes_overwrites_or_skips(model_file: Path, tmp_path: Path, capsys) -> None:
    Image.fromarray(COFFEE).save(tmp_path / "a.png")
    out = tmp_path / "out"
    args = (tmp_path / "a.png", "-o", out, "-t", 0.3, "-n", 2)
    assert sr(model_file, *args) in (0, 3)
    first = (out / "a_sr_t0.30_s01.png").stat().st_mtime_ns
    capsys.readouterr()
    assert sr(model_file, *args) in (0, 3)
    assert "a.png: overwriting 2 existing output(s)" in capsys.readouterr().err
    second = (out / "a_sr_t0.30_s01.png").stat().st_mtime_ns
    assert sr(model_file, *args, "--skip-existing") == 0
    captured = capsys.readouterr()
    assert "its 2 output(s) exist; skipped" in captured.err
    assert "0 of 1 image(s) super-resolved (1 skipped: outputs exist)" in captured.out
    assert (out / "a_sr_t0.30_s01.png").stat().st_mtime_ns == second >= first
    (out / "a_sr_t0.30_s01.png").unlink()  # one missing: computed again
    assert sr(model_file, *args, "--skip-existing") in (0, 3)
    assert (out / "a_sr_t0.30_s01.png").is_file()


def test_same_named_inputs_never_overwrite_each_other(model_file: Path, tmp_path: Path) -> None:
    for folder in ("a", "b", "d1", "d2", "d1/sub"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for path in ("a/photo.png", "b/photo.png", "d1/x.png", "d2/x.png", "a/photo.jpg"):
        Image.fromarray(COFFEE).save(tmp_path / path)
    out = tmp_path / "out"
    inputs = [tmp_path / p for p in ("a/photo.png", "b/photo.png", "a/photo.jpg", "d1", "d2")]
    assert sr(model_file, *inputs, "-o", out, "-t", 0) in (0, 3)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == [
        "a/photo_jpg_sr_t0.00_s00.png", "a/photo_png_sr_t0.00_s00.png",
        "b/photo_sr_t0.00_s00.png", "d1/x_sr_t0.00_s00.png", "d2/x_sr_t0.00_s00.png",
    ]  # fmt: skip


def test_leftovers_of_a_killed_run_are_removed_and_long_names_work(
    model_file: Path, tmp_path: Path, capsys
) -> None:
    import os

    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    dead = out / "sub" / f".a_sr_t0.00_s00.png.{2**22 + 12345}.abcd1234.tmp"
    running = out / f".b.png.{os.getpid()}.abcd1234.tmp"
    for path in (dead, running):
        path.write_bytes(b"partial")
    name = "n" * 238  # the output name is 255 bytes, the longest a file name may be
    Image.fromarray(COFFEE).save(tmp_path / f"{name}.png")
    assert sr(model_file, tmp_path / f"{name}.png", "-o", out, "-t", 0) in (0, 3)
    assert (out / f"{name}_sr_t0.00_s00.png").is_file()
    assert not dead.exists() and running.exists()
    assert "removed 1 unfinished file(s)" in capsys.readouterr().err
