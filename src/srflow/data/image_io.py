"""Robust image reading and atomic writing for real-world files (Pillow based).

Reading normalises everything to a float32 RGB tensor ``(3, H, W)`` in [0, 1] plus an optional
alpha ``(1, H, W)``: 8- and 16-bit data, grayscale (replicated to RGB), LA/RGBA (alpha split
off), palette images (with transparency), CMYK and other modes, and the EXIF orientation.
Pillow reduces 16-bit *colour* data to 8 bits, so 16-bit colour PNGs are decoded (and all 16-bit
PNGs encoded) by the small numpy codec of :mod:`srflow.data.png16`, and 16-bit colour TIFFs go
through ``tifffile`` when it is installed (otherwise a warning is logged and Pillow's 8-bit data
is used).

Writing converts to integers by **rounding** (``round(clip(x, 0, 1) * (2**bits - 1))``, half to
even), picks the format from the suffix and is atomic: the data goes to a temporary file in the
target directory which then replaces the target with ``os.replace``.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image

from srflow.data.png16 import decode_png, encode_png, is_16bit_colour_png
from srflow.files import atomic_file

__all__ = ["IMAGE_SUFFIXES", "ImageReadError", "LoadedImage", "image_from_pil", "image_to_pil",
           "list_images", "read_image", "to_uint8_round", "to_uint8_truncate",
           "write_image"]  # fmt: skip

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
            ".tiff": "TIFF", ".bmp": "BMP"}  # fmt: skip
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
# EXIF orientation -> numpy transform reproducing ImageOps.exif_transpose
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}  # fmt: skip


class ImageReadError(ValueError):
    """An input file is missing, not an image, truncated or otherwise undecodable."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image.

    Attributes:
        rgb: float32 ``(3, H, W)`` in [0, 1] (grayscale replicated to 3 channels).
        alpha: float32 ``(1, H, W)`` in [0, 1], or None without transparency.
        bit_depth: 16 for 16-bit (or 32-bit integer/float) sources, else 8.
        was_grayscale: The source had a single luminance channel (L, LA, I;16, ...).
        had_alpha: The source had an alpha channel or palette transparency.
        mode: The source's Pillow mode (``"RGB"``, ``"I;16"``, ``"P"``, ...).
        path: The file it was read from (None for an in-memory Pillow image).
        frames: frames in the file (an animated GIF, APNG or WebP has several; the first is
            read).
    """

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    was_grayscale: bool
    had_alpha: bool
    mode: str
    path: Path | None
    frames: int = 1


def _pillow_array(img: Image.Image) -> tuple[np.ndarray, float]:
    """HWC (or HW) integer/float array of ``img`` and the value of full intensity."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16), 65535.0
    if mode == "I":
        return np.clip(np.asarray(img), 0, 65535), 65535.0
    if mode == "F":
        return np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0), 1.0
    if mode in ("1", "L"):
        return np.asarray(img.convert("L")), 255.0
    if mode in ("LA", "La"):
        return np.asarray(img.convert("LA")), 255.0
    has_alpha = "A" in mode or "a" in mode or "transparency" in img.info
    return np.asarray(img.convert("RGBA" if has_alpha else "RGB")), 255.0


def _tiff16_colour(img: Image.Image, path: Path) -> np.ndarray | None:
    """The full 16-bit data of a 16-bit colour TIFF via tifffile, or None if not applicable."""
    bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None
    if img.mode not in ("RGB", "RGBA") or not bits or max(np.atleast_1d(bits)) != 16:
        return None
    try:
        import tifffile
    except ImportError:
        logger.warning("%s: 16-bit colour TIFF read as 8 bits (install tifffile)", path)
        return None
    data = np.asarray(tifffile.imread(path))
    if data.ndim == 3 and data.shape[0] in (3, 4) and data.shape[-1] not in (3, 4):
        data = np.moveaxis(data, 0, -1)  # planar configuration
    return data


