"""The evaluation package: image pairing/cropping, sampling, scoring conventions, reports."""

from __future__ import annotations

import csv
import json
import logging
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from srflow.data.resize import imresize
from srflow.evaluation import (
    EvalConfig,
    EvalInputError,
    EvalResult,
    MethodResult,
    MetricConventions,
    load_eval_images,
)
from srflow.evaluation.config import MetricFiles
from srflow.evaluation.plots import write_plots
from srflow.evaluation.report import markdown_report, write_csv, write_json
from srflow.evaluation.sampling import ModelSampler
from srflow.evaluation.scoring import MetricSuite
from srflow.families import load_preset
from srflow.metrics.lpips import LPIPS
from srflow.models.srflow import SRFlow
from test_metrics_perceptual import _synthetic_lpips_files

skdata = pytest.importorskip("skimage.data")
NO_OPTIONAL = EvalConfig(skip_metrics=("lpips", "niqe", "brisque", "piqe"))


def _save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_images_cropped_to_multiples_of_8_and_lr_made_by_bicubic(tmp_path):
    photo = skdata.coffee()[:101, :90]
    _save(tmp_path / "hr" / "coffee.png", photo)
    (image,) = load_eval_images(tmp_path / "hr", scale=4)
    assert image.hr.shape == (96, 88, 3) and image.hr.dtype == np.uint8
    np.testing.assert_array_equal(image.hr, photo[:96, :88])  # top-left, as the kit
    np.testing.assert_array_equal(image.lr, imresize(photo[:96, :88], 0.25))
    assert image.lr_source == "bicubic"
    (cropped,) = load_eval_images(tmp_path / "hr", scale=4, crop=40)
    assert cropped.hr.shape == (40, 40, 3)
    # offsets are multiples of 8: rows (96-40)//2=28 -> 24, columns (88-40)//2=24
    np.testing.assert_array_equal(cropped.hr, photo[24:64, 24:64])


def test_given_lr_paired_by_stem_and_cropped_to_match(tmp_path):
    photo = skdata.chelsea()[:128, :160]
    lr_full = imresize(photo, 0.25)
    _save(tmp_path / "hr" / "cat.png", photo)
    _save(tmp_path / "lr" / "cat.png", lr_full)
    (image,) = load_eval_images(tmp_path / "hr", 4, lr_dir=tmp_path / "lr", crop=64)
    np.testing.assert_array_equal(image.hr, photo[32:96, 48:112])
    np.testing.assert_array_equal(image.lr, lr_full[8:24, 12:28])
    assert image.lr_source.endswith("cat.png")
    _save(tmp_path / "lr" / "cat.png", lr_full[:20])
    with pytest.raises(EvalInputError, match=r"cat\.png: LR is 40x20"):
        load_eval_images(tmp_path / "hr", 4, lr_dir=tmp_path / "lr")
    _save(tmp_path / "hr" / "dog.png", photo)
    with pytest.raises(EvalInputError, match="dog.png: no LR image with the stem 'dog'"):
        load_eval_images(tmp_path / "hr", 4, lr_dir=tmp_path / "lr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalInputError, match="no image files"):
        load_eval_images(tmp_path / "empty", 4)


def test_sampler_reuses_one_encoder_pass_and_matches_model_sample():
    model = SRFlow(load_preset("tiny"), generator=torch.Generator().manual_seed(0)).eval()
    lr = skdata.astronaut()[100:112, 200:212]
    calls = []
    features = model.features
    model.features = lambda x: calls.append(1) or features(x)
    draws = ModelSampler(model, batch_size=2).sample(lr, [0.0, 0.7], samples=3, seed=5)
    assert len(calls) == 1  # one encoder pass for both temperatures
    assert draws[0.0].shape == (1, 48, 48, 3) and draws[0.7].shape == (3, 48, 48, 3)
    lr_tensor = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
    expected = model.sample(lr_tensor, 0.7, 3, torch.Generator().manual_seed(5))[:, 0]
    expected = expected.clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(draws[0.7], expected, atol=1e-5)
    again = ModelSampler(model, batch_size=3).sample(lr, [0.7], samples=3, seed=5)
    np.testing.assert_allclose(again[0.7], draws[0.7], atol=1e-5)  # batch size irrelevant


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("truncate", math.inf),
        ("round", 10 * math.log10(255**2)),
        ("float", 20 * math.log10(255 / 0.9)),
    ],
)
def test_uint8_convention_of_psnr(mode, expected):
    gt = np.zeros((16, 16, 3), np.uint8)
    sr = np.full((1, 16, 16, 3), 0.9 / 255, np.float32)  # 0.9 grey levels
    config = EvalConfig(
        conventions=MetricConventions(uint8=mode), skip_metrics=NO_OPTIONAL.skip_metrics
    )
    scores = MetricSuite(config).score(gt, imresize(gt, 0.25), 4, sr)
    assert scores.metrics["psnr"] == pytest.approx(expected, rel=1e-6)
    # LR-PSNR always on uint8: truncation gives an exact LR (inf), rounding 1 level everywhere
    assert scores.metrics["lr_psnr"] == (
        math.inf if mode == "truncate" else pytest.approx(10 * math.log10(255**2))
    )


