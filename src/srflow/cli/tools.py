"""``srflow downscale``, ``srflow convert`` and ``srflow info``."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from srflow.cli.common import CliError, collect_inputs, fail, prepare_output_dir, resolve_model
from srflow.compat.official import CheckpointError


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register the small tools."""
    p = subparsers.add_parser("downscale", help="MATLAB-compatible bicubic downscaling")
    p.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("-s", "--scale", type=int, default=4, help="downscaling factor (default 4)")
    p.add_argument("--crop", action="store_true", help="crop to a multiple of the scale first")
    p.set_defaults(run=run_downscale)

    p = subparsers.add_parser("convert", help="convert an original SRFlow .pth to .safetensors")
    p.add_argument("source", type=Path, help="original checkpoint, e.g. SRFlow_DF2K_4X.pth")
    p.add_argument("target", type=Path, help="output .safetensors file")
    p.add_argument(
        "--stacked-blocks",
        type=int,
        nargs="+",
        default=None,
        help="stacked RRDB block indices (only for non-published configurations)",
    )
    p.set_defaults(run=run_convert)

    p = subparsers.add_parser("info", help="describe a model file")
    p.add_argument("model", nargs="?", help="model file (default: the embedded model)")
    p.set_defaults(run=run_info)


def run_downscale(args: argparse.Namespace) -> int:
    """Downscale each image by ``--scale`` with the MATLAB-compatible bicubic (uint8 passes)."""
    import numpy as np

    from srflow.data.image_io import IMAGE_SUFFIXES, ImageReadError, read_image, write_image
    from srflow.data.resize import imresize

    out_dir = prepare_output_dir(args.output)
    files, skipped, missing = collect_inputs(args.inputs, frozenset(IMAGE_SUFFIXES))
    for problem in skipped + missing:
        fail(problem)
    failures = len(missing)
    for path in files:
        try:
            loaded = read_image(path)
            rgb = loaded.rgb
            h, w = rgb.shape[1:]
            if args.crop:
                rgb = rgb[:, : h - h % args.scale, : w - w % args.scale]
            elif h % args.scale or w % args.scale:
                raise ImageReadError(
                    f"{path}: size {w}x{h} is not a multiple of {args.scale} (use --crop)"
                )
            hwc = (rgb.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
            small = imresize(hwc, scale=1 / args.scale)
            out = torch.from_numpy(small).permute(2, 0, 1).float() / 255.0
            write_image(out_dir / f"{path.stem}.png", out, grayscale=loaded.was_grayscale)
        except (ImageReadError, OSError) as exc:
            fail(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
            failures += 1
    print(
        f"{len(files) + len(missing) - failures} of {len(files)} image(s) downscaled -> {out_dir}"
    )
    return 1 if failures else 0


def run_convert(args: argparse.Namespace) -> int:
    """Convert an original checkpoint; the weights are copied bit for bit."""
    from srflow.models.checkpoint import convert_official_checkpoint

    blocks = tuple(args.stacked_blocks) if args.stacked_blocks else None
    try:
        target = convert_official_checkpoint(args.source, args.target, stacked_blocks=blocks)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {target}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print a model's configuration and size."""
    from srflow.config.loading import dumps_yaml
    from srflow.models.checkpoint import load_model

    path = resolve_model(args.model)
    try:
        model = load_model(path)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    params = sum(p.numel() for p in model.parameters())
    print(f"{path}\nscale: {model.config.scale}x   parameters: {params:,}")
    print(dumps_yaml(model.config), end="")
    return 0
