"""The CLI speaks Real-ESRGAN's dialect too (-i, -o defaulting to results/, --ext, --suffix,
a short tile option that does not collide with -t) and every --help shows its defaults."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from srflow.checkpoints import save_model
from srflow.cli.main import build_parser, main
from test_inference_api import tiny_model

PHOTO = np.ascontiguousarray(data.astronaut()[0:128:8, 0:128:8])  # 16x16


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def test_real_esrgan_spellings(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(PHOTO).save(tmp_path / "a.png")
    Image.fromarray(PHOTO).save(tmp_path / "b.jpg", quality=95)
    monkeypatch.chdir(tmp_path)
    common = ["--model", str(model_file), "-t", "0"]
    assert main(["sr", "-i", "a.png", "-i", "b.jpg", "--suffix", "out", "--ext", "auto",
                 "-T", "16", *common]) in (0, 3)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "a_out_t0.00_s00.png", "b_out_t0.00_s00.jpg"]  # fmt: skip
    assert main(["sr", "a.png", "-o", "mine", "--suffix", "_sr", "--format", "webp", *common]) in (
        0, 3)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["a_sr_t0.00_s00.webp"]


def test_no_input_is_one_line(capsys) -> None:
    assert main(["sr"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: no input: give image files or folders (or -i INPUT)")  # fmt: skip


def _help(*command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*command, "--help"])
    return " ".join(out.getvalue().split())


def _commands() -> list[tuple[str, ...]]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    found = []
    for name, child in sub.choices.items():  # type: ignore[union-attr]
        nested = [a for a in child._actions if a.__class__.__name__ == "_SubParsersAction"]
        found += [(name, n) for n in nested[0].choices] if nested else [(name,)]
    return found


def test_every_help_shows_its_defaults_and_its_own_name() -> None:
    commands = _commands()
    assert ("explore",) in commands and ("rescale", "up") in commands
    for command in commands:
        text = _help(*command)
        assert text.startswith(f"usage: srflow {' '.join(command)}"), command
    assert "--tile-overlap TILE_OVERLAP LR context pixels per tile (default: 16)" in _help("sr")
    assert "random seed (same seed, same output) (default: 0)" in _help("sr")
    assert "(default: results)" in _help("sr")
    assert "(default: 0)" in _help("explore")