def test_identical_samples_have_zero_diversity_and_y_psnr_convention():
    gt = skdata.astronaut()[:64, :64]
    noisy = np.clip(gt + np.random.default_rng(0).normal(0, 6, gt.shape), 0, 255)
    samples = np.repeat(noisy[None].astype(np.uint8), 3, axis=0)
    plain = MetricSuite(NO_OPTIONAL).score(gt, imresize(gt, 0.25), 4, samples)
    assert plain.metrics["pixel_std"] == 0.0 and plain.metrics["div_mse"] == 0.0
    assert plain.per_sample["psnr"] == [plain.metrics["psnr"]] * 3
    y_config = EvalConfig(
        conventions=MetricConventions(y_channel=True, crop_border=4),
        skip_metrics=NO_OPTIONAL.skip_metrics,
    )
    y_scores = MetricSuite(y_config).score(gt, imresize(gt, 0.25), 4, samples)
    assert y_scores.metrics["psnr"] != plain.metrics["psnr"]
    assert y_scores.metrics["lr_psnr"] == plain.metrics["lr_psnr"]  # LR-PSNR: no crop, RGB


def test_lpips_conventions_and_challenge_diversity(tmp_path):
    _synthetic_lpips_files(tmp_path)
    files = MetricFiles(tmp_path / "alexnet.pth", tmp_path / "alex.pth")
    gt = skdata.coffee()[:64, :64]
    rng = np.random.default_rng(1)
    samples = np.clip(gt + rng.normal(0, 12, (3, *gt.shape)), 0, 255).astype(np.uint8)
    scores = {}
    for spatial in (True, False):
        config = EvalConfig(
            conventions=MetricConventions(lpips_spatial=spatial),
            files=files,
            skip_metrics=("niqe", "brisque", "piqe"),
        )
        scores[spatial] = MetricSuite(config).score(gt, imresize(gt, 0.25), 4, samples)
    tensors = torch.from_numpy(samples).permute(0, 3, 1, 2)
    reference = (
        torch.from_numpy(np.ascontiguousarray(gt)).permute(2, 0, 1)[None].expand(3, -1, -1, -1)
    )
    for spatial in (True, False):
        model = LPIPS.from_files(files.lpips_backbone, files.lpips_linear, spatial=spatial)
        expected = model.score(tensors, reference).tolist()
        np.testing.assert_allclose(scores[spatial].per_sample["lpips"], expected, rtol=1e-5)
    assert scores[True].metrics["lpips"] != pytest.approx(scores[False].metrics["lpips"])
    maps = LPIPS.from_files(files.lpips_backbone, files.lpips_linear)(tensors, reference)
    best_global = maps.mean(dim=(1, 2, 3)).min().item()
    best_local = maps.min(dim=0).values.mean().item()
    expected_score = (best_global - best_local) / best_global * 100
    for spatial in (True, False):  # the diversity score always uses the spatial maps
        assert scores[spatial].metrics["div_lpips"] == pytest.approx(expected_score, rel=1e-4)
    assert 0 < expected_score < 100


def _result() -> EvalResult:
    rows = [
        MethodResult("a", "bicubic", None, 1, {"psnr": 30.0, "lr_psnr": math.inf}),
        MethodResult(
            "a",
            "srflow",
            0.9,
            2,
            {"psnr": 28.0, "lr_psnr": 50.0, "niqe": math.nan},
            {"psnr": [27.0, 29.0]},
            "SRFlow",
        ),  # fmt: skip
        MethodResult("b", "bicubic", None, 1, {"psnr": 20.0, "lr_psnr": 40.0}),
        MethodResult("b", "srflow", 0.9, 2, {"psnr": 18.0, "lr_psnr": 52.0, "niqe": 4.0}, {},
                     "SRFlow"),  # fmt: skip
    ]
    images = [("a", "8x8", "bicubic"), ("b", "8x8", "bicubic")]
    return EvalResult("m.safetensors", 4, EvalConfig(), images, rows, {"lpips": "missing x"})


def test_summary_and_writers(tmp_path):
    result = _result()
    summary = {row.label: row.metrics for row in result.summary()}
    assert summary["bicubic"]["psnr"] == 25.0 and summary["bicubic"]["lr_psnr"] == math.inf
    assert summary["SRFlow τ=0.9"]["niqe"] == 4.0  # NaN (not measured) ignored
    data = json.loads((write_json(result, tmp_path / "r.json")).read_text())  # strict JSON
    assert data["summary"][0]["metrics"]["lr_psnr"] == "inf"
    assert data["per_image"][1]["metrics"]["niqe"] is None
    assert data["per_image"][1]["per_sample"]["psnr"] == [27.0, 29.0]
    assert data["unavailable"] == {"lpips": "missing x"}
    with write_csv(result.rows, result.metric_keys(), tmp_path / "r.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows] == ["bicubic", "srflow"] * 2
    assert float(rows[0]["lr_psnr"]) == math.inf and rows[1]["niqe"] == ""
    text = markdown_report(result)
    assert "| SRFlow τ=0.9 | 2 | 23.00 | 51.00 |" in text
    assert "| bicubic | 1 | 25.00 | inf |" in text and "- lpips: missing x" in text


def test_plots_skipped_with_one_warning_without_matplotlib(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    with caplog.at_level(logging.WARNING):
        assert write_plots(_result(), tmp_path / "plots") == []
    assert [r.getMessage() for r in caplog.records] == [
        "plots skipped: matplotlib is not installed (pip install 'srflow[eval]')"
    ]
    assert not (tmp_path / "plots").exists()
