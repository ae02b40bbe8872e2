"""A small PNG codec for 16-bit colour data, which Pillow reduces to 8 bits.

``decode_png`` reads non-interlaced 8/16-bit grey/RGB(A) PNGs (no palette) into HWC numpy
arrays; ``encode_png`` writes such arrays (every row 'Up'-filtered).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}  # PNG colour type -> channels


def is_16bit_colour_png(path: Path) -> bool:
    """Whether ``path`` is a non-interlaced 16-bit PNG with colour and/or alpha."""
    with open(path, "rb") as handle:
        head = handle.read(33)
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return False
    depth, colour, _, _, interlace = struct.unpack(">BBBBB", head[24:29])
    return depth == 16 and colour in (2, 4, 6) and interlace == 0


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an HWC uint8/uint16 array with 1-4 channels (every row 'Up'-filtered)."""
    height, width, channels = array.shape
    depth = 16 if array.dtype == np.uint16 else 8
    raw = np.ascontiguousarray(array.astype(">u2" if depth == 16 else np.uint8))
    raw = raw.view(np.uint8).reshape(height, -1)
    rows = np.empty((height, raw.shape[1] + 1), dtype=np.uint8)
    rows[:, 0] = 2  # filter type Up: difference with the row above (mod 256)
    rows[:, 1:] = raw - np.vstack([np.zeros_like(raw[:1]), raw[:-1]])
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"".join([_PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)),
                     _png_chunk(b"IEND", b"")])  # fmt: skip


def _unfilter(line: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo PNG filtering; ``line`` is (H, W, bytes per pixel). Wavefront over x + y."""
    height, width, _ = line.shape
    out = np.zeros((height + 1, width + 1, line.shape[2]), dtype=np.int16)  # zero border
    all_rows = np.arange(height)
    for t in range(height + width - 1):
        y = all_rows[max(0, t - width + 1) : min(height, t + 1)]
        x = t - y
        left, up, corner = out[y + 1, x], out[y, x + 1], out[y, x]
        guess = left + up - corner
        d_left, d_up, d_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
        paeth = np.where((d_left <= d_up) & (d_left <= d_corner), left,
                         np.where(d_up <= d_corner, up, corner))  # fmt: skip
        kind = filters[y][:, None]
        choices = [left, up, (left + up) >> 1, paeth]
        predictor = np.select([kind == 1, kind == 2, kind == 3, kind == 4], choices, 0)
        out[y + 1, x + 1] = (line[y, x] + predictor) & 255
    return out[1:, 1:].astype(np.uint8)


def decode_png(data: bytes) -> np.ndarray:
    """HWC uint8/uint16 array of a non-interlaced 8/16-bit grey/RGB(A) PNG (no palette)."""
    if data[:8] != _PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    pos, header, idat = 8, b"", []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk, pos = data[pos + 8 : pos + 8 + length], pos + 12 + length
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
    if depth not in (8, 16) or colour not in _PNG_CHANNELS or interlace:
        raise ValueError(f"unsupported PNG layout (depth {depth}, colour type {colour})")
    channels = _PNG_CHANNELS[colour]
    stride = width * channels * depth // 8
    needed = height * (stride + 1)
    # inflate only the bytes the rows need: a stream with more (a "zip bomb" of gigabytes
    # of zeros behind a small image) costs no more memory than the image
    raw = zlib.decompressobj().decompress(b"".join(idat), needed)
    if len(raw) < needed:
        raise ValueError("image file is truncated")
    rows = np.frombuffer(raw, np.uint8, count=height * (stride + 1)).reshape(height, -1)
    if rows[:, 0].max(initial=0) > 4:
        raise ValueError("corrupt PNG filter type")
    plain = _unfilter(rows[:, 1:].reshape(height, width, -1).astype(np.int16), rows[:, 0])
    if depth == 8:
        return plain.reshape(height, width, channels)
    return plain.reshape(height, -1).view(">u2").reshape(height, width, channels).astype(np.uint16)
