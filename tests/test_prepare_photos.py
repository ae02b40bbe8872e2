"""Tests of scripts/prepare_photos.py that need no Debian wallpaper package."""

import hashlib
import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "prepare_photos.py"


@pytest.fixture(scope="module")
def prep():
    spec = importlib.util.spec_from_file_location("prepare_photos", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def gradient_image(height: int, width: int) -> np.ndarray:
    rows = np.arange(height)[:, None, None]
    cols = np.arange(width)[None, :, None]
    return ((rows * 7 + cols * 3 + np.arange(3)) % 256).astype(np.uint8) * np.ones(
        (1, 1, 3), np.uint8
    )


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((1203, 1600), (1024, 1024)), ((800, 1280), (800, 1024)), ((517, 333), (512, 328))],
)
def test_centre_crop_is_centred_and_multiple_of_8(prep, shape, expected):
    image = gradient_image(*shape)
    crop = prep.centre_crop_multiple(image, 1024, 8)
    assert crop.shape[:2] == expected
    assert crop.shape[0] % 8 == 0 and crop.shape[1] % 8 == 0
    top, left = (shape[0] - expected[0]) // 2, (shape[1] - expected[1]) // 2
    np.testing.assert_array_equal(crop, image[top : top + expected[0], left : left + expected[1]])


def test_centre_crop_rejects_tiny_image(prep):
    with pytest.raises(ValueError, match="smaller than 8"):
        prep.centre_crop_multiple(gradient_image(5, 100), 1024, 8)


def test_eval_hr_halves_only_large_jpegs(prep):
    large = gradient_image(1600, 2560)
    assert prep.make_eval_hr(large, "JPEG").shape == (800, 1024, 3)  # halved, then cropped
    assert prep.make_eval_hr(large, "PNG").shape == (1024, 1024, 3)  # lossless: not halved
    assert prep.make_eval_hr(gradient_image(1200, 1920), "JPEG").shape == (1024, 1024, 3)


def test_train_image_fits_longer_side(prep):
    assert prep.make_train_image(gradient_image(1600, 2560)).shape == (640, 1024, 3)
    assert prep.make_train_image(gradient_image(1993, 3000)).shape == (680, 1024, 3)
    small = gradient_image(300, 200)
    assert prep.make_train_image(small) is small


def test_png_is_deterministic_and_lossless(prep):
    image = gradient_image(64, 48)
    data = prep.encode_png(image)
    assert data == prep.encode_png(image.copy())
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), image)


def test_write_atomic_is_idempotent(prep, tmp_path):
    target = tmp_path / "sub" / "a.png"
    assert prep.write_atomic(target, b"one") is True
    mtime = target.stat().st_mtime_ns
    assert prep.write_atomic(target, b"one") is False
    assert target.stat().st_mtime_ns == mtime
    assert prep.write_atomic(target, b"two") is True
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.png"]


def test_manifest_split_is_disjoint(prep):
    entries = prep.load_manifest()
    by_split = {s: [e for e in entries if e.split == s] for s in prep.SPLITS}
    assert len(by_split["eval"]) == 25 and len(by_split["train"]) == 22
    eval_packages = {e.package for e in by_split["eval"]}
    train_packages = {e.package for e in by_split["train"]}
    assert eval_packages == {"mate-backgrounds", "lomiri-wallpapers-16.04"}
    assert not eval_packages & train_packages
    assert len({e.sha256 for e in entries}) == len(entries)  # no file listed twice
    assert all(e.path.is_absolute() and len(e.sha256) == 64 for e in entries)


def test_load_source_checks_hash_and_alpha(prep, tmp_path):
    path = tmp_path / "photo.png"
    rgba = np.full((16, 24, 4), 200, np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    image, image_format = prep.load_source(prep.PhotoEntry("train", "p", "pkg", path, digest))
    assert image.shape == (16, 24, 3) and image_format == "PNG"
    with pytest.raises(ValueError, match="sha256 differs"):
        prep.load_source(prep.PhotoEntry("train", "p", "pkg", path, "0" * 64))
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba).save(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="transparent"):
        prep.load_source(prep.PhotoEntry("train", "p", "pkg", path, digest))


def test_missing_package_is_reported(prep, tmp_path):
    entry = prep.PhotoEntry("eval", "x", "no-such-package-xyz", tmp_path / "none.jpg", "0" * 64)
    assert prep.missing_packages([entry]) == ["no-such-package-xyz"]