#: Largest image (pixels) read unless a caller allows more: decoding one takes about 24 bytes
#: per pixel at the peak (file, 8- or 16-bit array, float tensor), 1.2 GB here. The size is read
#: from the header, so a larger image is refused before anything is decoded.
DEFAULT_MAX_PIXELS = 50_000_000


class ImageTooLarge(ValueError):
    """An image's header gives more pixels than allowed."""


def _open(path: str | os.PathLike[str]) -> Image.Image:
    """``Image.open`` without Pillow's own pixel-count warning: sizes are checked here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _decode(path: Path, max_pixels: int | None) -> tuple[np.ndarray, float, str, int, int]:
    """Array, full-scale value, Pillow mode, EXIF orientation and frame count of ``path``."""
    with _open(path) as img:
        frames = int(getattr(img, "n_frames", 1) or 1)
        array, full, mode, orientation = _decode_first(img, path, max_pixels)
        return array, full, mode, orientation, frames


def _decode_first(
    img: Image.Image, path: Path, max_pixels: int | None
) -> tuple[np.ndarray, float, str, int]:
    """The first frame of an opened image: array, full-scale value, mode, orientation."""
    width, height = img.size  # from the header: nothing decoded yet
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(
            f"{width}x{height} pixels, more than the {max_pixels:,} allowed; not decoded"
        )
    mode, orientation = img.mode, int(img.getexif().get(0x0112, 1) or 1)
    if img.format == "PNG" and is_16bit_colour_png(path):
        return decode_png(path.read_bytes()), 65535.0, mode, orientation
    img.load()  # full decode: truncated files fail here
    if img.format == "TIFF" and (data := _tiff16_colour(img, path)) is not None:
        return data, 65535.0, mode, orientation
    array, full = _pillow_array(img)
    return array, full, mode, orientation


def _loaded(
    array: np.ndarray, full: float, mode: str, orientation: int, path: Path | None
) -> LoadedImage:
    """Upright float tensors of a decoded HW(C) array whose full intensity is ``full``."""
    if orientation in _ORIENT:
        array = _ORIENT[orientation](array)
    array = np.ascontiguousarray(array if array.ndim == 3 else array[:, :, None])
    values = torch.from_numpy(array.astype(np.float32 if full == 1.0 else array.dtype))
    values = values.permute(2, 0, 1).float() / full
    colour_channels = 1 if values.shape[0] in (1, 2) else 3
    rgb, alpha = values[:colour_channels], values[colour_channels:]
    return LoadedImage(
        rgb=rgb.expand(3, -1, -1).contiguous() if colour_channels == 1 else rgb.contiguous(),
        alpha=alpha.contiguous() if alpha.shape[0] else None,
        bit_depth=16 if full != 255.0 else 8,
        was_grayscale=mode in _GRAY_MODES or colour_channels == 1,
        had_alpha=bool(alpha.shape[0]),
        mode=mode,
        path=path,
    )


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` from an image file's header, without decoding it (before EXIF
    rotation).

    Raises:
        ImageReadError: If the file is missing or not an image.
    """
    try:
        with _open(path) as img:
            return img.size
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error,
            Image.DecompressionBombError) as exc:  # fmt: skip
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path}: cannot read image ({reason})") from None


def read_image(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Read an image file into a float32 RGB tensor in [0, 1] (and the alpha, if any).

    Args:
        path: The image file (any format Pillow reads; 16-bit colour PNG/TIFF at full depth).
        max_pixels: refuse (before decoding) an image whose header says it has more pixels;
            ``None``: any size.

    Returns:
        The decoded :class:`LoadedImage`, upright according to its EXIF orientation.

    Raises:
        ImageReadError: If the file is missing, not an image, truncated or corrupt.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file")
        array, full, mode, orientation, frames = _decode(path, max_pixels)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except ImageTooLarge as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
            Image.DecompressionBombError) as exc:  # fmt: skip
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path}: cannot read image ({reason})") from None
    return replace(_loaded(array, full, mode, orientation, path), frames=frames)


