"""Prepare the real photographs: the held-out "photos" benchmark and the training pool.

The pictures come from Debian wallpaper packages; the fixed file list (package, path and the
sha256 of the source bytes) is in ``scripts/photos_manifest.yaml``. Usage::

    python scripts/prepare_photos.py --out data/photos          # write / update
    python scripts/prepare_photos.py --out data/photos --check  # verify, write nothing

Output (PNG, RGB uint8)::

    OUT/eval/hr/NAME.png     centre crop, at most 1024 px a side, sides multiples of 8
    OUT/eval/lr_x4/NAME.png  MATLAB-compatible bicubic x1/4 of the HR crop
    OUT/train/NAME.png       whole photo, longer side at most 1024 px (loader takes random crops)

The output is deterministic for given package, Pillow and numpy versions: a rerun produces the
same bytes, and files whose bytes are unchanged are not rewritten. Files are written to a
temporary name in the same folder and renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageOps

MANIFEST_PATH = Path(__file__).with_name("photos_manifest.yaml")
SPLITS = ("eval", "train")
EVAL_MAX_SIDE = 1024
EVAL_MULTIPLE = 8
EVAL_LR_SCALE = 4
# JPEG sources whose shorter side is at least this are halved before cropping: a 2x
# (antialiased) downscale averages away most of the JPEG blocking/ringing artefacts and sensor
# noise, so the HR targets are close to clean (as DIV2K-style sets do). Smaller sources are
# used as they are (they would otherwise become too small for a 1024 px crop).
HALVE_MIN_SHORT_SIDE = 1536
TRAIN_MAX_SIDE = 1024
PNG_COMPRESS_LEVEL = 6  # level 9 is 4x slower for 2% smaller files


class PhotoPrepError(ValueError):
    """A bad manifest entry, a missing/changed source file or an unusable image."""


@dataclass(frozen=True)
class PhotoEntry:
    """One picture of the manifest.

    Attributes:
        split: ``"eval"`` or ``"train"``.
        name: Output file stem.
        package: Debian package that installs ``path``.
        path: Absolute path of the source image.
        sha256: Hex digest of the source file's bytes.
    """

    split: str
    name: str
    package: str
    path: Path
    sha256: str


def load_manifest(path: Path = MANIFEST_PATH) -> list[PhotoEntry]:
    """Read and validate the manifest (unique names, both splits, every field present)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != set(SPLITS):
        raise PhotoPrepError(f"{path}: expected exactly the top-level keys {SPLITS}")
    entries = []
    for split in SPLITS:
        for item in data[split]:
            try:
                entry = PhotoEntry(
                    split, item["name"], item["package"], Path(item["path"]), item["sha256"]
                )
            except (KeyError, TypeError) as error:
                raise PhotoPrepError(f"{path}: bad {split} entry {item!r}") from error
            entries.append(entry)
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise PhotoPrepError(f"{path}: duplicate output names")
    return entries


def missing_packages(entries: list[PhotoEntry]) -> list[str]:
    """Packages of ``entries`` that are not installed (or whose files are absent)."""
    missing = []
    for package in sorted({entry.package for entry in entries}):
        files_present = all(e.path.is_file() for e in entries if e.package == package)
        installed = True
        if shutil.which("dpkg-query"):
            query = ["dpkg-query", "-W", "-f=${Status}", package]
            result = subprocess.run(query, capture_output=True, text=True, check=False)
            installed = result.returncode == 0 and result.stdout.endswith("installed")
        if not (installed and files_present):
            missing.append(package)
    return missing


def load_source(entry: PhotoEntry) -> tuple[np.ndarray, str]:
    """Decode a source image after checking its sha256.

    Returns:
        The RGB uint8 ``(H, W, 3)`` array (EXIF orientation applied; an embedded colour profile
        is ignored: all of them are sRGB or absent) and the file format (``"JPEG"``/``"PNG"``).
    """
    raw = entry.path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != entry.sha256:
        raise PhotoPrepError(f"{entry.path}: sha256 differs from the manifest (other version?)")
    with Image.open(io.BytesIO(raw)) as image:
        image_format = str(image.format)
        image = ImageOps.exif_transpose(image)
        if "A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255:
            raise PhotoPrepError(f"{entry.path}: has transparent pixels")
        return np.asarray(image.convert("RGB")), image_format


