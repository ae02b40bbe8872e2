"""Every command answers on one line, never with a traceback: the one catch point in
``srflow.cli.main`` (status 2 for an unusable file, 1 for anything unforeseen) and the one
per input in ``for_each_input`` (the batch goes on)."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from srflow.checkpoints import save_model
from srflow.cli import sr as sr_command
from srflow.cli.main import main
from test_cli_sr import errors
from test_inference_api import tiny_model

PHOTO = np.ascontiguousarray(data.astronaut()[0:128:8, 0:128:8])  # 16x16


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def _rgb16_png(path: Path) -> Path:
    from srflow.data.image_io import write_image

    rgb = np.asarray(PHOTO, dtype=np.float32).transpose(2, 0, 1) / 255
    import torch

    write_image(path, torch.from_numpy(rgb), bit_depth=16)
    return path


def test_16_bit_tiff_without_tifffile_fails_that_image_only(
    model_file: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rgb16_png(tmp_path / "deep.png")
    Image.fromarray(PHOTO).save(tmp_path / "plain.png")
    real_import = builtins.__import__

    def no_tifffile(name: str, *args, **kwargs):  # noqa: ANN202
        if name == "tifffile":
            raise ImportError("no tifffile here")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "tifffile", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_tifffile)
    out = tmp_path / "out"
    inputs = [str(tmp_path / "deep.png"), str(tmp_path / "plain.png")]
    status = main(["sr", *inputs, "-o", str(out), "--model", str(model_file), "-t", "0",
                   "--format", "tif"])  # fmt: skip
    assert status == 1
    (line,) = errors(capsys)
    assert "deep_sr_t0.00_s00.tif: cannot write" in line and "tifffile" in line
    assert (out / "plain_sr_t0.00_s00.tif").is_file()  # the batch went on
    assert not (out / "deep_sr_t0.00_s00.tif").exists()


def test_unforeseen_error_in_one_input_is_one_line_and_the_batch_goes_on(
    model_file: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        Image.fromarray(PHOTO).save(tmp_path / f"{name}.png")
    real = sr_command.SuperResolver.sample_temperatures
    calls = []

    def flaky(self, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("something nobody foresaw")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(sr_command.SuperResolver, "sample_temperatures", flaky)
    out = tmp_path / "out"
    status = main(["sr", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out),
                   "--model", str(model_file), "-t", "0"])  # fmt: skip
    assert status == 1
    (line,) = errors(capsys)
    assert line.startswith(f"error: {tmp_path / 'a.png'}: unexpected ZeroDivisionError")
    assert "something nobody foresaw" in line and "-v" in line
    assert (out / "b_sr_t0.00_s00.png").is_file()


def test_unforeseen_error_in_a_command_is_one_line(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srflow.cli import tools

    def broken(args):  # noqa: ANN001, ANN202
        raise KeyError("deep inside")

    monkeypatch.setattr(tools, "run_info", broken)
    assert main(["info", str(tmp_path / "x.safetensors")]) == 1
    (line,) = errors(capsys)
    assert line == "error: unexpected KeyError: 'deep inside' (srflow -v ... shows where)"


def _training_checkpoint(path: Path) -> Path:
    import torch

    from srflow.config.loading import to_dict
    from srflow.train.checkpoint import FORMAT

    model = tiny_model()
    torch.save({"format": FORMAT, "config": {"model": to_dict(model.config)},
                "model": model.state_dict()}, path)  # fmt: skip
    return path


def test_impossible_output_paths(tmp_path: Path, capsys) -> None:
    pytest.importorskip("srflow.cli.train")
    source = _training_checkpoint(tmp_path / "step.pt")
    assert main(["export", str(source), str(tmp_path / "new" / "ok.safetensors")]) == 0
    capsys.readouterr()  # (a missing folder is created)
    (tmp_path / "file").write_text("")  # a folder that is a file cannot be
    assert main(["export", str(source), str(tmp_path / "file" / "x.safetensors")]) == 2
    (line,) = errors(capsys)
    assert str(tmp_path / "file") in line


def test_convert_to_an_impossible_path(tmp_path: Path, capsys) -> None:
    import torch

    from conftest import VECTORS, need_path

    source = tmp_path / "SRFlow_mini.pth"
    torch.save(torch.load(need_path(VECTORS / "mini4x") / "state_dict.pt"), source)
    (tmp_path / "file").write_text("")
    assert main(["convert", str(source), str(tmp_path / "file" / "x.safetensors")]) == 2
    (line,) = errors(capsys)
    assert str(tmp_path / "file") in line


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", "1.5", "abc"])
def test_seed_out_of_range_is_refused_on_one_line(
    model_file: Path, tmp_path: Path, capsys, seed: str
) -> None:
    Image.fromarray(PHOTO).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as info:
        main(["sr", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model",
              str(model_file), "--seed", seed])  # fmt: skip
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--seed" in err.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_largest_seed_works(model_file: Path, tmp_path: Path) -> None:
    Image.fromarray(PHOTO).save(tmp_path / "a.png")
    assert main(["sr", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model",
                 str(model_file), "-t", "0", "--seed", str(2**63 - 1)]) in (0, 3)  # fmt: skip


def test_convert_names_files_that_need_no_conversion(
    model_file: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    import torch

    assert main(["convert", str(model_file), str(tmp_path / "again.safetensors")]) == 2
    (line,) = errors(capsys)
    assert "already an srflow model file (SRFlow 4x" in line and "srflow info" in line
    renamed = tmp_path / "model.pth"  # our format under another name
    renamed.write_bytes(model_file.read_bytes())
    assert main(["convert", str(renamed), str(tmp_path / "x.safetensors")]) == 2
    assert "already an srflow model file" in errors(capsys)[0]
    last = tmp_path / "last.pt"
    torch.save({"format": "srflow-train/1", "step": 1037, "model": {"w": torch.zeros(1)}}, last)
    sr_args = ["sr", "in.png", "-o", str(tmp_path / "o"), "--model", str(last)]
    for command in (["convert", str(last), str(tmp_path / "y.safetensors")], sr_args):
        assert main(command) == 2
        (line,) = errors(capsys)
        assert "training checkpoint (step 1037)" in line and "srflow export RUN_DIR" in line
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "y.safetensors").exists()