def image_from_pil(img: Image.Image) -> LoadedImage:
    """Like :func:`read_image` for an in-memory Pillow image (modes and EXIF orientation alike;
    16-bit colour is not available: Pillow holds 8 bits per colour channel)."""
    orientation = int(img.getexif().get(0x0112, 1) or 1)
    array, full = _pillow_array(img)
    return _loaded(array, full, img.mode, orientation, None)


def to_uint8_truncate(x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """The original SRFlow ``test.py`` conversion: ``(clip(x, 0, 1) * 255)`` cast by truncation.

    Computed in the input's float dtype; the layout is unchanged. Biased by -0.5 on average.
    """
    if isinstance(x, torch.Tensor):
        return (x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return (np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint8_round(x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """``round(clip(x, 0, 1) * 255)`` (half to even) as uint8; the layout is unchanged."""
    if isinstance(x, torch.Tensor):
        return torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _quantise(chw: torch.Tensor, bit_depth: int) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> HWC uint8/uint16 by rounding (half to even)."""
    full = 255.0 if bit_depth == 8 else 65535.0
    values = torch.round(chw.detach().double().cpu().clamp(0.0, 1.0) * full)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return values.permute(1, 2, 0).numpy().astype(dtype)


def _save(handle: IO[bytes], array: np.ndarray, fmt: str, bit_depth: int) -> None:
    """Encode the HWC integer ``array`` (1-4 channels) into the open binary ``handle``."""
    channels = array.shape[2]
    if bit_depth == 16 and fmt == "PNG":
        handle.write(encode_png(array))
        return
    if bit_depth == 16 and fmt == "TIFF" and channels == 1:
        Image.fromarray(array[:, :, 0]).save(handle, format="TIFF")  # uint16 -> I;16
        return
    if bit_depth == 16:  # TIFF with colour or alpha (grey+alpha stored as RGBA: Pillow reads it)
        if channels == 2:
            array, channels = array[:, :, [0, 0, 0, 1]], 4
        try:
            import tifffile
        except ImportError:
            raise ValueError("16-bit colour TIFF output needs tifffile (or use .png)") from None
        photometric = "rgb" if channels > 2 else "minisblack"
        extra = (2,) if channels == 4 else None  # 2 = unassociated alpha
        tifffile.imwrite(handle, array, photometric=photometric, extrasamples=extra)
        return
    img = Image.fromarray(array if channels > 1 else array[:, :, 0])  # L, LA, RGB or RGBA
    options: dict[str, object] = {"JPEG": {"quality": 95, "subsampling": 0},
                                  "WEBP": {"lossless": True}}.get(fmt, {})  # fmt: skip
    img.save(handle, format=fmt, **options)


def _planes(
    rgb: torch.Tensor, alpha: torch.Tensor | None, grayscale: bool, name: str
) -> torch.Tensor:
    """Colour (3 planes, or 1 luminance plane if ``grayscale``) plus the alpha, if any."""
    if rgb.dim() != 3 or rgb.shape[0] not in (1, 3):
        raise ValueError(f"{name}: expected a (3|1, H, W) image, got {tuple(rgb.shape)}")
    if alpha is not None and (alpha.dim() != 3 or alpha.shape != (1, *rgb.shape[1:])):
        raise ValueError(f"{name}: alpha of shape {tuple(alpha.shape)} does not fit the image")
    colour = rgb.detach().double().cpu()
    if grayscale and colour.shape[0] == 3:
        luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
        colour = (colour * luma[:, None, None]).sum(0, keepdim=True)
    elif not grayscale and colour.shape[0] == 1:
        colour = colour.expand(3, -1, -1)
    return colour if alpha is None else torch.cat([colour, alpha.detach().double().cpu()])


def image_to_pil(
    rgb: torch.Tensor,
    alpha: torch.Tensor | None = None,
    *,
    bit_depth: int = 8,
    grayscale: bool = False,
) -> Image.Image:
    """A Pillow image (``L``, ``LA``, ``RGB``, ``RGBA`` or, 16-bit grayscale, ``I;16``).

    Args:
        rgb: float ``(3, H, W)`` or ``(1, H, W)`` tensor in [0, 1] (values are clipped).
        alpha: Optional float ``(1, H, W)`` alpha in [0, 1].
        bit_depth: 16 is kept for grayscale without alpha only (Pillow has no 16-bit colour
            mode); everything else is 8-bit.
        grayscale: One luminance channel, as in :func:`write_image`.
    """
    if bit_depth == 16 and not (grayscale and alpha is None):
        bit_depth = 8
    array = _quantise(_planes(rgb, alpha, grayscale, "image"), bit_depth)
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def write_image(
    path: str | os.PathLike[str],
    rgb: torch.Tensor,
    alpha: torch.Tensor | None = None,
    *,
    bit_depth: int = 8,
    grayscale: bool = False,
) -> None:
    """Write an image atomically (temporary file in the same folder, then ``os.replace``).

    Args:
        path: Target file; the suffix picks the format (png, jpg/jpeg, webp, tif/tiff, bmp).
        rgb: float ``(3, H, W)`` or ``(1, H, W)`` tensor in [0, 1] (values are clipped).
        alpha: Optional float ``(1, H, W)`` alpha in [0, 1]; dropped (with a warning) for
            JPEG and BMP.
        bit_depth: 8 or 16. 16 applies to PNG and TIFF; other formats are written with 8 bits.
        grayscale: Store one luminance channel (BT.601 weights 0.299/0.587/0.114, Pillow's).

    Integers are obtained by rounding half to even: ``round(clip(x, 0, 1) * (2**bit_depth - 1))``.
    JPEG is written with quality 95 and no chroma subsampling, WEBP losslessly.

    Raises:
        ValueError: On an unknown suffix, a bad bit depth or bad tensor shapes.
        OSError: If the file cannot be written (the target is then left untouched).
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported output suffix (use one of {IMAGE_SUFFIXES})")
    if bit_depth not in (8, 16):
        raise ValueError(f"{path}: bit_depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        logger.info("%s: %s has no 16-bit mode, writing 8 bits", path, fmt)
        bit_depth = 8
    if alpha is not None and fmt in ("JPEG", "BMP"):
        logger.warning("%s: %s does not keep alpha here, dropping it", path, fmt)
        alpha = None
    array = _quantise(_planes(rgb, alpha, grayscale, str(path)), bit_depth)
    with atomic_file(path) as handle:
        _save(handle, array, fmt, bit_depth)


def list_images(paths: Sequence[Path | str], recursive: bool = True) -> list[Path]:
    """Image files among ``paths``: files with an image suffix and the images inside folders.

    Args:
        paths: Files and/or folders.
        recursive: Descend into sub-folders of the given folders.

    Returns:
        Sorted, de-duplicated list of files whose suffix (any case) is in ``IMAGE_SUFFIXES``;
        hidden files (name starting with ``.``) inside folders are skipped.

    Raises:
        FileNotFoundError: If a path does not exist.
    """
    found: set[Path] = set()
    for entry in map(Path, paths):
        if entry.is_dir():
            candidates = entry.rglob("*") if recursive else entry.iterdir()
            found.update(
                p for p in candidates
                if p.is_file() and not p.name.startswith(".")
                and p.suffix.lower() in IMAGE_SUFFIXES
            )  # fmt: skip
        elif entry.is_file():
            if entry.suffix.lower() in IMAGE_SUFFIXES:
                found.add(entry)
        else:
            raise FileNotFoundError(f"{entry}: no such file or folder")
    return sorted(found)
