"""The images of an evaluation: HR ground truth cropped as the challenge does, and its LR.

The NTIRE kit crops every ground truth top-left to multiples of 8 (both tracks); we crop to
multiples of ``lcm(8, scale)``. The LR is our MATLAB-compatible bicubic of the cropped HR
(uint8, as the challenge's LR-PSNR reference), unless an LR folder is given: files are then
paired by file stem and cropped top-left to ``HR / scale``. ``crop`` takes a centre crop of at
most ``crop``×``crop`` HR pixels whose offset is a multiple of the same number, so a given LR is
cropped at exactly the matching position.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srflow.data.image_io import ImageReadError, LoadedImage, list_images, read_image
from srflow.data.resize import imresize

__all__ = ["CHALLENGE_MULTIPLE", "EvalImage", "EvalInputError", "load_eval_images"]

logger = logging.getLogger(__name__)
CHALLENGE_MULTIPLE = 8


class EvalInputError(ValueError):
    """An evaluation input is missing or unusable (the message names the file)."""


@dataclass(frozen=True)
class EvalImage:
    """One ground truth and the LR the model sees.

    Attributes:
        name: File stem of the HR image.
        hr: uint8 ``(H, W, 3)``, H and W multiples of ``lcm(8, scale)``.
        lr: uint8 ``(H / scale, W / scale, 3)``.
        lr_source: ``"bicubic"`` or the path of the given LR file.
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray
    lr_source: str


def _uint8_rgb(loaded: LoadedImage) -> np.ndarray:
    """``(H, W, 3)`` uint8 (16-bit inputs are rounded to 8 bits)."""
    return np.rint(loaded.rgb.permute(1, 2, 0).double().numpy() * 255.0).astype(np.uint8)


def _read(path: Path) -> np.ndarray:
    try:
        return _uint8_rgb(read_image(path))
    except (ImageReadError, OSError) as exc:
        message = str(exc)
        raise EvalInputError(message if str(path) in message else f"{path}: {message}") from None


def _centre_window(height: int, width: int, crop: int, multiple: int) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a centre crop of at most ``crop`` pixels a side."""
    h = min(height, crop) // multiple * multiple
    w = min(width, crop) // multiple * multiple
    top = (height - h) // 2 // multiple * multiple
    left = (width - w) // 2 // multiple * multiple
    return top, left, h, w


def _paired_lr(hr_path: Path, lr_files: dict[str, Path]) -> Path:
    if hr_path.stem not in lr_files:
        raise EvalInputError(
            f"{hr_path}: no LR image with the stem {hr_path.stem!r} in the LR folder"
        )
    return lr_files[hr_path.stem]


def load_eval_images(
    hr_dir: Path,
    scale: int,
    lr_dir: Path | None = None,
    crop: int | None = None,
    max_images: int | None = None,
    select: Callable[[list[Path]], Sequence[int]] | None = None,
) -> list[EvalImage]:
    """Read, crop and pair the evaluation images (sorted by file name).

    Args:
        hr_dir: Folder (searched recursively) or single file of HR images.
        scale: Super-resolution factor.
        lr_dir: Folder of LR images paired by stem; None: make the LR with our bicubic.
        crop: Centre-crop the HR to at most this many pixels a side (None: whole image).
        max_images: Use only the first K images.
        select: Picks which of the (sorted, first K) HR files to load, by index: a worker's
            share of a distributed evaluation.

    Returns:
        The images, each with ``hr`` and ``lr`` as uint8 HWC arrays.

    Raises:
        EvalInputError: No images, an unreadable file, a missing or wrongly sized LR partner,
            or an image smaller than one crop unit.
    """
    multiple = math.lcm(CHALLENGE_MULTIPLE, scale)
    try:
        hr_paths = list_images([hr_dir])
    except FileNotFoundError:
        raise EvalInputError(f"{hr_dir}: no such file or folder") from None
    if not hr_paths:
        raise EvalInputError(f"{hr_dir}: no image files found")
    hr_paths = hr_paths[:max_images] if max_images else hr_paths
    lr_files = {p.stem: p for p in list_images([lr_dir])} if lr_dir is not None else {}
    lr_paths = [_paired_lr(p, lr_files) if lr_dir is not None else None for p in hr_paths]
    if select is not None:
        chosen = select(hr_paths)
        hr_paths, lr_paths = [hr_paths[i] for i in chosen], [lr_paths[i] for i in chosen]
    images = []
    for hr_path, lr_path in zip(hr_paths, lr_paths, strict=True):
        raw = _read(hr_path)
        height = raw.shape[0] // multiple * multiple
        width = raw.shape[1] // multiple * multiple
        if height == 0 or width == 0:
            raise EvalInputError(
                f"{hr_path}: {raw.shape[1]}x{raw.shape[0]} is smaller than {multiple}x{multiple}"
            )
        top, left, height, width = (
            _centre_window(height, width, crop, multiple) if crop else (0, 0, height, width)
        )
        hr = raw[top : top + height, left : left + width]
        if lr_path is None:
            images.append(EvalImage(hr_path.stem, hr, imresize(hr, 1.0 / scale), "bicubic"))
            continue
        lr_raw = _read(lr_path)
        expected = (math.ceil(raw.shape[0] / scale), math.ceil(raw.shape[1] / scale))
        if not (
            (top + height) // scale <= lr_raw.shape[0] <= expected[0]
            and (left + width) // scale <= lr_raw.shape[1] <= expected[1]
        ):
            raise EvalInputError(
                f"{lr_path}: LR is {lr_raw.shape[1]}x{lr_raw.shape[0]}, expected about "
                f"{expected[1]}x{expected[0]} (HR {hr_path.name} / {scale})"
            )
        lr_top, lr_left, lr_h, lr_w = (v // scale for v in (top, left, height, width))
        lr = lr_raw[lr_top : lr_top + lr_h, lr_left : lr_left + lr_w]
        images.append(EvalImage(hr_path.stem, hr, lr, str(lr_path)))
    return images
