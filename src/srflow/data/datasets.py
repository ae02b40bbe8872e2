"""Training patches and validation images for SRFlow.

The training stream is a pure function of ``(seed, stream, sample index)``: the sample with
global index ``k`` (``k = step * global_batch + i``) takes image ``perm_e[k % n]`` of the
epoch-``e`` permutation (``e = k // n``), a random aligned crop, a random dihedral transform and
a dequantization-noise seed, all from ``numpy.random.default_rng([seed, stream, k])``. Resuming
therefore needs no sampler state, and distributed ranks split every global batch into disjoint
contiguous shards whose union is the single-process batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from srflow.data.image_io import list_images, read_image, to_uint8_round
from srflow.data.scan import BadImagesError, scan_images
from srflow.data.transforms import (
    bicubic_downscale,
    center_crop,
    dihedral,
    modcrop,
    random_crop_origin,
    random_dihedral,
    to_chw_uint8,
)

logger = logging.getLogger(__name__)
SampleKey = tuple[int, int]  # (stream, global sample index)


class DatasetError(ValueError):
    """A training or validation folder is unusable (one line naming the path)."""


def decode_uint8(path: Path) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 (16-bit data rounded to 8 bits)."""
    rgb = to_uint8_round(read_image(path).rgb)
    return np.ascontiguousarray(rgb.permute(1, 2, 0).numpy())


def _paired_lr(hr: Path, hr_root: Path, lr_files: dict[str, Path], scale: int) -> Path:
    rel = hr.relative_to(hr_root).with_suffix("").as_posix() if hr_root.is_dir() else hr.stem
    for key in (rel, f"{rel}x{scale}"):
        if key in lr_files:
            return lr_files[key]
    raise DatasetError(f"{hr}: no paired LR image '{rel}.*' in the LR folder")


