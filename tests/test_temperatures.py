"""One rule for temperatures everywhere: finite, >= 0, not absurdly large (API and CLI)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.families import load_preset
from srflow.flows.distributions import MAX_TEMPERATURE, check_temperature, sample_normal
from srflow.models.srflow import SRFlow

BAD = [math.nan, math.inf, -0.1, 256.0]


@pytest.mark.parametrize("value", BAD)
def test_every_sampler_refuses_bad_temperatures(value: float) -> None:
    model = SRFlow(load_preset("tiny")).eval()
    with pytest.raises(ValueError, match="temperature"):
        model.sample(torch.rand(1, 3, 8, 8), value, 1, torch.Generator())
    with pytest.raises(ValueError, match="temperature"):
        sample_normal((1, 2), value)


def test_good_temperatures_pass() -> None:
    assert check_temperature(0) == 0.0 and check_temperature(MAX_TEMPERATURE) == MAX_TEMPERATURE
    with pytest.raises(ValueError, match="did you mean --tile"):
        check_temperature(256)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("temps")
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(root / "lr.png")
    return root / "lr.png", save_model(SRFlow(load_preset("tiny")), root / "tiny.safetensors")


@pytest.mark.parametrize("command", [
    ["sr", "{lr}", "-o", "{out}", "--model", "{model}", "-t"],
    ["resample", "{lr}", "-o", "{out}/x.png", "--model", "{model}", "-t"],
    ["eval", "--hr", "{lr}", "-o", "{out}", "--model", "{model}", "-t"],
    ["resample", "{lr}", "-o", "{out}/x.png", "--model", "{model}", "--level-temperatures"],
])  # fmt: skip
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "256"])
def test_cli_refuses_them_on_one_line(
    setup: tuple[Path, Path], tmp_path: Path, command: list, value: str,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    lr, model = setup
    args = [a.format(lr=lr, out=tmp_path / "out", model=model) for a in command]
    with pytest.raises(SystemExit) as info:
        main([*args, value])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "temperature" in err and ("did you mean --tile" in err) == (value == "256")
    assert not (tmp_path / "out").exists()
