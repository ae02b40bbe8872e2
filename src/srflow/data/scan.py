"""One scan of a training folder before training: every unreadable file found at once.

Each image's header is read (its size, EXIF rotation included) and its data checked by
Pillow's ``verify`` (chunk checksums and structure, without decoding the pixels), so an empty,
truncated or mislabelled file is found before the first step instead of one per attempt.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

logger = logging.getLogger(__name__)

#: Bad files named in the one-line error; the rest are counted.
NAMED = 5


class BadImagesError(ValueError):
    """Image files of a training folder cannot be read (one line naming them)."""


def _check(path: Path) -> tuple[int, int]:
    """``(height, width)`` of a readable image; ``OSError``/``ValueError`` otherwise."""
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    with Image.open(path) as img:
        w, h = img.size
        swap = int(img.getexif().get(0x0112, 1) or 1) in (5, 6, 7, 8)
    with Image.open(path) as img:
        img.verify()
    return (w, h) if swap else (h, w)


def scan_images(
    paths: list[Path], folder: Path, *, skip_bad: bool
) -> dict[Path, tuple[int, int]]:
    """``{path: (height, width)}`` of the readable images among ``paths``.

    Raises:
        BadImagesError: some files cannot be read and ``skip_bad`` is false; the message names
            them all (the first :data:`NAMED`) and the option that trains on the rest.
    """
    sizes: dict[Path, tuple[int, int]] = {}
    bad: list[str] = []
    for path in paths:
        try:
            sizes[path] = _check(path)
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow raises all three
            bad.append(f"{path.name} ({exc})")
    if bad and not skip_bad:
        more = f" and {len(bad) - NAMED} more" if len(bad) > NAMED else ""
        raise BadImagesError(
            f"{folder}: {len(bad)} of {len(paths)} image files cannot be read: "
            f"{', '.join(bad[:NAMED])}{more}; fix or remove them, or train on the rest with "
            "--set data.skip_bad_images=true"
        )
    for problem in bad:
        logger.warning("%s: skipped, cannot be read: %s", folder, problem)
    if bad:
        logger.warning("%s: %d unreadable image files skipped", folder, len(bad))
    return sizes
