"""``srflow sr``: super-resolve images, several samples and temperatures each."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from tqdm import tqdm

from srflow.cli.common import CliError, collect_inputs, fail, prepare_output_dir, resolve_model
from srflow.compat.official import CheckpointError
from srflow.data.image_io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    LoadedImage,
    read_image,
    write_image,
)
from srflow.data.resize import imresize
from srflow.inference.pipeline import InputTooSmallError, SuperResolver, pick_device

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow sr``."""
    p = subparsers.add_parser("sr", help="super-resolve images (diverse samples)")
    p.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--model", help="model file (.safetensors or original .pth); default: embedded")
    p.add_argument("-t", "--temperature", type=float, nargs="+", default=[0.8],
                   help="latent standard deviation(s) (default 0.8)")  # fmt: skip
    p.add_argument("-n", "--samples", type=int, default=1, help="samples per temperature")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output)")
    p.add_argument("--tile", type=int, default=None, help="LR tile size for large images")
    p.add_argument("--tile-overlap", type=int, default=16, help="LR context pixels per tile")
    p.add_argument("--batch-size", type=int, default=None, help="samples decoded together")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--half", action="store_true", help="float16 inference (GPU only)")
    p.add_argument("--suffix", default="_sr", help="added to each output name")
    p.add_argument("--format", default="png", choices=["png", "jpg", "webp", "tif", "bmp"])
    p.set_defaults(run=run)


def output_name(stem: str, suffix: str, temperature: float, index: int, fmt: str) -> str:
    """``photo_sr_t0.80_s00.png``: the temperature and the sample index."""
    return f"{stem}{suffix}_t{temperature:.2f}_s{index:02d}.{fmt}"


def _finish(loaded: LoadedImage, sr: torch.Tensor, scale: int) -> torch.Tensor | None:
    """Upscale the alpha channel with bicubic to the SR size (reattached on write)."""
    if loaded.alpha is None:
        return None
    alpha = imresize(loaded.alpha.unsqueeze(0).double(), scale=scale)[0].float()
    return alpha[:, : sr.shape[1], : sr.shape[2]].clamp(0, 1)


def run(args: argparse.Namespace) -> int:
    """Run ``srflow sr``; returns the exit status (1 if any image failed)."""
    if args.samples < 1:
        raise CliError("--samples must be at least 1")
    out_dir = prepare_output_dir(args.output)
    model_path = resolve_model(args.model)
    try:
        resolver = SuperResolver.from_path(model_path, args.device, args.half)
    except (CheckpointError, ValueError) as exc:
        raise CliError(str(exc)) from None
    logger.info("model %s on %s", model_path, pick_device(args.device))
    files, skipped, missing = collect_inputs(args.inputs, frozenset(IMAGE_SUFFIXES))
    for problem in skipped + missing:
        fail(problem)
    failures = len(missing)
    for path in tqdm(files, desc="images", unit="img", disable=len(files) < 2):
        try:
            loaded = read_image(path)
            total = args.samples * len(args.temperature)
            with tqdm(total=total, desc=path.name, unit="sample", leave=False) as bar:
                for temperature in args.temperature:
                    srs = resolver.super_resolve(
                        loaded.rgb, temperature, args.samples, args.seed,
                        tile=args.tile, tile_overlap=args.tile_overlap,
                        batch_size=args.batch_size, progress=bar.update,
                    )  # fmt: skip
                    for index, sr in enumerate(srs):
                        name = output_name(path.stem, args.suffix, temperature, index, args.format)
                        write_image(
                            out_dir / name, sr, _finish(loaded, sr, resolver.scale),
                            bit_depth=loaded.bit_depth, grayscale=loaded.was_grayscale,
                        )  # fmt: skip
        except (ImageReadError, InputTooSmallError, OSError) as exc:
            fail(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            failures += 1
    done = len(files) - (failures - len(missing))
    print(f"{done} of {len(files)} image(s) super-resolved -> {out_dir}")
    return 1 if failures else 0
