"""``srflow downscale``, ``srflow convert``, ``srflow info`` and ``srflow export-onnx``."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from srflow.checkpoints import CheckpointError
from srflow.checkpoints.onnx_export import OPSET
from srflow.cli.common import (
    CliError,
    InputError,
    InputFile,
    collect_inputs,
    fail,
    for_each_input,
    note,
    prepare_output_dir,
    resolve_model,
    write_output,
)
from srflow.families import FAMILIES


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register the small tools."""
    p = subparsers.add_parser("downscale", help="MATLAB-compatible bicubic downscaling")
    p.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("-s", "--scale", type=int, default=4, help="downscaling factor (default 4)")
    p.add_argument("--crop", action="store_true", help="crop to a multiple of the scale first")
    p.set_defaults(run=run_downscale)

    p = subparsers.add_parser(
        "convert", help="convert an original .pth of any family "
        f"({', '.join(family.name for family in FAMILIES)}) to .safetensors",
    )
    p.add_argument(
        "source", type=Path,
        help="original checkpoint, e.g. SRFlow_DF2K_4X.pth or SRFlow-DA's 200000_G_X4.pth",
    )  # fmt: skip
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

    p = subparsers.add_parser(
        "export-onnx", help="export a model to an ONNX folder that onnxruntime samples from "
        "(docs/onnx.md); --model DIR then runs it"
    )  # fmt: skip
    p.add_argument("--model", default=None, help="model file (default: the embedded model)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the folder to write")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    p.set_defaults(run=run_export_onnx)


def _downscale_one(item: InputFile, out_dir: Path, scale: int, crop: bool) -> None:
    import numpy as np

    from srflow.data.image_io import read_image
    from srflow.data.resize import imresize

    loaded = read_image(item.path)
    planes = loaded.rgb if loaded.alpha is None else torch.cat([loaded.rgb, loaded.alpha])
    h, w = planes.shape[1:]
    if crop:
        planes = planes[:, : h - h % scale, : w - w % scale]
    elif h % scale or w % scale:
        raise InputError(f"size {w}x{h} is not a multiple of {scale} (use --crop)")
    if min(planes.shape[1:]) < scale:
        raise InputError(f"size {w}x{h} is smaller than the factor {scale}")
    hwc = (planes.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    small = torch.from_numpy(imresize(hwc, scale=1 / scale)).permute(2, 0, 1).float() / 255.0
    target = item.output(out_dir, ".png")
    if target.resolve() == item.path.resolve():
        raise InputError(f"the output {target} would overwrite the input")
    write_output(target, small[:3], small[3:] if loaded.alpha is not None else None,
                 bit_depth=8, grayscale=loaded.was_grayscale)  # fmt: skip


def run_downscale(args: argparse.Namespace) -> int:
    """Downscale each image by ``--scale`` with the MATLAB-compatible bicubic (uint8 passes,
    as the SRFlow evaluation makes its LR images); writes 8-bit PNGs, alpha downscaled alike.

    Exit status as for ``srflow sr``: 1 if any input failed, 2 for a bad option or folder.
    """
    from srflow.data.image_io import IMAGE_SUFFIXES

    if args.scale < 2:
        raise CliError("--scale must be at least 2")
    out_dir = prepare_output_dir(args.output)
    files, skipped, missing = collect_inputs(
        args.inputs, frozenset(IMAGE_SUFFIXES), exclude=out_dir
    )
    for problem in skipped:
        note(problem)
    for problem in missing:
        fail(problem)
    failures = for_each_input(
        files, lambda item: _downscale_one(item, out_dir, args.scale, args.crop)
    )
    print(f"{len(files) - failures} of {len(files)} image(s) downscaled -> {out_dir}")
    return 1 if failures or missing else 0


def run_convert(args: argparse.Namespace) -> int:
    """Convert an original checkpoint; the weights are copied bit for bit."""
    from srflow.checkpoints import convert_checkpoint, describe_model

    blocks = tuple(args.stacked_blocks) if args.stacked_blocks else None
    try:
        model, target = convert_checkpoint(
            args.source, args.target, stacked_blocks=blocks
        )
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.source}: {describe_model(model)}\nwrote {target}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print a model's configuration and size."""
    from srflow.checkpoints import describe_model, load_model
    from srflow.config.loading import dumps_yaml

    path = resolve_model(args.model, "a model path: srflow info MODEL")
    try:
        model = load_model(path)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    params = sum(p.numel() for p in model.parameters())
    print(f"{path}\nmodel: {describe_model(model)}")
    print(f"scale: {model.config.scale}x   parameters: {params:,}")
    print(dumps_yaml(model.config), end="")
    return 0


def run_export_onnx(args: argparse.Namespace) -> int:
    """Export a model to an ONNX folder and check it against the model."""
    from srflow.checkpoints import describe_model, load_model

    path = resolve_model(args.model, "a model path: srflow export-onnx --model MODEL -o DIR")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        needs = "export-onnx needs onnx and onnxruntime: pip install 'srflow[onnx]'"
        raise CliError(needs) from None
    from srflow.checkpoints.onnx_export import export_onnx

    try:
        model = load_model(path)
        folder = export_onnx(model, args.output, source=path, opset=args.opset)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    written = ", ".join(sorted(p.name for p in folder.iterdir()))
    print(f"{path}: {describe_model(model)}\nwrote {folder} ({written})")
    return 0
