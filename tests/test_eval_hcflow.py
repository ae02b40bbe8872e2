"""`srflow eval` on an HCFlow model with HCFlow's test-script conventions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.checkpoints import save_model
from srflow.cli.main import main
from srflow.data.resize import imresize
from srflow.metrics.diversity import pixel_std_diversity
from srflow.metrics.psnr_ssim import psnr
from srflow.models.hcflow import HCFlow
from srflow.models.hcflow_config import HCFlowConfig

skimage_data = pytest.importorskip("skimage.data")
CONFIG = HCFlowConfig(levels=2, trunk_steps=1, conditional_steps=1, rrdb_blocks=(1, 1),
                      rrdb_growth=8, hidden_channels=8)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval_hcflow")
    (root / "hr").mkdir()
    Image.fromarray(skimage_data.astronaut()[100:164, 180:244]).save(root / "hr" / "astro.png")
    torch.manual_seed(0)
    model = save_model(HCFlow(CONFIG), root / "hcflow.safetensors")
    args = ["eval", "--hr", str(root / "hr"), "--model", str(model), "--conventions", "hcflow",
            "-t", "0.9", "-n", "3", "--skip", "lpips", "niqe", "brisque", "piqe",
            "--save-images", "--no-plots", "-o", str(root / "out")]  # fmt: skip
    assert main(args) == 0
    return root


def test_rows_are_labelled_hcflow_and_the_conventions_recorded(run: Path) -> None:
    data = json.loads((run / "out" / "results.json").read_text())
    conventions = data["config"]["conventions"]
    assert conventions == {"y_channel": False, "crop_border": 4, "uint8": "round",
                           "lpips_spatial": False, "lr_psnr_reference": "gt_float",
                           "pixel_std_unbiased": True, "ssim_matlab": False}  # fmt: skip
    report = (run / "out" / "report.md").read_text()
    assert "HCFlow τ=0.9" in report and "--conventions hcflow" in report


def test_metrics_follow_hcflow_conventions(run: Path) -> None:
    data = json.loads((run / "out" / "results.json").read_text())
    row = next(r for r in data["per_image"] if r["temperature"] == 0.9)
    hr = np.asarray(Image.open(run / "hr" / "astro.png"))
    samples = np.stack([np.asarray(Image.open(run / "out" / "images" / f"astro_t0.90_s0{i}.png"))
                        for i in range(3)])  # fmt: skip
    # pixel std: unbiased over the 3 samples (torch's default in HCFlow's script)
    expected_std = samples.astype(np.float64).std(axis=0, ddof=1).mean()
    assert row["metrics"]["pixel_std"] == pytest.approx(expected_std, rel=1e-12)
    assert expected_std > pixel_std_diversity(samples)  # differs from the population std
    # LR-PSNR: HCFlow's float "bicHR" PSNR of the rounded images
    lr_sr = imresize(samples[0].astype(np.float64) / 255, 0.25)
    lr_gt = imresize(hr.astype(np.float64) / 255, 0.25)
    mse = np.mean((lr_sr - lr_gt) ** 2)
    assert row["per_sample"]["lr_psnr"][0] == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)
    # PSNR with the scale cropped off every border
    assert row["per_sample"]["psnr"][0] == pytest.approx(psnr(samples[0], hr, crop_border=4))


def test_unbiased_pixel_std_of_one_sample_is_nan() -> None:
    assert math.isnan(pixel_std_diversity(np.zeros((1, 4, 4, 3), np.uint8), unbiased=True))
