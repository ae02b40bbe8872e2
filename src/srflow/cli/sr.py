"""``srflow sr``: super-resolve images, several samples and temperatures each.

Exit status: 0 when every image was done; 1 when some input could not be used (unreadable,
truncated, too small, not an image, missing) or an output could not be written (the other images
are still done); 2 for a fatal setup problem (bad option, model, output folder), before any
image is touched; 3 when every image was done but some outputs hold values where the inverse
flow diverged (each is named on a ``warning:`` line).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from srflow.checkpoints import CheckpointError
from srflow.cli.common import (
    CliError,
    InputError,
    InputFile,
    announce_model,
    as_worker,
    check_tile_option,
    collect_inputs,
    fail,
    for_each_input,
    note,
    prepare_output_dir,
    resolve_model,
    seed_arg,
    temperature_arg,
    write_output,
)
from srflow.cli.distributed import device_for, my_share
from srflow.cli.divergence import DivergenceLog
from srflow.cli.progress import sample_progress
from srflow.data.image_io import IMAGE_SUFFIXES, image_size, read_image
from srflow.inference.memory import (
    BudgetTooSmall,
    available_bytes,
    in_use_bytes,
    memory_problem,
    parse_bytes,
    plan_within,
)
from srflow.inference.naming import is_output_name, output_name
from srflow.inference.pipeline import MIN_TILE, SuperResolver
from srflow.inference.repair import Repair
from srflow.workers import Worker

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow sr``."""
    p = subparsers.add_parser(
        "sr", help="super-resolve images (diverse samples)",
        description="Super-resolve images. Real-ESRGAN's spellings work too: -i/--input, "
                    "-o defaulting to results/, --ext (auto: the input's format), --suffix "
                    "without its underscore; its -t (tile) is -T here, as -t is the "
                    "temperature.",
    )  # fmt: skip
    p.add_argument("inputs", nargs="*", type=Path, help="image files or folders")
    p.add_argument("-i", "--input", dest="more_inputs", action="append", type=Path, default=[],
                   metavar="INPUT", help="an image file or folder (repeatable)")  # fmt: skip
    p.add_argument("-o", "--output", type=Path, default=Path("results"), help="output folder")
    p.add_argument("--model", help="model file (.safetensors or original .pth); default: embedded")
    p.add_argument("-t", "--temperature", type=temperature_arg, nargs="+", default=[0.8],
                   help="latent standard deviation(s) (default 0.8): 0 the smooth mean-like "
                        "output, 0.8-0.9 sharp, varied samples; above 1 many outputs break "
                        "into noise and fail the LR check (docs/robustness.md; --repair). For "
                        "HCFlow models the noise around each level's predicted mean (its "
                        "authors use 0.9 for general SR, 0.8 for faces)")  # fmt: skip
    p.add_argument("-n", "--samples", type=int, default=1,
                   help="samples per temperature (one at temperature 0)")  # fmt: skip
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (same seed, same output)")
    p.add_argument("--noise-level", type=noise_level_arg, default=None, metavar="SIGMA",
                   help="NCSR models: condition on a noise level (a constant noise map, 0 to 1 "
                        "on the image range; default: 0, the zero map NCSR's authors sample "
                        "with); refused for models without one (docs/models.md#ncsr)")  # fmt: skip
    p.add_argument("-T", "--tile", type=int, default=None,
                   help=f"LR tile size for large images (at least {MIN_TILE}; default: none)")
    p.add_argument("--tile-overlap", type=int, default=16, help="LR context pixels per tile")
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples decoded together (default: all on a GPU, 4 on the CPU; the same "
                        "latents, outputs equal up to float rounding)")  # fmt: skip
    p.add_argument("--max-memory", type=memory_arg, default=None, metavar="SIZE",
                   help="memory budget (4G, 800M, or auto: what is free): picks the samples "
                        "decoded together and a tile size that fit, and says what it chose "
                        "(default: an image that does not fit is refused with a "
                        "suggestion)")  # fmt: skip
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--half", action="store_true", help="float16 inference (GPU only)")
    p.add_argument("--provider", nargs="+", default=None, metavar="NAME",
                   help="for a --model folder of srflow export-onnx: onnxruntime execution "
                        "providers, most preferred first (e.g. TensorrtExecutionProvider "
                        "CUDAExecutionProvider; default: those of --device)")  # fmt: skip
    p.add_argument("--suffix", default="_sr",
                   help="added to each output name ('_' is put in front of a suffix that "
                        "starts with a letter or digit, as Real-ESRGAN does)")  # fmt: skip
    p.add_argument("--format", "--ext", dest="format", default="png", choices=FORMATS,
                   help="output format; auto: the input's own (PNG for formats not listed)")
    p.add_argument("--repair", action="store_true",
                   help="redraw, at lower temperatures, where an output does not downscale "
                        "back to its input (the LR check; untiled runs), and say so per "
                        "file (default: such outputs are written and named in a warning, "
                        "exit status 3)")  # fmt: skip
    p.add_argument("--skip-existing", action="store_true",
                   help="skip an input whose outputs all exist already (default: they are "
                        "computed again and overwritten, with a note)")  # fmt: skip
    p.set_defaults(run=run)


