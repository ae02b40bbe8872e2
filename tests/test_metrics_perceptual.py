"""LPIPS / NIQE / BRISQUE / PIQE: reference computations, published-tool values, properties.

Reference numbers (computed offline with the public tools on scikit-image's bundled images):
* NIQE: BasicSR 1.4.2 ``niqe()`` on the MATLAB-rgb2gray image (its imresize is float32, so
  agreement is ~1e-3, not exact).
* BRISQUE: ``brisque`` 0.2.0 ``BRISQUE().score`` (same model files).
* PIQE: ``pypiqe`` 1.0 (ddof-0 statistics and reflect borders, hence a loose tolerance).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srflow.metrics import weights
from srflow.metrics.brisque import brisque, load_brisque_model
from srflow.metrics.lpips import LPIPS, LPIPS_CHANNELS
from srflow.metrics.niqe import load_niqe_params, niqe
from srflow.metrics.pique import piqe, piqe_details
from srflow.metrics.weights import MetricUnavailable

skdata = pytest.importorskip("skimage.data")

CONV_SHAPES = {
    0: (64, 3, 11),
    3: (192, 64, 5),
    6: (384, 192, 3),
    8: (256, 384, 3),
    10: (256, 256, 3),
}


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


def _noisy(image: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    ndimage = pytest.importorskip("scipy.ndimage")
    out = ndimage.gaussian_filter(image.astype(float), (sigma, sigma, 0))
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _isolate_search(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Make every default parameter location empty."""
    for var in ("SRFLOW_LPIPS_BACKBONE", "SRFLOW_LPIPS_LINEAR", "SRFLOW_NIQE_PARAMS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("SRFLOW_BRISQUE_MODEL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(weights, "installed_package_dir", lambda name: None)
    monkeypatch.setattr(weights, "BUNDLED_DATA_DIR", tmp_path / "none")


# ---------------------------------------------------------------- LPIPS
def _synthetic_lpips_files(tmp_path):
    gen = torch.Generator().manual_seed(0)
    backbone = {"classifier.1.weight": torch.zeros(4, 4)}
    for index, (cout, cin, k) in CONV_SHAPES.items():
        backbone[f"features.{index}.weight"] = (
            torch.randn(cout, cin, k, k, generator=gen) * (2.0 / (cin * k * k)) ** 0.5
        )
        backbone[f"features.{index}.bias"] = torch.randn(cout, generator=gen) * 0.1
    linear = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen)
        for i, c in enumerate(LPIPS_CHANNELS)
    }
    torch.save(backbone, tmp_path / "alexnet.pth")
    torch.save(linear, tmp_path / "alex.pth")
    return backbone, linear


