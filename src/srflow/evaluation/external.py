"""Another method's super-resolutions, read from a folder, to score with the same protocol.

For an evaluation image ``NAME`` the folder may hold (first match wins):

* ``NAME/`` — a folder of that image's samples (any image files, sorted by name);
* ``NAME_sample{i}.png`` (any image suffix) — the NTIRE challenge's naming, sorted by ``i``;
* ``NAME.png`` (any image suffix) — a single output.

Samples are cropped top-left to the ground truth's size, as the NTIRE kit does (the ground
truth itself is cropped to multiples of 8); a sample smaller than it is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srflow.data.image_io import IMAGE_SUFFIXES, ImageReadError, list_images, read_image
from srflow.evaluation.images import EvalImage, EvalInputError

__all__ = ["ExternalMethod", "load_external_method"]


@dataclass(frozen=True)
class ExternalMethod:
    """A method's outputs: ``samples[image name]`` is uint8 ``(N, H, W, 3)``."""

    name: str
    samples: dict[str, np.ndarray]


def _files_for(folder: Path, name: str) -> list[Path]:
    own = folder / name
    if own.is_dir():
        return list_images([own], recursive=False)
    pattern = re.compile(rf"^{re.escape(name)}_sample(\d+)$")
    numbered = sorted(
        (int(m.group(1)), p) for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and (m := pattern.match(p.stem))
    )  # fmt: skip
    if numbered:
        return [p for _, p in numbered]
    return [p for p in sorted(folder.iterdir()) if p.stem == name and p.suffix.lower() in
            IMAGE_SUFFIXES]  # fmt: skip


def _uint8(path: Path) -> np.ndarray:
    loaded = read_image(path)
    return np.rint(loaded.rgb.permute(1, 2, 0).double().numpy() * 255.0).astype(np.uint8)


def load_external_method(folder: Path, images: Sequence[EvalImage],
                         name: str | None = None) -> ExternalMethod:  # fmt: skip
    """Read every evaluation image's samples from ``folder``.

    Raises:
        EvalInputError: the folder is missing, an image has no outputs, an output is
            unreadable or smaller than its ground truth, or sample sizes differ.
    """
    if not folder.is_dir():
        raise EvalInputError(f"{folder}: no such folder (--sr)")
    samples = {}
    for image in images:
        files = _files_for(folder, image.name)
        if not files:
            raise EvalInputError(
                f"{folder}: no outputs for {image.name} (expected {image.name}/, "
                f"{image.name}_sample0.png ... or {image.name}.png)"
            )
        h, w = image.hr.shape[:2]
        outputs = []
        for path in files:
            try:
                array = _uint8(path)
            except ImageReadError as exc:
                raise EvalInputError(str(exc)) from None
            if array.shape[0] < h or array.shape[1] < w:
                raise EvalInputError(f"{path}: {array.shape[1]}x{array.shape[0]} is smaller "
                                     f"than the ground truth {w}x{h}")  # fmt: skip
            outputs.append(array[:h, :w])
        samples[image.name] = np.stack(outputs)
    return ExternalMethod(name or folder.name, samples)
