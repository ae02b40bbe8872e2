"""Divergence of the inverse flow is detected and reported the same way on every decoding
path: a DivergenceWarning from the library, one warning line per output file and exit
status 3 from the CLI, with the output written and clamped."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skimage_data

from latent_models import overflowing_model, perturbed_tiny, photo
from srflow.checkpoints import save_model
from srflow.cli.divergence import DIVERGED_STATUS
from srflow.cli.main import main
from srflow.divergence import DIVERGED_BEYOND, DivergenceWarning, check_decoded, count_diverged
from srflow.latent import decode_code, encode_image, restore, sample_code, style_transfer

LINE = re.compile(r"^warning: (.+): (\d+\.\d\d) % of the values diverged")


def test_count_and_check() -> None:
    hr = torch.full((2, 3, 4, 4), 0.5)
    hr[0, 0, 0, 0] = 0.5 + DIVERGED_BEYOND + 1e-3
    hr[1, :, 0, :2] = float("nan")
    hr[1, 0, 1, 1] = -DIVERGED_BEYOND  # |v - 0.5| = 10.5: diverged
    hr[1, 0, 2, 2] = 0.5 + DIVERGED_BEYOND  # on the bound: not diverged
    assert count_diverged(hr) == (1, 7)
    with pytest.warns(DivergenceWarning) as record:
        assert check_decoded(hr, 0.8) is hr
    warning = record[0].message
    assert isinstance(warning, DivergenceWarning)
    assert warning.diverged == (1, 7) and warning.values_per_image == 48
    assert str(warning).startswith("14.58 % of the values diverged at temperature 0.8")
    assert warning.describe(0).startswith("2.08 % ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_decoded(torch.rand(1, 3, 4, 4))  # in range: silent


def test_a_few_values_are_counted_not_rounded_to_zero() -> None:
    assert str(DivergenceWarning((3,), 10**6, 0.8)).startswith("3 values (< 0.01 %) diverged")
    assert str(DivergenceWarning((1,), 10**6, 0.8)).startswith("1 value (< 0.01 %) diverged")
    assert str(DivergenceWarning((50,), 10**6, 0.8)).startswith("0.01 % of the values")


def test_hint_depends_on_the_temperature() -> None:
    assert str(DivergenceWarning((1,), 4, 0.9)).endswith("a lower temperature avoids it")
    assert str(DivergenceWarning((1,), 4, 0.0)).endswith("far from the images the model "
                                                         "was trained on")  # fmt: skip
    assert "a lower temperature, or an input" in str(DivergenceWarning((1,), 4))


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    hr = photo("chelsea", 60, 150, 32, torch.float32)
    return {"hr": hr, "lr": hr[:, ::4, ::4].contiguous()}


def _diverges(run) -> torch.Tensor:  # noqa: ANN001
    with pytest.warns(DivergenceWarning) as record:
        out = run()
    assert any(isinstance(w.message, DivergenceWarning) for w in record)
    return out


def test_every_api_decoding_path_warns(images: dict[str, torch.Tensor]) -> None:
    model = overflowing_model()
    gen = torch.Generator().manual_seed(0)
    code = sample_code(model, images["lr"], 1.0, gen)
    out = _diverges(lambda: decode_code(model, code))
    assert out.abs().max() > DIVERGED_BEYOND  # decode_code is unclamped; the warning says so
    styled = style_transfer(model, images["hr"], images["lr"], temperature=1.0, generator=gen)
    _diverges(lambda: decode_code(model, styled))
    restored = _diverges(lambda: restore(model, images["hr"], temperature=1.0, generator=gen))
    assert restored.min() >= 0 and restored.max() <= 1
    tame = perturbed_tiny(torch.float64)
    encoded = encode_image(tame, images["hr"].double())
    with warnings.catch_warnings():  # an exact encoding decodes back without divergence
        warnings.simplefilter("error", DivergenceWarning)
        torch.testing.assert_close(decode_code(tame, encoded), images["hr"][None].double(),
                                   atol=1e-10, rtol=0)  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diverging")
    model = save_model(overflowing_model(), root / "overflowing.safetensors")
    tame = save_model(perturbed_tiny(torch.float32), root / "tame.safetensors")
    crop = skimage_data.chelsea()[60:124, 150:214]
    Image.fromarray(crop).save(root / "hr.png")
    Image.fromarray(np.ascontiguousarray(crop[::4, ::4])).save(root / "lr.png")
    return {"model": model, "tame": tame, "hr": root / "hr.png", "lr": root / "lr.png"}


def _warned(err: str) -> dict[str, float]:
    assert "Traceback" not in err
    found = {}
    for line in err.splitlines():
        if (m := LINE.match(line.split("\r")[-1].strip())) is not None:
            found[m.group(1)] = float(m.group(2))
    return found


@pytest.mark.parametrize("command", ["sr", "resample", "transfer", "normalize", "restore",
                                     "decode"])  # fmt: skip
def test_cli_names_each_diverged_output(
    command: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--model", str(files["model"]), "--device", "cpu"]
    out = tmp_path / "out.png"
    if command == "sr":
        args = ["sr", str(files["lr"]), "-o", str(tmp_path), "-t", "1.0", "-n", "2"]
        expected = [tmp_path / f"lr_sr_t1.00_s{i:02d}.png" for i in range(2)]
    elif command == "decode":
        latents = tmp_path / "z.safetensors"
        status = main(["resample", str(files["lr"]), "-o", str(tmp_path / "first.png"),
                       "-t", "1.0", "--save-latents", str(latents), *model])  # fmt: skip
        assert status == DIVERGED_STATUS
        capsys.readouterr()
        args, expected = ["decode", str(latents), "-o", str(out)], [out]
    else:
        source = {"resample": [files["lr"]], "transfer": [files["hr"], files["lr"]],
                  "normalize": [files["hr"]], "restore": [files["hr"]]}[command]  # fmt: skip
        args = [command, *map(str, source), "-o", str(out), "-t", "1.0"]
        expected = [out]
    assert main([*args, *model]) == DIVERGED_STATUS
    warned = _warned(capsys.readouterr().err)
    assert sorted(warned) == sorted(str(p) for p in expected)
    assert all(0 < share <= 100 for share in warned.values())
    for path in expected:  # written, and clamped into the image range
        assert path.is_file() and Image.open(path).size == (64, 64)


def test_cli_is_quiet_without_divergence(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a model that super-resolves (the embedded one): neither check says anything
    status = main(["sr", str(files["lr"]), "-o", str(tmp_path), "-t", "0.8", "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 0 and "diverged" not in err and "warning" not in err
