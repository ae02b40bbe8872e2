"""``srflow sr``: super-resolve images, several samples and temperatures each.

Exit status: 0 when every image was done; 1 when some input could not be used (unreadable,
truncated, too small, not an image, missing) or an output could not be written (the other images
are still done); 2 for a fatal setup problem (bad option, model, output folder), before any
image is touched.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from tqdm import tqdm

from srflow.cli.common import (
    CliError,
    InputFile,
    announce_model,
    collect_inputs,
    fail,
    for_each_input,
    note,
    prepare_output_dir,
    resolve_model,
    temperature_arg,
    write_output,
)
from srflow.compat.official import CheckpointError
from srflow.data.image_io import IMAGE_SUFFIXES, read_image
from srflow.inference.pipeline import SuperResolver

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow sr``."""
    p = subparsers.add_parser("sr", help="super-resolve images (diverse samples)")
    p.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--model", help="model file (.safetensors or original .pth); default: embedded")
    p.add_argument("-t", "--temperature", type=temperature_arg, nargs="+", default=[0.8],
                   help="latent standard deviation(s) (default 0.8); for HCFlow models the "
                        "noise around each level's predicted mean (0: the means; HCFlow's "
                        "authors use 0.9 for general SR, 0.8 for faces)")  # fmt: skip
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


def _check_options(args: argparse.Namespace) -> None:
    if args.samples < 1:
        raise CliError("--samples must be at least 1")
    if len({f"{t:.2f}" for t in args.temperature}) < len(args.temperature):
        raise CliError("--temperature values must differ in their first two decimals")
    if args.tile is not None and args.tile < 1:
        raise CliError("--tile must be at least 1 (LR pixels)")
    if args.tile_overlap < 0:
        raise CliError("--tile-overlap must not be negative")
    if args.batch_size is not None and args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    if "/" in args.suffix or "\\" in args.suffix:
        raise CliError("--suffix must not contain a path separator")


def _super_resolve_one(
    resolver: SuperResolver, item: InputFile, out_dir: Path, args: argparse.Namespace
) -> None:
    loaded = read_image(item.path)
    alpha = resolver.upscale_alpha(loaded)
    total = args.samples * len(args.temperature)
    with tqdm(total=total, desc=item.path.name, unit="sample", leave=False) as bar:
        results = resolver.sample_temperatures(
            loaded.rgb, args.temperature, args.samples, args.seed, tile=args.tile,
            tile_overlap=args.tile_overlap, batch_size=args.batch_size, progress=bar.update,
        )  # fmt: skip
        for temperature, srs in zip(args.temperature, results, strict=True):
            for index, sr in enumerate(srs):
                target = item.output(
                    out_dir, output_name("", args.suffix, temperature, index, args.format)
                )
                write_output(target, sr, alpha, bit_depth=loaded.bit_depth,
                             grayscale=loaded.was_grayscale)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run ``srflow sr``; returns the exit status (see the module docstring)."""
    _check_options(args)
    model_path = resolve_model(args.model)
    try:
        resolver = SuperResolver.from_path(model_path, args.device, args.half)
    except (CheckpointError, ValueError) as exc:
        raise CliError(str(exc)) from None
    out_dir = prepare_output_dir(args.output)
    announce_model(model_path, resolver.model)
    logger.info("model %s on %s", model_path, resolver.device)
    pattern = re.compile(rf"{re.escape(args.suffix)}_t\d+\.\d\d_s\d\d$")
    files, skipped, missing = collect_inputs(
        args.inputs, frozenset(IMAGE_SUFFIXES), exclude=out_dir,
        is_output=lambda path: bool(pattern.search(path.stem)),
    )  # fmt: skip
    for problem in skipped:
        note(problem)
    for problem in missing:
        fail(problem)
    failures = for_each_input(
        files, lambda item: _super_resolve_one(resolver, item, out_dir, args)
    )
    print(f"{len(files) - failures} of {len(files)} image(s) super-resolved -> {out_dir}")
    return 1 if failures or missing else 0