def _bilinear(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Independent bilinear resize, half-pixel centres, edge clamp (align_corners=False)."""

    def axis(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * n_in / n_out - 0.5).clamp(min=0)
        i0 = src.floor().long()
        return i0, (i0 + 1).clamp(max=n_in - 1), src - i0

    y0, y1, wy = axis(x.shape[2], out_h)
    x0, x1, wx = axis(x.shape[3], out_w)
    rows = x[:, :, y0] * (1 - wy)[:, None] + x[:, :, y1] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def _reference_lpips(img0, img1, backbone, linear, spatial: bool) -> torch.Tensor:
    # the lpips constants are float32 tensors; in float64 mode they keep their float32 values
    shift = torch.tensor([-0.030, -0.088, -0.188]).double().view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).double().view(1, 3, 1, 1)
    w = {k: v.double() for k, v in backbone.items()}

    def taps(img: torch.Tensor) -> list[torch.Tensor]:
        x = ((img * 2 - 1) - shift) / scale
        r1 = F.relu(F.conv2d(x, w["features.0.weight"], w["features.0.bias"], stride=4, padding=2))
        x = F.max_pool2d(r1, 3, 2)
        r2 = F.relu(F.conv2d(x, w["features.3.weight"], w["features.3.bias"], padding=2))
        x = F.max_pool2d(r2, 3, 2)
        r3 = F.relu(F.conv2d(x, w["features.6.weight"], w["features.6.bias"], padding=1))
        r4 = F.relu(F.conv2d(r3, w["features.8.weight"], w["features.8.bias"], padding=1))
        r5 = F.relu(F.conv2d(r4, w["features.10.weight"], w["features.10.bias"], padding=1))
        return [r1, r2, r3, r4, r5]

    total = torch.zeros(img0.shape[0], 1, *(img0.shape[2:] if spatial else (1, 1)))
    for i, (a, b) in enumerate(zip(taps(img0), taps(img1), strict=True)):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        d = ((a - b) ** 2 * linear[f"lin{i}.model.1.weight"].double()).sum(1, keepdim=True)
        total = total + (_bilinear(d, *img0.shape[2:]) if spatial else d.mean((2, 3), True))
    return total


@pytest.mark.parametrize("spatial", [True, False])
def test_lpips_matches_reference_computation_with_synthetic_weights(tmp_path, spatial):
    backbone, linear = _synthetic_lpips_files(tmp_path)
    model = LPIPS.from_files(tmp_path / "alexnet.pth", tmp_path / "alex.pth", spatial=spatial)
    model = model.double()
    gen = torch.Generator().manual_seed(1)
    img0 = torch.rand(2, 3, 70, 90, generator=gen, dtype=torch.float64)
    img1 = (img0 + 0.2 * torch.randn(img0.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours = model(img0, img1)
    expected = _reference_lpips(img0, img1, backbone, linear, spatial)
    assert ours.shape == ((2, 1, 70, 90) if spatial else (2, 1, 1, 1))
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    assert (model.score(img0, img1) > 0).all()
    # identical images -> exactly 0; symmetric in its arguments
    assert model(img0, img0).abs().max().item() == 0.0
    torch.testing.assert_close(model(img1, img0), ours, rtol=1e-12, atol=1e-14)


def test_lpips_uint8_input_equals_float_input(tmp_path):
    _synthetic_lpips_files(tmp_path)
    model = LPIPS.from_files(tmp_path / "alexnet.pth", tmp_path / "alex.pth")
    gen = torch.Generator().manual_seed(2)
    a = torch.randint(0, 256, (1, 3, 64, 64), generator=gen, dtype=torch.uint8)
    b = torch.randint(0, 256, (1, 3, 64, 64), generator=gen, dtype=torch.uint8)
    torch.testing.assert_close(model.score(a, b), model.score(a.float() / 255, b.float() / 255))


def test_lpips_missing_files_raise_metric_unavailable(tmp_path, monkeypatch):
    _isolate_search(monkeypatch, tmp_path)
    with pytest.raises(MetricUnavailable, match="alexnet-owt-7be5be79.pth"):
        LPIPS.from_files()
    with pytest.raises(MetricUnavailable, match="not found at"):
        LPIPS.from_files(backbone_path=tmp_path / "nope.pth")
    _synthetic_lpips_files(tmp_path)
    with pytest.raises(MetricUnavailable, match="alex.pth"):
        LPIPS.from_files(backbone_path=tmp_path / "alexnet.pth")


def test_lpips_real_linear_heads_load_when_available(tmp_path):
    try:
        linear_file = weights.lpips_linear_path()
    except MetricUnavailable as error:
        pytest.skip(str(error))
    _synthetic_lpips_files(tmp_path)
    model = LPIPS.from_files(tmp_path / "alexnet.pth", linear_file)
    for head, channels in zip(model.heads, LPIPS_CHANNELS, strict=True):
        weight = head.model[1].weight
        assert weight.shape == (1, channels, 1, 1) and (weight >= 0).all() and weight.max() > 0


# ---------------------------------------------------------------- NIQE
@pytest.fixture(scope="module")
def niqe_params():
    try:
        return load_niqe_params()
    except MetricUnavailable as error:
        pytest.skip(str(error))


@pytest.mark.parametrize(
    ("name", "reference", "residue_signs"),
    [("astronaut", 3.067254, {254.0: 1}), ("camera", 3.096220, {202.0: -1, 214.0: -1})],
)
def test_niqe_matches_basicsr_reference(niqe_params, name, reference, residue_signs):
    """BasicSR's port keeps its filter's rounding residue on flat neighbourhoods (astronaut:
    196 pixels at level 254); with that residue srflow is within 1e-3 of it, with the residue
    taken as 0 (srflow's default, docs/metrics.md) within 2.5e-3."""
    image = getattr(skdata, name)()
    replayed = niqe(image, niqe_params, residue_signs=residue_signs)
    assert replayed == pytest.approx(reference, abs=1e-3)
    assert niqe(image, niqe_params) == pytest.approx(reference, abs=2.5e-3)


def test_niqe_increases_with_noise_and_blur(niqe_params, astronaut):
    clean = niqe(astronaut, niqe_params)
    assert niqe(_noisy(astronaut, 15), niqe_params) > clean + 2
    assert niqe(_blurred(astronaut, 2), niqe_params) > clean + 2
    assert niqe(astronaut.astype(np.float64) / 255, niqe_params) == pytest.approx(clean, abs=0.05)


def test_niqe_errors(tmp_path, monkeypatch, astronaut):
    with pytest.raises(ValueError, match="96x96"):
        niqe(astronaut[:90, :200], load_niqe_params())
    _isolate_search(monkeypatch, tmp_path)
    with pytest.raises(MetricUnavailable, match="niqe_pris_params.npz"):
        niqe(astronaut)


# ---------------------------------------------------------------- BRISQUE
@pytest.fixture(scope="module")
def brisque_model():
    try:
        return load_brisque_model()
    except MetricUnavailable as error:
        pytest.skip(str(error))


def test_brisque_matches_brisque_package(brisque_model, astronaut):
    assert brisque(skdata.coffee(), brisque_model) == pytest.approx(3.047926, abs=1e-4)
    assert brisque(_noisy(astronaut, 15), brisque_model) == pytest.approx(38.168801, abs=1e-3)
    assert brisque(_blurred(astronaut, 2), brisque_model) == pytest.approx(64.599735, abs=1e-3)
    # flat saturated areas make the sign of ~1e-16 MSCN values summation-order dependent
    assert brisque(astronaut, brisque_model) == pytest.approx(10.794863, abs=0.02)


def test_brisque_svr_and_restricted_pickle(tmp_path):
    sv = " ".join(f"{i}:0.5" for i in range(1, 37))
    (tmp_path / "svm.txt").write_text(
        "svm_type epsilon_svr\nkernel_type rbf\ngamma 0.1\nnr_class 2\ntotal_sv 2\n"
        f"rho 0.25\nSV\n2 {sv}\n-1 1:1\n"
    )
    ranges = {"min_": [0.0] * 36, "max_": [2.0] * 36}
    (tmp_path / "normalize.pickle").write_bytes(pickle.dumps(ranges))
    model = load_brisque_model(tmp_path)
    features = np.full(36, 1.5)  # scaled to 0.5 everywhere
    expected = 2 * np.exp(0.0) - np.exp(-0.1 * (0.25 + 35 * 0.25)) - 0.25
    assert model.predict(features) == pytest.approx(expected, rel=1e-12)
    (tmp_path / "normalize.pickle").write_bytes(pickle.dumps({"min_": print, "max_": []}))
    with pytest.raises(MetricUnavailable, match="not allowed"):
        load_brisque_model(tmp_path)


def test_brisque_missing_model(tmp_path, monkeypatch, astronaut):
    _isolate_search(monkeypatch, tmp_path)
    with pytest.raises(MetricUnavailable, match="svm.txt"):
        brisque(astronaut)


# ---------------------------------------------------------------- PIQE
def test_piqe_range_masks_and_pypiqe_reference(astronaut):
    result = piqe_details(astronaut[:500, :490])
    assert 0 <= result.score <= 100
    assert result.activity_mask.shape == result.noise_mask.shape == (500, 490)
    assert piqe(astronaut) == pytest.approx(33.759, abs=0.5)  # pypiqe 1.0: 33.759
    assert piqe(np.full((64, 64), 128, np.uint8)) == 100.0  # no active block


def test_piqe_increases_with_noise_and_blur(astronaut):
    clean = piqe(astronaut)
    assert piqe(_noisy(astronaut, 25)) > clean + 10
    assert piqe(_blurred(astronaut, 2)) > clean + 10
