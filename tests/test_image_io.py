"""Image reading/writing on real files: bit depths, modes, EXIF, errors, atomic writes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from srflow.data import image_io
from srflow.data.image_io import (
    ImageReadError,
    list_images,
    read_image,
    to_uint8_round,
    to_uint8_truncate,
    write_image,
)

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"


def _rgb8(height: int = 12, width: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _pillow(path: Path) -> tuple[str, str, np.ndarray]:
    """Format, mode and pixels of ``path`` as Pillow reads it (file closed afterwards)."""
    with Image.open(path) as img:
        img.load()
        return str(img.format), img.mode, np.asarray(img)


def _hwc(tensor: torch.Tensor, full: float = 255.0) -> np.ndarray:
    return np.rint(tensor.permute(1, 2, 0).double().numpy() * full)


def test_png8_round_trip_and_pillow_file(tmp_path: Path) -> None:
    pixels = _rgb8()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert loaded.rgb.dtype == torch.float32 and loaded.rgb.shape == (3, 12, 17)
    assert (loaded.bit_depth, loaded.was_grayscale, loaded.had_alpha) == (8, False, False)
    assert loaded.alpha is None and loaded.path == tmp_path / "a.png"
    assert torch.equal(loaded.rgb, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255.0)
    write_image(tmp_path / "b.png", loaded.rgb)
    assert np.array_equal(_pillow(tmp_path / "b.png")[2], pixels)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_write_rounds_half_even_and_clips(tmp_path: Path) -> None:
    values = (
        torch.tensor([-0.2, 10.4 / 255, 10.6 / 255, 0.5, 1.3]).reshape(1, 1, 5).expand(3, 1, 5)
    )
    write_image(tmp_path / "r.png", values)
    assert _pillow(tmp_path / "r.png")[2][0, :, 0].tolist() == [0, 10, 11, 128, 255]
    assert to_uint8_round(np.array([0.5 / 255, 1.5 / 255, 2.0])).tolist() == [0, 2, 255]
    assert to_uint8_truncate(np.array([0.999 / 255, 1.9 / 255, -1.0])).tolist() == [0, 1, 0]


def test_to_uint8_truncate_reference() -> None:
    path = VECTORS / "eval" / "io.pt"
    if not path.exists():
        pytest.skip(f"reference vectors not found at {path} (../shared/vectors is absent)")
    data = torch.load(path)["to_uint8"]
    out = to_uint8_truncate(data["sr_float"])[0].permute(1, 2, 0)
    assert torch.equal(out, data["sr_uint8_hwc"])
    numpy_out = to_uint8_truncate(data["sr_float"][0].permute(1, 2, 0).numpy())
    assert np.array_equal(numpy_out, data["sr_uint8_hwc"].numpy())


def test_gray16_png_and_tiff(tmp_path: Path) -> None:
    gray = np.random.default_rng(1).integers(0, 65536, (9, 11), dtype=np.uint16)
    for name in ("g.png", "g.tif"):
        Image.fromarray(gray).save(tmp_path / name)
        loaded = read_image(tmp_path / name)
        assert (loaded.bit_depth, loaded.was_grayscale) == (16, True)
        assert np.array_equal(_hwc(loaded.rgb, 65535.0), np.repeat(gray[:, :, None], 3, axis=2))
        write_image(tmp_path / f"w_{name}", loaded.rgb, bit_depth=16, grayscale=True)
        assert np.array_equal(_pillow(tmp_path / f"w_{name}")[2], gray)


def test_rgb16_png_round_trip(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 65536, (3, 10, 13), dtype=np.uint16)
    alpha = np.random.default_rng(3).integers(0, 65536, (1, 10, 13), dtype=np.uint16)
    as_float = torch.from_numpy(rgb.astype(np.float32)) / 65535.0
    alpha_float = torch.from_numpy(alpha.astype(np.float32)) / 65535.0
    write_image(tmp_path / "c.png", as_float, alpha_float, bit_depth=16)
    assert _pillow(tmp_path / "c.png")[1] == "RGBA"  # valid PNG for Pillow (8-bit view)
    loaded = read_image(tmp_path / "c.png")
    assert (loaded.bit_depth, loaded.had_alpha, loaded.was_grayscale) == (16, True, False)
    assert np.array_equal(_hwc(loaded.rgb, 65535.0), rgb.transpose(1, 2, 0))
    assert np.array_equal(_hwc(loaded.alpha, 65535.0)[:, :, 0], alpha[0])


def _paeth(left: np.ndarray, up: np.ndarray, corner: np.ndarray) -> np.ndarray:
    guess = left + up - corner
    d_left, d_up, d_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
    return np.where(
        (d_left <= d_up) & (d_left <= d_corner), left, np.where(d_up <= d_corner, up, corner)
    )


def test_png16_decoder_all_filter_types(tmp_path: Path) -> None:
    height, width = 10, 7
    pixels = np.random.default_rng(4).integers(0, 65536, (height, width, 3), dtype=np.uint16)
    data = pixels.astype(">u2").view(np.uint8).reshape(height, width, 6).astype(np.int32)
    padded = np.zeros((height + 1, width + 1, 6), np.int32)
    padded[1:, 1:] = data
    left, up, corner = padded[1:, :-1], padded[:-1, 1:], padded[:-1, :-1]
    predictors = [0 * data, left, up, (left + up) // 2, _paeth(left, up, corner)]
    rows = b""
    for y in range(height):
        kind = y % 5
        rows += bytes([kind]) + ((data[y] - predictors[kind][y]) % 256).astype(np.uint8).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    (tmp_path / "f.png").write_bytes(png + chunk(b"IEND", b""))
    loaded = read_image(tmp_path / "f.png")
    assert np.array_equal(_hwc(loaded.rgb, 65535.0), pixels)


def test_rgb16_tiff(tmp_path: Path) -> None:
    pytest.importorskip("tifffile")
    rgb = np.random.default_rng(5).integers(0, 65536, (3, 6, 8), dtype=np.uint16)
    write_image(
        tmp_path / "c.tif", torch.from_numpy(rgb.astype(np.float32)) / 65535.0, bit_depth=16
    )
    loaded = read_image(tmp_path / "c.tif")
    assert loaded.bit_depth == 16
    assert np.array_equal(_hwc(loaded.rgb, 65535.0), rgb.transpose(1, 2, 0))


def test_gray_rgba_la_palette_cmyk(tmp_path: Path) -> None:
    pixels = _rgb8(seed=6)
    Image.fromarray(pixels[:, :, 0]).save(tmp_path / "l.png")
    gray = read_image(tmp_path / "l.png")
    assert gray.was_grayscale and torch.equal(gray.rgb[0], gray.rgb[2])
    write_image(tmp_path / "l2.png", gray.rgb, grayscale=True)
    assert _pillow(tmp_path / "l2.png")[1] == "L"
    assert np.array_equal(_pillow(tmp_path / "l2.png")[2], pixels[:, :, 0])

    rgba = np.dstack([pixels, pixels[:, :, 1]])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert loaded.had_alpha and loaded.alpha is not None and loaded.alpha.shape == (1, 12, 17)
    assert np.array_equal(_hwc(loaded.alpha)[:, :, 0], pixels[:, :, 1])
    write_image(tmp_path / "a2.png", loaded.rgb, loaded.alpha)
    assert np.array_equal(_pillow(tmp_path / "a2.png")[2], rgba)

    Image.fromarray(rgba[:, :, 2:], "LA").save(tmp_path / "la.png")
    la = read_image(tmp_path / "la.png")
    assert (
        la.was_grayscale
        and la.had_alpha
        and np.array_equal(_hwc(la.alpha)[:, :, 0], rgba[:, :, 3])
    )

    palette = Image.fromarray(pixels).quantize(8)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    indices = np.asarray(palette)
    p = read_image(tmp_path / "p.png")
    assert p.mode == "P" and p.had_alpha
    assert np.array_equal(_hwc(p.alpha)[:, :, 0] == 0, indices == 0)

    Image.fromarray(pixels).convert("CMYK").save(tmp_path / "c.jpg")
    cmyk = read_image(tmp_path / "c.jpg")
    assert cmyk.mode == "CMYK" and cmyk.rgb.shape == (3, 12, 17) and not cmyk.was_grayscale


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    img = Image.fromarray(_rgb8(5, 9, seed=orientation))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
    assert np.array_equal(_hwc(read_image(tmp_path / "o.png").rgb), expected)


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated by 90 degrees clockwise
    Image.fromarray(_rgb8(16, 24)).save(tmp_path / "r.jpg", exif=exif, quality=95)
    assert read_image(tmp_path / "r.jpg").rgb.shape == (3, 24, 16)


def test_bad_files_raise_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("this is not an image\n")
    Image.fromarray(_rgb8(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(_rgb8(64, 64)).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    for name in ("text.png", "cut.png", "cut.jpg", "missing.png"):
        with pytest.raises(ImageReadError) as info:
            read_image(tmp_path / name)
        message = str(info.value)
        assert str(tmp_path / name) in message and "\n" not in message
    assert issubclass(ImageReadError, ValueError)


def test_formats_and_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = torch.from_numpy(_rgb8()).permute(2, 0, 1).float() / 255.0
    for suffix, fmt in {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tiff": "TIFF",
                        ".bmp": "BMP"}.items():  # fmt: skip
        write_image(tmp_path / f"x{suffix}", rgb, bit_depth=16)  # 16 -> 8 for non PNG/TIFF
        assert _pillow(tmp_path / f"x{suffix}")[0] == fmt
        error = (read_image(tmp_path / f"x{suffix}").rgb - rgb).abs().max()
        assert error < (0.1 if fmt == "JPEG" else 1e-7)
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "x.gif2", rgb)
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(image_io, "_save", broken)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, rgb)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o027)
    try:
        write_image(tmp_path / "a.png", torch.rand(3, 4, 5))
    finally:
        os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o640  # not the temporary file's 0600


def test_list_images(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.PNG", "a.jpg", "sub/c.tif", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    assert list_images([tmp_path]) == [
        tmp_path / "a.jpg",
        tmp_path / "b.PNG",
        tmp_path / "sub/c.tif",
    ]
    assert list_images([tmp_path], recursive=False) == [tmp_path / "a.jpg", tmp_path / "b.PNG"]
    assert list_images([tmp_path / "a.jpg", tmp_path / "a.jpg"]) == [tmp_path / "a.jpg"]
    with pytest.raises(FileNotFoundError):
        list_images([tmp_path / "nope"])
