"""HCFlow image rescaling: the Python API, `srflow rescale down|up`, `eval --task rescale`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.data.transforms import quantize_8bit
from srflow.families import load_preset
from srflow.inference.rescale import HR_SIZE_KEY, Rescaler, read_lr_image, write_lr_png
from srflow.models.hcflow import HCFlow
from srflow.models.hcflow_config import HCFlowConfig
from srflow.models.srflow import SRFlow

# The random test model's inverse diverges on a few % of the values at these temperatures:
# written, reported on a warning line, exit status 3 (srflow.cli.divergence).
DIVERGED = 3

TINY = HCFlowConfig(levels=2, trunk_steps=1, conditional_steps=1, rrdb_blocks=(1, 1),
                    rrdb_growth=8, hidden_channels=8, task="rescale", dense_growth=8)  # fmt: skip


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    return save_model(HCFlow(TINY), tmp_path_factory.mktemp("m") / "rescale.safetensors")


def photo(h: int = 37, w: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(h, w, 3)), 0), 1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    return (smooth * 255).round().astype(np.uint8)


def test_downscale_is_the_trunk_output_quantized(model_file: Path) -> None:
    rescaler = Rescaler.from_path(model_file, "cpu")
    hr = torch.from_numpy(photo(32, 48)).permute(2, 0, 1).float() / 255
    lr = rescaler.downscale(hr)
    assert lr.shape == (3, 8, 12)
    assert torch.equal(lr, torch.round(lr * 255) / 255)  # 8-bit exactly
    y = rescaler.model.encode(hr[None]).y[0]
    assert torch.equal(lr, quantize_8bit(y))


def test_upscale_of_odd_sizes_crops_to_the_recorded_size(model_file: Path, tmp_path: Path) -> None:
    rescaler = Rescaler.from_path(model_file, "cpu")
    hr = torch.from_numpy(photo()).permute(2, 0, 1).float() / 255  # 50x37: padded to 52x40
    lr = rescaler.downscale(hr)
    assert lr.shape == (3, 10, 13)
    write_lr_png(tmp_path / "lr.png", lr, (37, 50))
    loaded, size = read_lr_image(tmp_path / "lr.png")
    assert size == (37, 50) and torch.equal(loaded.rgb, lr)
    a = rescaler.upscale(loaded.rgb, 1.0, 2, seed=5, hr_size=size)
    b = rescaler.upscale(loaded.rgb, 1.0, 2, seed=5, hr_size=size)
    assert a.shape == (2, 3, 37, 50) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # temperature 1: the samples differ
    t0 = rescaler.upscale(loaded.rgb, 0.0, 2, seed=5, hr_size=size)
    assert torch.equal(t0[0], t0[1])
    with pytest.raises(ValueError, match="does not fit"):
        rescaler.upscale(loaded.rgb, hr_size=(60, 50))


def test_rescaling_needs_an_hcflow_model() -> None:
    with pytest.raises(ValueError, match="needs an HCFlow model"):
        Rescaler(SRFlow(load_preset("tiny")))


def test_cli_round_trip_keeps_size_and_alpha(model_file: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo()).save(src / "a.png")
    alpha = np.full((30, 41), 200, np.uint8)
    Image.fromarray(np.dstack([photo(30, 41, 1), alpha]), "RGBA").save(src / "b.png")
    (src / "notes.txt").write_text("not an image")
    args = ["--model", str(model_file)]
    assert main(["rescale", "down", str(src), "-o", str(tmp_path / "lr"), *args]) == 0
    err = capsys.readouterr().err
    assert "note: " in err and "notes.txt: skipped, not an image file" in err
    with Image.open(tmp_path / "lr" / "a_x4.png") as img:
        assert img.size == (13, 10) and img.mode == "RGB" and img.text[HR_SIZE_KEY] == "50x37"
    with Image.open(tmp_path / "lr" / "b_x4.png") as img:
        assert img.size == (11, 8) and img.mode == "RGBA"
    up = ["rescale", "up", str(tmp_path / "lr"), "-o", str(tmp_path / "hr"), *args]
    assert main(up) == DIVERGED
    out = capsys.readouterr().out
    assert "model: HCFlow rescaling 4x (custom configuration)" in out
    with Image.open(tmp_path / "hr" / "a_x4_up.png") as img:
        assert img.size == (50, 37)
    with Image.open(tmp_path / "hr" / "b_x4_up.png") as img:
        assert img.size == (41, 30) and img.mode == "RGBA"
        assert abs(int(np.asarray(img)[..., 3].mean()) - 200) <= 1


def test_cli_errors_are_one_line(model_file: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    srflow_file = save_model(SRFlow(load_preset("tiny")), tmp_path / "srflow.safetensors")
    Image.fromarray(photo()).save(tmp_path / "a.png")
    assert main(["rescale", "down", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
                 "--model", str(srflow_file)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs an HCFlow model" in err and "srflow.safetensors" in err
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code = main(["rescale", "up", str(tmp_path / "broken.png"), "-o", str(tmp_path / "o"),
                 "--model", str(model_file)])  # fmt: skip
    assert code == 1 and "broken.png" in capsys.readouterr().err
    assert not (tmp_path / "o" / "broken_up.png").exists()


def test_eval_task_rescale_reports_both_methods(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(2):
        Image.fromarray(photo(40, 48, i)).save(hr / f"im{i}.png")
    code = main(["eval", "--task", "rescale", "--hr", str(hr), "--model", str(model_file),
                 "-o", str(tmp_path / "ev"), "--save-images"])  # fmt: skip
    assert code == 0
    result = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert result["task"] == "rescale" and result["temperature"] == 1.0
    rows = {(r["image"], r["method"]): r["metrics"] for r in result["rows"]}
    assert set(rows) == {(f"im{i}", m) for i in range(2) for m in ("rescale.safetensors",
                                                                   "bicubic")}  # fmt: skip
    assert set(rows[("im0", "bicubic")]) == {"hr_psnr", "hr_ssim", "hr_psnr_y", "hr_ssim_y"}
    assert len(rows[("im0", "rescale.safetensors")]) == 8
    saved = tmp_path / "ev" / "images"
    flow_lr = np.asarray(Image.open(saved / "im0_rescale.safetensors_lr.png"), float)
    bicubic_lr = np.asarray(Image.open(saved / "im0_bicubic_lr.png"), float)
    mse = ((flow_lr - bicubic_lr) ** 2).mean()
    expected = 10 * np.log10(255**2 / mse)
    assert rows[("im0", "rescale.safetensors")]["lr_psnr"] == pytest.approx(expected, abs=1e-9)
    assert "bicubic" in capsys.readouterr().out
    assert main(["eval", "--task", "rescale", "--hr", str(hr), "--model", str(model_file),
                 "-o", str(tmp_path / "ev2"), "-t", "0.5", "0.8"]) == 2  # fmt: skip


def test_outputs_into_the_input_folder(model_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    Image.fromarray(photo(32, 32)).save(tmp_path / "a.png")
    args = ["--model", str(model_file)]
    for _ in range(2):  # the second run must not downscale its own output again
        assert main(["rescale", "down", str(tmp_path), "-o", str(tmp_path), *args]) == 0
        assert sorted(p.name for p in tmp_path.glob("*.png")) == ["a.png", "a_x4.png"]
    up = ["rescale", "up", str(tmp_path / "a_x4.png"), "-o", str(tmp_path), *args]
    assert main(up) == DIVERGED
    assert (tmp_path / "a_x4_up.png").is_file()
