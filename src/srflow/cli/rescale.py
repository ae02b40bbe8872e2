"""``srflow rescale down|up``: invertible image rescaling with an HCFlow model.

``down`` writes the flow's LR of each HR image as an 8-bit PNG (``NAME_x4.png``) that records
the HR size; ``up`` reconstructs the HR from such PNGs (``NAME_up.png``). Exit status as
``srflow sr``: 0 all done, 1 some input failed (the others are still done), 2 fatal setup
problem before any image is touched, 3 all done but some outputs diverged (named).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from srflow.checkpoints import CheckpointError
from srflow.cli.common import (
    CliError,
    InputFile,
    OutputError,
    announce_model,
    check_tile_option,
    collect_inputs,
    fail,
    for_each_input,
    note,
    prepare_output_dir,
    seed_arg,
    temperature_arg,
    write_output,
)
from srflow.cli.divergence import DivergenceLog
from srflow.data.image_io import IMAGE_SUFFIXES, read_image
from srflow.inference.rescale import (
    PUBLISHED_TEMPERATURE,
    Rescaler,
    fits_lr,
    read_lr_image,
    write_lr_png,
)

logger = logging.getLogger(__name__)
MODEL_HELP = "an HCFlow model (Rescaling_DF2K_X4_HCFlow.pth, or ours in .safetensors)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow rescale down`` and ``srflow rescale up``."""
    p = subparsers.add_parser("rescale", help="downscale images invertibly / upscale them back")
    actions = p.add_subparsers(dest="direction", required=True, metavar="DIRECTION")
    down = actions.add_parser("down", help="HR images -> 8-bit LR PNGs the model can undo")
    up = actions.add_parser("up", help="LR PNGs (from `rescale down`) -> HR images")
    for q in (down, up):
        q.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
        q.add_argument("-o", "--output", type=Path, required=True, help="output folder")
        q.add_argument("--model", required=True, help=MODEL_HELP)
        q.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
        q.add_argument("--half", action="store_true", help="float16 (GPU only)")
    down.add_argument("--suffix", default=None, help="added to each output name (_x4 at 4x)")
    up.add_argument("-t", "--temperature", type=temperature_arg, default=None,
                    help="standard deviation of the high-frequency latents around their "
                         "predicted means (default: the temperature the model was trained to "
                         "reconstruct at when its file records one, e.g. 0 for the tiny "
                         "recipe; else 1.0, as the published model is tested)",
                    )  # fmt: skip
    up.add_argument("--seed", type=seed_arg, default=0,
                    help="random seed (same seed, same output)")  # fmt: skip
    up.add_argument("-T", "--tile", type=int, default=None, help="LR tile size for large images")
    up.add_argument("--tile-overlap", type=int, default=16, help="LR context pixels per tile")
    up.add_argument("--suffix", default="_up", help="added to each output name (_up)")
    p.set_defaults(run=run)


def _load(args: argparse.Namespace) -> Rescaler:
    if "/" in (args.suffix or "") or "\\" in (args.suffix or ""):
        raise CliError("--suffix must not contain a path separator")
    if args.direction == "up":
        check_tile_option(args.tile)
    try:
        rescaler = Rescaler.from_path(args.model, args.device, args.half)
    except (CheckpointError, ValueError) as exc:
        message = str(exc)
        raise CliError(message if args.model in message else f"{args.model}: {message}") from None
    return rescaler


def _down(rescaler: Rescaler, item: InputFile, out_dir: Path, suffix: str) -> None:
    loaded = read_image(item.path)
    if loaded.bit_depth == 16:
        logger.warning("%s: 16-bit input; the LR is 8-bit (as the model is)", item.path)
    lr = rescaler.downscale(loaded.rgb)
    alpha = None if loaded.alpha is None else rescaler.downscale_alpha(loaded.alpha)
    target = item.output(out_dir, f"{suffix}.png")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_lr_png(target, lr, tuple(loaded.rgb.shape[1:]), alpha)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from None


def temperature_of(rescaler: Rescaler, args: argparse.Namespace) -> float:
    """``-t``, else the model's own trained temperature, else the published one."""
    if args.temperature is not None:
        return float(args.temperature)
    trained = rescaler.model.trained_temperature
    return PUBLISHED_TEMPERATURE if trained is None else trained


def _up(
    rescaler: Rescaler, item: InputFile, out_dir: Path, args: argparse.Namespace,
    log: DivergenceLog,
) -> None:  # fmt: skip
    loaded, hr_size = read_lr_image(item.path)
    lr_size = tuple(loaded.rgb.shape[1:])
    if hr_size is not None and not fits_lr(hr_size, lr_size, rescaler.scale):
        fail(f"{item.path}: its recorded HR size does not fit its size (resized?); ignored")
        hr_size = None
    with log.catch():
        hr = rescaler.upscale(loaded.rgb, temperature_of(rescaler, args), 1, args.seed,
                              hr_size=hr_size,
                              tile=args.tile, tile_overlap=args.tile_overlap)[0]  # fmt: skip
    alpha = None if loaded.alpha is None else rescaler.upscale_alpha(loaded.alpha, hr_size)
    target = item.output(out_dir, f"{args.suffix}.png")
    write_output(target, hr, alpha, bit_depth=8, grayscale=False)
    log.report(target, log.take())


def run(args: argparse.Namespace) -> int:
    """Run ``srflow rescale``; returns the exit status (see the module docstring)."""
    rescaler = _load(args)
    out_dir = prepare_output_dir(args.output)
    announce_model(Path(args.model), rescaler.model)
    suffix = args.suffix if args.suffix is not None else f"_x{rescaler.scale}"
    files, skipped, missing = collect_inputs(
        args.inputs, frozenset(IMAGE_SUFFIXES), exclude=out_dir,
        is_output=lambda path: path.stem.endswith(suffix),
    )  # fmt: skip
    for problem in skipped:
        note(problem)
    for problem in missing:
        fail(problem)
    log = DivergenceLog()
    if args.direction == "down":
        failures = for_each_input(files, lambda item: _down(rescaler, item, out_dir, suffix))
        verb = "downscaled"
    else:
        if args.temperature is None and rescaler.model.trained_temperature is not None:
            note(f"decoding at temperature {temperature_of(rescaler, args):g}, the one this model "
                 "was trained to reconstruct at (-t sets another)")  # fmt: skip
        failures = for_each_input(files, lambda item: _up(rescaler, item, out_dir, args, log))
        verb = "upscaled"
    print(f"{len(files) - failures} of {len(files)} image(s) {verb} -> {out_dir}")
    return log.status(1 if failures or missing else 0)