def noise_level_arg(text: str) -> float:
    """``--noise-level``: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"noise level {text} is outside 0 .. 1")
    return value


def memory_arg(text: str) -> int | str:
    """``--max-memory``: ``auto`` or a size such as ``4G``."""
    if text == "auto":
        return text
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


FORMATS = ["png", "jpg", "webp", "tif", "bmp", "auto"]
_SUFFIX_FORMATS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".tif": "tif",
                   ".tiff": "tif", ".bmp": "bmp"}  # fmt: skip


def output_format(chosen: str, source: Path) -> str:
    """``--format``, with ``auto`` resolved to the input's own format (PNG when unknown)."""
    return _SUFFIX_FORMATS.get(source.suffix.lower(), "png") if chosen == "auto" else chosen


def normalized_suffix(suffix: str) -> str:
    """``out`` -> ``_out`` (Real-ESRGAN's rule); ``_sr``, ``-x4``, ``.sr`` and ``""`` unchanged."""
    return f"_{suffix}" if suffix[:1].isalnum() else suffix


def samples_per_temperature(temperatures: list[float], samples: int) -> list[int]:
    """``samples`` for each temperature, except one at temperature 0 (its output does not
    depend on the seed: more would be identical files)."""
    return [1 if t == 0 else samples for t in temperatures]


def _check_options(args: argparse.Namespace) -> None:
    if args.samples < 1:
        raise CliError("--samples must be at least 1")
    if len({f"{t:.2f}" for t in args.temperature}) < len(args.temperature):
        raise CliError("--temperature values must differ in their first two decimals")
    check_tile_option(args.tile)
    if args.repair and args.tile is not None:
        raise CliError("--repair redraws untiled runs: drop --tile (or --repair)")
    if args.tile_overlap < 0:
        raise CliError("--tile-overlap must not be negative")
    if args.batch_size is not None and args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    args.inputs = [*args.inputs, *args.more_inputs]
    if not args.inputs:
        raise CliError("no input: give image files or folders (or -i INPUT)")
    args.suffix = normalized_suffix(args.suffix)
    if "/" in args.suffix or "\\" in args.suffix:
        raise CliError("--suffix must not contain a path separator")


def _super_resolve_one(
    resolver: SuperResolver, item: InputFile, out_dir: Path, args: argparse.Namespace,
    log: DivergenceLog, skipped: list[InputFile],
) -> None:  # fmt: skip
    counts = samples_per_temperature(args.temperature, args.samples)
    fmt = output_format(args.format, item.path)
    targets = [
        item.output(out_dir, output_name("", args.suffix, temperature, index, fmt))
        for temperature, count in zip(args.temperature, counts, strict=True)
        for index in range(count)
    ]
    existing = sum(target.exists() for target in targets)
    if existing == len(targets) and args.skip_existing:
        note(f"{item.path}: its {existing} output(s) exist; skipped (--skip-existing)")
        skipped.append(item)
        return
    if existing:
        note(f"{item.path}: overwriting {existing} existing output(s) "
             "(--skip-existing keeps them)")  # fmt: skip
    w, h = image_size(item.path)  # the header: the memory is checked before decoding
    if min(w, h) < resolver.min_lr_size:
        raise InputError(f"{item.path}: image is {w}x{h}; the model needs at least "
                         f"{resolver.min_lr_size}x{resolver.min_lr_size}")  # fmt: skip
    batch, tile = _fit_memory(resolver, (h, w), counts, item.path.name, args)
    loaded = read_image(item.path)
    if loaded.frames > 1:
        note(f"{item.path}: {loaded.frames} frames (an animation): the first is super-resolved")
    alpha = resolver.upscale_alpha(loaded)
    if args.repair and tile is not None:
        note(f"{item.path.name}: tiled, so outputs are checked but not repaired (--repair "
             "redraws untiled runs)")  # fmt: skip
    repairs: dict[tuple[int, int], Repair] = {}
    with sample_progress(item.path.name, sum(counts), tile is not None) as bar:
        results = resolver.sample_temperatures(
            loaded.rgb, args.temperature, counts, args.seed, tile=tile,
            tile_overlap=args.tile_overlap, batch_size=batch, progress=bar.update,
            noise_level=args.noise_level, repair=args.repair and tile is None,
            on_repair=lambda t, j, repair: repairs.__setitem__((t, j), repair),
        )  # fmt: skip
        for t_index, temperature in enumerate(args.temperature):
            with log.catch():
                srs = next(results)
            diverged = log.take()
            for index, sr in enumerate(srs):
                target = item.output(
                    out_dir, output_name("", args.suffix, temperature, index, fmt)
                )
                write_output(target, sr, alpha, bit_depth=loaded.bit_depth,
                             grayscale=loaded.was_grayscale)  # fmt: skip
                if (t_index, index) in repairs:
                    note(f"{target}: {repairs[(t_index, index)].describe()}")
                log.report(target, diverged, index)