def resize_lanczos(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Exact (no ``reducing_gap`` shortcut) Pillow LANCZOS resize of an RGB uint8 array."""
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(resized)


def centre_crop_multiple(image: np.ndarray, max_side: int, multiple: int) -> np.ndarray:
    """Centred crop of at most ``max_side`` per side, both sides rounded down to ``multiple``.

    Raises:
        PhotoPrepError: If the image is smaller than ``multiple`` along a side.
    """
    height, width = image.shape[:2]
    crop_h = min(height, max_side) // multiple * multiple
    crop_w = min(width, max_side) // multiple * multiple
    if crop_h == 0 or crop_w == 0:
        raise PhotoPrepError(f"image {height}x{width} is smaller than {multiple} px")
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return image[top : top + crop_h, left : left + crop_w]


def make_eval_hr(image: np.ndarray, image_format: str) -> np.ndarray:
    """Evaluation HR: halve large JPEGs (see ``HALVE_MIN_SHORT_SIDE``), then centre crop."""
    height, width = image.shape[:2]
    if image_format == "JPEG" and min(height, width) >= HALVE_MIN_SHORT_SIDE:
        image = resize_lanczos(image, width // 2, height // 2)
    return centre_crop_multiple(image, EVAL_MAX_SIDE, EVAL_MULTIPLE)


def make_train_image(image: np.ndarray, max_side: int = TRAIN_MAX_SIDE) -> np.ndarray:
    """Training image: the whole photo, LANCZOS-downscaled so the longer side is ``max_side``."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    factor = max_side / max(height, width)
    return resize_lanczos(image, max(1, round(width * factor)), max(1, round(height * factor)))


def encode_png(image: np.ndarray) -> bytes:
    """Deterministic PNG bytes (no metadata) of an RGB uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` via a temporary file and rename; return False if ``path`` already held it."""
    if path.is_file() and path.read_bytes() == data:
        return False
    from srflow.files import atomic_file  # lazy, like imresize below

    with atomic_file(path) as handle:
        handle.write(data)
    return True


def outputs_for(entry: PhotoEntry, out: Path) -> dict[Path, bytes]:
    """The output files (path -> PNG bytes) of one manifest entry."""
    image, image_format = load_source(entry)
    if entry.split == "train":
        return {out / "train" / f"{entry.name}.png": encode_png(make_train_image(image))}
    from srflow.data.resize import imresize  # lazy: only the eval split needs torch

    hr = make_eval_hr(image, image_format)
    lr = np.asarray(imresize(np.ascontiguousarray(hr), scale=1.0 / EVAL_LR_SCALE))
    return {
        out / "eval" / "hr" / f"{entry.name}.png": encode_png(hr),
        out / "eval" / f"lr_x{EVAL_LR_SCALE}" / f"{entry.name}.png": encode_png(lr),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (data/photos)")
    parser.add_argument("--check", action="store_true", help="verify outputs, write nothing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    entries = load_manifest()
    missing = missing_packages(entries)
    if missing:
        print(f"missing Debian packages: {' '.join(missing)}. Install them (as root) with:")
        print(f"  apt-get update && apt-get install -y {' '.join(missing)}")
        return 1
    expected: set[Path] = set()
    stale = []
    for entry in entries:
        try:
            outputs = outputs_for(entry, args.out)
        except PhotoPrepError as error:
            print(f"error: {error}")
            return 1
        for path, data in outputs.items():
            expected.add(path)
            if args.check:
                if not path.is_file() or path.read_bytes() != data:
                    stale.append(path)
            elif write_atomic(path, data):
                print(f"wrote {path}")
    extra = sorted(set(args.out.glob("**/*.png")) - expected)
    for path in extra:
        print(f"warning: {path} is not in the manifest")
    train_bytes = sum(path.stat().st_size for path in args.out.glob("train/*.png"))
    counts = {split: sum(e.split == split for e in entries) for split in SPLITS}
    print(
        f"{counts['train']} train, {counts['eval']} eval photos in {args.out}; "
        f"train/ {train_bytes / 1e6:.1f} MB; {time.perf_counter() - start:.1f} s"
    )
    if stale:
        print(f"check failed: {len(stale)} missing or different, e.g. {stale[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