class ImageCollection:
    """HR images (and optional paired LR images) of a folder, decoded once or per access.

    Images smaller than ``min_size`` on a side are skipped with a warning. When the decoded
    uint8 arrays take at most ``cache_max_mb`` MiB they are decoded once (in threads) and kept
    in memory; DataLoader workers forked afterwards share them.

    Args:
        hr_root: folder (recursive) or file of HR images.
        lr_root: optional folder of paired LR images (same relative names, or ``NAMExS``).
        scale: super-resolution factor; HR images are modcropped to a multiple of it.
        min_size: smallest usable HR side.
        cache_max_mb: in-memory cache budget in MiB (0: never cache).
        skip_bad: train on the readable images when some cannot be read (each is named in a
            warning) instead of refusing the folder (:mod:`srflow.data.scan`).
    """

    def __init__(
        self,
        hr_root: str | Path,
        lr_root: str | Path | None = None,
        *,
        scale: int,
        min_size: int = 1,
        cache_max_mb: int = 0,
        skip_bad: bool = False,
    ) -> None:
        self.scale = scale
        hr_root = Path(hr_root)
        try:
            paths = list_images([hr_root])
        except FileNotFoundError:
            raise DatasetError(f"{hr_root}: no such image folder") from None
        lr_files: dict[str, Path] = {}
        if lr_root is not None:
            lr_root = Path(lr_root)
            if not lr_root.is_dir():
                raise DatasetError(f"{lr_root}: no such LR folder")
            for p in list_images([lr_root]):
                lr_files[p.relative_to(lr_root).with_suffix("").as_posix()] = p
        try:
            sizes = scan_images(paths, hr_root, skip_bad=skip_bad)
        except BadImagesError as exc:
            raise DatasetError(str(exc)) from None
        paths = [p for p in paths if p in sizes]
        small = [p for p in paths if min(sizes[p]) < min_size]
        for p in small:
            logger.warning("%s: %dx%d is smaller than %d px, skipped", p, *sizes[p], min_size)
        self.hr_paths = [p for p in paths if min(sizes[p]) >= min_size]
        if not self.hr_paths:
            raise DatasetError(f"{hr_root}: no usable images (need at least {min_size} px)")
        self.lr_paths = (
            [_paired_lr(p, hr_root, lr_files, scale) for p in self.hr_paths] if lr_files else None
        )
        if lr_root is not None and not lr_files:
            raise DatasetError(f"{lr_root}: no images in the LR folder")
        pixels = sum(sizes[p][0] * sizes[p][1] for p in self.hr_paths) * 3
        pixels += pixels // scale**2 if self.lr_paths else 0
        self._cache: list[tuple[np.ndarray, np.ndarray | None]] | None = None
        if cache_max_mb and pixels <= cache_max_mb * 2**20:
            with ThreadPoolExecutor(max_workers=8) as pool:
                self._cache = list(pool.map(self._decode, range(len(self.hr_paths))))
            logger.info("cached %d images (%.0f MiB)", len(self.hr_paths), pixels / 2**20)
        elif cache_max_mb:
            logger.info("%.0f MiB of images exceed data.cache_max_mb: decoding per patch",
                        pixels / 2**20)  # fmt: skip

    def __len__(self) -> int:
        return len(self.hr_paths)

    @property
    def cached(self) -> bool:
        """Whether the decoded images are held in memory."""
        return self._cache is not None

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        hr = modcrop(decode_uint8(self.hr_paths[index]), self.scale)
        if self.lr_paths is None:
            return hr, None
        lr = decode_uint8(self.lr_paths[index])
        expected = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
        if lr.shape[:2] != expected:
            raise DatasetError(
                f"{self.lr_paths[index]}: LR is {lr.shape[1]}x{lr.shape[0]}, expected "
                f"{expected[1]}x{expected[0]} (1/{self.scale} of {self.hr_paths[index].name})"
            )
        return hr, lr

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(hr, lr or None)`` uint8 ``(H, W, 3)`` arrays of image ``index`` (HR modcropped)."""
        return self._cache[index] if self._cache is not None else self._decode(index)


class TrainPatches(Dataset):
    """Random HR/LR training patches addressed by ``(stream, global sample index)``.

    Each item is a dict: ``hr`` uint8 ``(3, P, P)``, ``lr`` uint8 ``(3, P/s, P/s)``,
    ``noise_seed`` (int, seeds the sample's dequantization noise) and ``index``.
    """

    def __init__(
        self,
        images: ImageCollection,
        *,
        patch_size: int,
        seed: int,
        flips: bool = True,
        rotations: bool = True,
        channel_shuffle: bool = False,
    ) -> None:
        self.images, self.patch, self.seed = images, patch_size, seed
        self.flips, self.rotations, self.channel_shuffle = flips, rotations, channel_shuffle
        self._perm: tuple[tuple[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def image_order(self, stream: int, epoch: int) -> np.ndarray:
        """The permutation of images used in ``epoch`` of ``stream``."""
        if self._perm is None or self._perm[0] != (stream, epoch):
            rng = np.random.default_rng([self.seed, stream, epoch, 1])
            self._perm = ((stream, epoch), rng.permutation(len(self.images)))
        return self._perm[1]

    def __getitem__(self, key: SampleKey) -> dict[str, object]:
        stream, index = key
        epoch, position = divmod(index, len(self.images))
        image_index = int(self.image_order(stream, epoch)[position])
        hr, lr = self.images.get(image_index)
        rng = np.random.default_rng([self.seed, stream, index, 0])
        s = self.images.scale
        top, left = random_crop_origin(hr.shape[0], hr.shape[1], self.patch, s, rng)
        hr_patch = hr[top : top + self.patch, left : left + self.patch]
        if lr is None:
            lr_patch = bicubic_downscale(hr_patch, s)
        else:
            p = self.patch // s
            lr_patch = lr[top // s : top // s + p, left // s : left // s + p]
        k, flip = random_dihedral(rng, self.flips, self.rotations)
        hr_patch, lr_patch = dihedral(hr_patch, k, flip), dihedral(lr_patch, k, flip)
        noise_seed = int(rng.integers(0, 2**62))
        if self.channel_shuffle:  # own stream: the other draws do not depend on the option
            order = np.random.default_rng([self.seed, stream, index, 2]).permutation(3)
            hr_patch, lr_patch = hr_patch[..., order], lr_patch[..., order]
        return {
            "hr": to_chw_uint8(hr_patch),
            "lr": to_chw_uint8(lr_patch),
            "noise_seed": noise_seed,
            "index": index,
        }


class StepSampler(Sampler[SampleKey]):
    """Keys of this rank's shard of every global batch from ``start_step`` to ``end_step``.

    Global batch ``t`` holds indices ``t * G .. t * G + G - 1``; rank ``r`` of ``R`` takes the
    contiguous slice ``[r * G / R, (r + 1) * G / R)``.
    """

    def __init__(
        self, start_step: int, end_step: int, global_batch: int, *,
        rank: int = 0, world_size: int = 1, stream: int = 0,
    ) -> None:  # fmt: skip
        if global_batch % world_size:
            raise ValueError(f"batch {global_batch} is not divisible by {world_size} ranks")
        self.start, self.end, self.global_batch = start_step, end_step, global_batch
        self.per_rank = global_batch // world_size
        self.offset, self.stream = rank * self.per_rank, stream

    def __len__(self) -> int:
        return max(0, self.end - self.start) * self.per_rank

    def __iter__(self) -> Iterator[SampleKey]:
        for step in range(self.start, self.end):
            base = step * self.global_batch + self.offset
            for i in range(self.per_rank):
                yield self.stream, base + i


def global_batch(dataset: TrainPatches, step: int, size: int, stream: int = 0) -> dict:
    """The whole global batch of ``step`` (used by every rank for the ActNorm init)."""
    items = [dataset[(stream, step * size + i)] for i in range(size)]
    return torch.utils.data.default_collate(items)


class ValidationImages:
    """Centre-cropped HR validation images with bicubic LR, decoded once.

    Attributes:
        names: file stems; ``hr``/``lr``: uint8 ``(H, W, 3)`` arrays.
    """

    def __init__(self, root: str | Path, *, scale: int, multiple: int, crop: int,
                 max_images: int) -> None:  # fmt: skip
        try:
            paths = list_images([Path(root)])[:max_images]
        except FileNotFoundError:
            raise DatasetError(f"{root}: no such validation folder") from None
        if not paths:
            raise DatasetError(f"{root}: no images in the validation folder")
        self.names = [p.stem for p in paths]
        self.hr = [center_crop(decode_uint8(p), crop, scale * multiple) for p in paths]
        for path, hr in zip(paths, self.hr, strict=True):
            if min(hr.shape[:2]) == 0:
                raise DatasetError(f"{path}: smaller than {scale * multiple} px")
        self.lr = [bicubic_downscale(hr, scale) for hr in self.hr]

    def __len__(self) -> int:
        return len(self.hr)