def _fit_memory(
    resolver: SuperResolver, hw: tuple[int, int], counts: list[int], name: str,
    args: argparse.Namespace,
) -> tuple[int | None, int | None]:  # fmt: skip
    """The batch size and tile to use for one image: as asked when it fits the free memory
    (else an error with a suggestion), or chosen within ``--max-memory``."""
    h, w = hw
    batch = args.batch_size or resolver.default_batch_size(max(counts))
    options = dict(tile_overlap=args.tile_overlap, samples=sum(counts), scale=resolver.scale)
    if args.max_memory is None:
        problem = memory_problem(resolver.model, resolver.device, hw, batch, tile=args.tile,
                                 **options)  # type: ignore[arg-type]  # fmt: skip
        if problem is not None:
            raise InputError(f"{w}x{h} {problem} (or --max-memory auto)")
        return args.batch_size, args.tile
    budget = args.max_memory
    if budget == "auto":  # what is free, plus what this process holds already
        free = available_bytes(resolver.device)
        if free is None:
            raise InputError("--max-memory auto: the free memory of this device is unknown")
        budget = free + in_use_bytes(resolver.device)
    try:
        plan = plan_within(resolver.model, resolver.device, hw, budget, batch=batch,
                           tile=args.tile, **options)  # type: ignore[arg-type]  # fmt: skip
    except BudgetTooSmall as exc:
        raise InputError(f"{w}x{h} does not fit in --max-memory {budget // 2**20}M: "
                         f"{exc}") from None  # fmt: skip
    if plan is None:  # a model without an estimate: run as asked
        return args.batch_size, args.tile
    note(f"{name}: {plan.describe()}")
    return plan.batch, plan.tile


def run(args: argparse.Namespace) -> int:
    """Run ``srflow sr``; returns the exit status (see the module docstring). Under
    ``torchrun`` each worker does its share of the inputs (:mod:`srflow.cli.distributed`)."""
    _check_options(args)
    worker = Worker.from_env()
    as_worker(worker.label, progress=worker.local_rank == 0)
    model_path = resolve_model(args.model)
    if args.provider:  # read where an export folder is loaded (srflow.models.onnx_model)
        os.environ["SRFLOW_ONNX_PROVIDERS"] = ",".join(args.provider)
    try:
        resolver = SuperResolver.from_path(model_path, device_for(worker, args.device),
                                           args.half)  # fmt: skip
    except (CheckpointError, ValueError) as exc:
        raise CliError(str(exc)) from None
    try:
        resolver.model.check_noise_level(args.noise_level)
    except ValueError as exc:
        raise CliError(f"--noise-level: {exc}") from None
    # leftovers are removed only when their writer's process is gone, which a process id
    # tells on its own machine only: a job across machines leaves them
    out_dir = prepare_output_dir(args.output, clean=worker.world_size == worker.local_world_size)
    if worker.is_main:
        announce_model(model_path, resolver.model)
    logger.info("model %s on %s", model_path, resolver.device)
    files, skipped, missing = collect_inputs(
        args.inputs, frozenset(IMAGE_SUFFIXES), exclude=out_dir,
        is_output=lambda path: is_output_name(path.stem),  # any suffix's: earlier runs' too
    )  # fmt: skip
    for problem in skipped if worker.is_main else ():
        note(problem)
    for problem in missing if worker.is_main else ():
        fail(problem)
    if 0 in args.temperature and args.samples > 1 and worker.is_main:
        note(f"temperature 0 gives the same output for every seed: one sample at t=0 instead "
             f"of {args.samples}")  # fmt: skip
    if worker.restart:  # torchrun restarted the job: what was written is complete
        args.skip_existing = True
    mine = [files[i] for i in my_share(worker, [str(f.out_stem) for f in files],
                                         [f.path for f in files])]  # fmt: skip
    log = DivergenceLog()
    skipped_inputs: list[InputFile] = []
    failures = for_each_input(
        mine,
        lambda item: _super_resolve_one(resolver, item, out_dir, args, log, skipped_inputs),
    )
    done = len(mine) - failures - len(skipped_inputs)
    kept = f" ({len(skipped_inputs)} skipped: outputs exist)" if skipped_inputs else ""
    share = f"{worker.label}: " if worker.enabled else ""
    print(f"{share}{done} of {len(mine)} image(s) super-resolved{kept} -> {out_dir}")
    status = log.status(1 if failures or missing else 0)
    # torchrun takes any other status for a crash and restarts the job: outputs written but
    # flagged (status 3) were named in warnings already
    return 0 if worker.enabled and status == 3 else status
