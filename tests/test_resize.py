"""MATLAB-compatible bicubic imresize: reference vectors, spec test vectors, properties."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from srflow.data.resize import imresize, resize_weights

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"


def _eval_io() -> dict:
    path = VECTORS / "eval" / "io.pt"
    if not path.exists():
        pytest.skip(f"reference vectors not found at {path} (../shared/vectors is absent)")
    return torch.load(path)


def _kwargs(case: dict) -> dict:
    kwargs = dict(case["kwargs"])
    if "scalar_scale" in kwargs:
        kwargs["scale"] = kwargs.pop("scalar_scale")
    if "output_shape" in kwargs:
        kwargs["output_shape"] = tuple(kwargs["output_shape"])
    return kwargs


def _pattern(height: int = 32, width: int = 48) -> np.ndarray:
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    return ((37 * y + 11 * x + 101 * c + (x * y % 7)) % 256).astype(np.uint8)


def test_reference_cases_numpy() -> None:
    cases = _eval_io()["imresize_cases"]
    assert len(cases) == 7
    for case in cases:
        source, expected = case["input"].numpy(), case["output"].numpy()
        out = imresize(source, **_kwargs(case))
        assert out.shape == expected.shape and out.dtype == expected.dtype, case["name"]
        if expected.dtype == np.uint8:
            np.testing.assert_array_equal(out, expected, err_msg=case["name"])
        else:
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12, err_msg=case["name"])


def test_reference_cases_torch() -> None:
    for case in _eval_io()["imresize_cases"]:
        source, expected = case["input"], case["output"]
        chw = source.permute(2, 0, 1) if source.dim() == 3 else source[None]
        want = expected.permute(2, 0, 1) if expected.dim() == 3 else expected[None]
        if source.dtype == torch.uint8:
            assert torch.equal(imresize(chw, **_kwargs(case)), want), case["name"]
            batch = (chw.float() / 255.0)[None].repeat(2, 1, 1, 1)
            out = imresize(batch, **_kwargs(case), quantize=True)
            assert out.dtype == torch.float32
            want = want[None].expand(2, -1, -1, -1)
            assert torch.equal(torch.round(out * 255.0).to(torch.uint8), want)
        else:
            out = imresize(chw[None], **_kwargs(case))[0]
            torch.testing.assert_close(out, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("scale", "total", "digest", "row"),
    [
        (0.25, 36821, "f647965375a0fd82b0439a6ae27b4b22",
         [76, 124, 153, 155, 138, 106, 91, 129, 156, 157, 137, 103]),
        (0.125, 9206, "908927e7b8fd55137169a1694c623187", [114, 136, 127, 122, 137, 129]),
    ],
)  # fmt: skip
def test_spec_vectors_uint8(scale: float, total: int, digest: str, row: list[int]) -> None:
    out = imresize(_pattern(), scale)
    assert int(out.sum()) == total
    assert hashlib.md5(out.tobytes()).hexdigest() == digest
    assert out[0, :, 0].tolist() == row


@pytest.mark.parametrize(
    ("scale", "total", "first"),
    [(0.25, 144.398529411765, 0.296941363577749), (0.125, 36.099632352941, 0.448462214178461)],
)
def test_spec_vectors_float(scale: float, total: float, first: float) -> None:
    out = imresize(_pattern() / 255.0, scale)
    assert out.dtype == np.float64
    assert out.sum() == pytest.approx(total, abs=1e-11)
    assert out[0, 0, 0] == pytest.approx(first, abs=1e-14)


def test_exact_quarter_weights_and_symmetric_fold() -> None:
    taps = [-7, -45, -75, -49, 93, 399, 745, 987, 987, 745, 399, 93, -49, -75, -45, -7]
    matrix = resize_weights(64, 16, 0.25)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.ones(16))
    np.testing.assert_array_equal(matrix[5, 4 * 5 - 6 : 4 * 5 + 10] * 4096, taps)
    folded = np.zeros(64)  # output 0: taps -6..9 fold onto 5,4,3,2,1,0,0,1,...,9
    for weight, position in zip(taps, [5, 4, 3, 2, 1, 0, *range(10)], strict=True):
        folded[position] += weight
    np.testing.assert_array_equal(matrix[0] * 4096, folded)


def test_uint8_passes_quantise_and_match_torch_quantize() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(60, 188, (37, 53, 3), dtype=np.uint8)  # no clipping for any overshoot
    for kwargs in ({"scale": 0.25}, {"scale": 0.125}, {"scale": 3.0}, {"output_shape": (11, 7)}):
        out = imresize(image, **kwargs)
        assert out.dtype == np.uint8
        as_float = torch.from_numpy(image).permute(2, 0, 1).double() / 255.0
        via_torch = imresize(as_float, **kwargs, quantize=True)
        assert np.array_equal(np.rint(via_torch.permute(1, 2, 0).numpy() * 255.0), out)
        # the float path is not rounded: within the two roundings of the uint8 path
        plain = imresize(image.astype(np.float64), **kwargs)
        assert 0 < np.abs(plain - out).max() <= 1.5


def test_shapes_constants_and_errors() -> None:
    flat = np.full((17, 23, 2), 0.3)
    out = imresize(flat, 0.5)
    assert out.shape == (9, 12, 2)
    np.testing.assert_allclose(out, 0.3, atol=1e-15)
    assert imresize(np.zeros((10, 14), np.float32), 2.0).dtype == np.float32
    assert imresize(torch.zeros(3, 10, 14), output_shape=(5, 4)).shape == (3, 5, 4)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(flat, 0.5, (3, 3))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(flat)
    with pytest.raises(ValueError, match="HW or HWC"):
        imresize(np.zeros((2, 3, 4, 5)), 0.5)
    with pytest.raises(ValueError, match="quantize"):
        imresize(np.zeros((8, 8), np.uint8), 0.5, quantize=True)
