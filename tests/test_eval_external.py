"""`srflow eval --sr DIR`: other methods' outputs scored with the same protocol as ours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.data.resize import imresize
from srflow.families import load_preset
from srflow.metrics.consistency import lr_psnr_vs_gt
from srflow.metrics.psnr_ssim import psnr
from srflow.models.srflow import SRFlow

skimage_data = pytest.importorskip("skimage.data")
SKIP = ["--skip", "lpips", "niqe", "brisque", "piqe", "--no-plots"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("external")
    hr = {"astro": skimage_data.astronaut()[:64, :64], "cat": skimage_data.chelsea()[:64, :80]}
    for folder in ("hr", "per_image", "ntire", "single"):
        (root / folder).mkdir()
    rng = np.random.default_rng(0)
    for name, image in hr.items():
        Image.fromarray(image).save(root / "hr" / f"{name}.png")
        up = imresize(imresize(image, 0.25), 4.0)
        (root / "per_image" / name).mkdir()
        for i in range(2):
            noisy = np.clip(up + rng.normal(0, 4 * (i + 1), up.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / "per_image" / name / f"{i:02d}.png")
            Image.fromarray(noisy).save(root / "ntire" / f"{name}_sample{i}.png")
        padded = np.pad(image, ((0, 3), (0, 5), (0, 0)))  # larger than the GT: cropped
        Image.fromarray(padded).save(root / "single" / f"{name}.png")
    return root


def rows(out: Path) -> dict[tuple[str, str], dict]:
    data = json.loads((out / "results.json").read_text())
    return {(r["image"], r["method"]): r for r in data["per_image"]}


def test_methods_are_scored_side_by_side(folders: Path, capsys: pytest.CaptureFixture) -> None:
    out = folders / "out"
    args = ["eval", "--hr", str(folders / "hr"), "--sr", str(folders / "per_image"),
            str(folders / "ntire"), str(folders / "single"), "--sr-name", "a", "b", "gt",
            "--scale", "4", "-o", str(out), *SKIP]  # fmt: skip
    assert main(args) == 0
    table = rows(out)
    assert set(table) == {(n, m) for n in ("astro", "cat") for m in ("bicubic", "a", "b", "gt")}
    a, b = table[("astro", "a")], table[("astro", "b")]
    assert a["samples"] == b["samples"] == 2 and a["metrics"] == b["metrics"]  # same files
    sample = np.asarray(Image.open(folders / "per_image" / "astro" / "01.png"))
    hr = np.asarray(Image.open(folders / "hr" / "astro.png"))
    assert a["per_sample"]["psnr"][1] == pytest.approx(psnr(sample, hr), abs=1e-12)
    assert a["per_sample"]["lr_psnr"][1] == pytest.approx(lr_psnr_vs_gt(sample, hr, 4))
    assert a["metrics"]["pixel_std"] > 0
    assert table[("cat", "gt")]["metrics"]["psnr"] == "inf"  # the GT itself, cropped back
    report = (out / "report.md").read_text()
    assert "| a | 2 |" in report and "| gt | 1 |" in report and "--sr " in report
    assert "bicubic" in capsys.readouterr().out


def test_with_our_model_too(folders: Path, tmp_path: Path) -> None:
    model = save_model(SRFlow(load_preset("tiny")), tmp_path / "tiny.safetensors")
    args = ["eval", "--hr", str(folders / "hr"), "--sr", str(folders / "ntire"), "--model",
            str(model), "-t", "0.8", "-n", "2", "-o", str(tmp_path / "out"), *SKIP]  # fmt: skip
    assert main(args) == 0
    methods = {m for _, m in rows(tmp_path / "out")}
    assert methods == {"bicubic", "srflow", "ntire"}


def test_missing_outputs_are_one_line(folders: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    (tmp_path / "partial").mkdir()
    Image.open(folders / "single" / "astro.png").save(tmp_path / "partial" / "astro.png")
    args = ["eval", "--hr", str(folders / "hr"), "--sr", str(tmp_path / "partial"), "--scale",
            "4", "-o", str(tmp_path / "out"), *SKIP]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no outputs for cat" in err
    assert main(["eval", "--hr", str(folders / "hr"), "--sr", str(folders / "ntire"), "-o",
                 str(tmp_path / "o2"), *SKIP]) == 2  # fmt: skip
    assert "needs --scale" in capsys.readouterr().err


def test_ssim_matlab_convention(folders: Path, tmp_path: Path) -> None:
    from srflow.metrics.ssim_matlab import ssim_matlab

    args = ["eval", "--hr", str(folders / "hr"), "--sr", str(folders / "ntire"), "--scale", "4",
            "--ssim-matlab", "--crop-border", "4", "-o", str(tmp_path / "out"), *SKIP]  # fmt: skip
    assert main(args) == 0
    row = rows(tmp_path / "out")[("astro", "ntire")]
    sample = np.asarray(Image.open(folders / "ntire" / "astro_sample0.png"))
    hr = np.asarray(Image.open(folders / "hr" / "astro.png"))
    expected = ssim_matlab(sample[4:-4, 4:-4], hr[4:-4, 4:-4])
    assert row["per_sample"]["ssim"][0] == pytest.approx(expected, abs=1e-12)
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["config"]["conventions"]["ssim_matlab"] is True
