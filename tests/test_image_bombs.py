"""Small files that claim (or inflate to) huge images cost little: the size is read from the
header and checked before decoding, and the 16-bit PNG decoder inflates only the bytes the
image rows need."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srflow.cli.main import main
from srflow.data.image_io import ImageReadError, image_size, read_image
from test_cli_sr import errors


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _png16(path: Path, width: int, height: int, trailing_zeros: int = 0) -> Path:
    """An RGB 16-bit PNG of mid-grey rows, its IDAT stream followed by ``trailing_zeros``."""
    rows = b"".join(b"\x00" + b"\x80\x00" * 3 * width for _ in range(height))
    packer = zlib.compressobj(9)
    stream = packer.compress(rows)
    block = bytes(2**20)
    for _ in range(trailing_zeros // len(block)):
        stream += packer.compress(block)
    stream += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream)
                     + _chunk(b"IEND", b""))  # fmt: skip
    return path


def _jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny JPEG whose frame header says ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


def test_a_16_bit_png_inflating_to_far_more_than_its_rows_costs_its_rows(tmp_path: Path) -> None:
    bomb = _png16(tmp_path / "bomb.png", 32, 32, trailing_zeros=256 * 2**20)
    assert bomb.stat().st_size < 2**20  # 256 MB of zeros in well under 1 MB
    tracemalloc.start()
    loaded = read_image(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert loaded.rgb.shape == (3, 32, 32) and loaded.bit_depth == 16
    assert np.allclose(loaded.rgb.numpy(), 0x8000 / 65535)
    assert peak < 16 * 2**20, peak  # was the whole stream: 256 MB


def test_huge_headers_are_refused_before_decoding(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    jpeg = _jpeg_claiming(tmp_path / "huge.jpg", 12000, 12000)
    png = tmp_path / "wide.png"  # a header claiming 13000 x 13000, 16-bit, a small stream
    header = struct.pack(">IIBBBBB", 13000, 13000, 16, 2, 0, 0, 0)
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                    + _chunk(b"IDAT", zlib.compress(bytes(2**20))) + _chunk(b"IEND", b""))
    assert image_size(jpeg) == (12000, 12000)
    for path in (jpeg, png):
        start = time.perf_counter()
        with pytest.raises(ImageReadError, match="pixels, more than the 50,000,000 allowed"):
            read_image(path)
        assert time.perf_counter() - start < 1.0
    start = time.perf_counter()
    assert main(["sr", str(jpeg), "-o", str(tmp_path / "o"), "--tile", "64"]) == 1
    (line,) = errors(capsys)  # the memory check reads the header: nothing is decoded
    assert line.startswith(f"error: {jpeg}: 12000x12000 needs about")
    assert time.perf_counter() - start < 10
