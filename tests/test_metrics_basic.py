"""PSNR/SSIM (vs. reference numbers and scikit-image), LR-PSNR and diversity measures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from srflow.data.resize import imresize
from srflow.metrics.consistency import lr_psnr, lr_psnr_vs_gt
from srflow.metrics.diversity import diversity_score, mse_local_map, pixel_std_diversity
from srflow.metrics.psnr_ssim import psnr, rgb_to_y, ssim

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"


def _pair(shape: tuple[int, ...], seed: int, noise: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a + rng.normal(0.0, noise, shape), 0, 255).astype(np.uint8)
    return a, b


def test_reference_psnr_ssim() -> None:
    path = VECTORS / "eval" / "io.pt"
    if not path.exists():
        pytest.skip(f"reference vectors not found at {path} (../shared/vectors is absent)")
    data = torch.load(path)["metrics"]
    a, b = data["img_a_uint8_hwc"].numpy(), data["img_b_uint8_hwc"].numpy()
    assert psnr(a, b) == pytest.approx(data["psnr"], abs=1e-10)
    assert ssim(a, b) == pytest.approx(data["ssim"], abs=1e-10)


def test_against_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    for seed, shape in enumerate([(40, 56, 3), (7, 9, 3), (33, 20), (64, 48, 1)]):
        a, b = _pair(shape, seed)
        axis = 2 if len(shape) == 3 else None
        want = metrics.structural_similarity(a, b, channel_axis=axis)
        assert ssim(a, b) == pytest.approx(want, abs=1e-12)
        assert psnr(a, b) == pytest.approx(metrics.peak_signal_noise_ratio(a, b), abs=1e-12)
        fa, fb = a / 255.0, b / 255.0
        want_float = metrics.structural_similarity(fa, fb, channel_axis=axis, data_range=1.0)
        assert ssim(fa, fb, data_range=1.0) == pytest.approx(want_float, abs=1e-12)
        assert psnr(fa, fb, data_range=1.0) == pytest.approx(psnr(a, b), abs=1e-9)


def test_psnr_formula_crop_and_y() -> None:
    a = np.zeros((10, 12, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # one error of 255 among 360 values
    assert psnr(a, b) == pytest.approx(10 * math.log10(360))
    assert psnr(a, b, crop_border=1) == math.inf and psnr(a, a) == math.inf
    assert ssim(a, a) == 1.0
    white = np.full((1, 1, 3), 255, np.uint8)
    assert rgb_to_y(white)[0, 0, 0] == pytest.approx(235.0)
    assert rgb_to_y(white * 0)[0, 0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.ones((1, 1, 3)), data_range=1.0)[0, 0, 0] == pytest.approx(235 / 255)
    c, d = _pair((20, 20, 3), 7)
    y_c, y_d = rgb_to_y(c), rgb_to_y(d)
    assert psnr(c, d, y_channel=True) == pytest.approx(psnr(y_c, y_d))
    assert ssim(c, d, y_channel=True, crop_border=2) == pytest.approx(
        ssim(y_c[2:-2, 2:-2], y_d[2:-2, 2:-2])
    )
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a[:5])
    with pytest.raises(ValueError, match="7x7"):
        ssim(a[:6], a[:6])


def test_lr_psnr() -> None:
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    lr = imresize(gt, 0.25)
    assert lr_psnr(gt, lr, 4) == math.inf
    assert lr_psnr_vs_gt(gt, gt, 4) == math.inf
    bigger = np.pad(gt, ((0, 5), (0, 3), (0, 0)))
    assert lr_psnr_vs_gt(bigger, gt, 4) == math.inf  # SR cropped top-left to the GT size
    noisy = np.clip(gt + rng.normal(0.0, 8.0, gt.shape), 0, 255).astype(np.uint8)
    expected = psnr(imresize(noisy, 0.25), lr)
    assert lr_psnr(noisy, lr, 4) == expected == lr_psnr_vs_gt(noisy, gt, 4)
    by_hand = 10 * math.log10(255**2 / np.mean((imresize(noisy, 0.25) / 1.0 - lr) ** 2))
    assert expected == pytest.approx(by_hand, abs=1e-12)
    assert 30.0 < expected < math.inf
    with pytest.raises(ValueError, match="uint8"):
        lr_psnr(noisy / 255.0, lr, 4)
    with pytest.raises(ValueError, match="LR"):
        lr_psnr(noisy, lr[:4], 4)


def test_pixel_std_diversity() -> None:
    same = np.repeat(_pair((6, 5, 3), 1)[0][None], 4, axis=0)
    assert pixel_std_diversity(same) == 0.0
    two = np.stack([np.zeros((3, 4, 3), np.uint8), np.full((3, 4, 3), 10, np.uint8)])
    assert pixel_std_diversity(two) == pytest.approx(5.0)  # population std: |a - b| / 2
    assert pixel_std_diversity(two / 255.0) == pytest.approx(5.0)  # float taken as [0, 1]
    samples = np.random.default_rng(2).random((5, 4, 4, 3))
    assert pixel_std_diversity(samples) == pytest.approx((samples * 255).std(axis=0).mean())
    with pytest.raises(ValueError):
        pixel_std_diversity(np.zeros((0, 2, 2, 3)))


def test_diversity_score() -> None:
    maps = np.random.default_rng(4).random((5, 8, 9))
    identical = np.repeat(maps[:1], 3, axis=0)
    assert diversity_score(identical.mean(axis=(1, 2)), identical) == 0.0
    global_scores = maps.mean(axis=(1, 2))
    best = global_scores.min()
    expected = (best - maps.min(axis=0).mean()) / best * 100
    assert diversity_score(list(global_scores), maps) == pytest.approx(expected)
    assert 0.0 < expected < 100.0
    two = np.stack([np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])])  # complementary samples
    assert diversity_score([0.5, 0.5], two) == pytest.approx(100.0)
    assert diversity_score([0.0, 0.2], maps[:2]) == 0.0
    with pytest.raises(ValueError):
        diversity_score([0.1], maps)


def test_mse_local_map_is_the_2022_kit_box_filter() -> None:
    signal = pytest.importorskip("scipy.signal")
    sr, gt = _pair((37, 50, 3), 5, noise=20.0)
    error = ((sr / 1.0 - gt) ** 2).mean(axis=2)
    expected = signal.convolve2d(error, np.ones((16, 16)) / 256)  # 'full', zero padding
    local = mse_local_map(sr, gt)
    assert local.shape == (52, 65)
    np.testing.assert_allclose(local, expected, rtol=1e-12, atol=1e-9)
    assert local.mean() == pytest.approx(error.sum() / (52 * 65))
    assert diversity_score([local.mean()] * 2, np.stack([local, local])) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        mse_local_map(sr, gt[:, :-1])
