"""``srflow eval --task rescale``: score an HCFlow rescaling model and bicubic down + up."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

import torch
from tqdm import tqdm

from srflow.checkpoints import CheckpointError
from srflow.cli.common import CliError, announce_model, prepare_output_dir
from srflow.data.image_io import write_image
from srflow.evaluation import EvalInputError, load_eval_images
from srflow.evaluation.report import write_atomic
from srflow.evaluation.rescaling import METRIC_KEYS, RescaleResult, evaluate_rescaling
from srflow.evaluation.rescaling import write_reports as write_rescale_reports
from srflow.inference.rescale import PUBLISHED_TEMPERATURE, Rescaler

SUMMARY_KEYS = ("hr_psnr", "hr_ssim", "hr_psnr_y", "lr_psnr", "lr_psnr_y")


def temperature(args: argparse.Namespace, sr_default: list[float]) -> float:
    """The one temperature of a rescaling evaluation (1.0 unless ``-t`` names one)."""
    if args.temperature == sr_default:
        return PUBLISHED_TEMPERATURE
    if len(args.temperature) != 1:  # (each value is checked by the option's type)
        raise CliError("--task rescale takes one --temperature (default 1.0)")
    return float(args.temperature[0])


def _saver(folder: Path) -> object:
    def save(image: str, method: str, lr: object, hr: object) -> None:
        for kind, array in (("lr", lr), ("hr", hr)):
            rgb = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0  # type: ignore[arg-type]
            write_image(folder / f"{image}_{method}_{kind}.png", rgb)

    return save


def run_rescale(args: argparse.Namespace, hr_dir: Path, sr_default: list[float]) -> int:
    """Run the rescaling evaluation; returns the exit status."""
    temp = temperature(args, sr_default)
    if not args.model:
        raise CliError("--task rescale needs --model (an HCFlow rescaling model, e.g. "
                       "Rescaling_DF2K_X4_HCFlow.pth)")  # fmt: skip
    try:
        rescaler = Rescaler.from_path(args.model, args.device)
    except (CheckpointError, ValueError, OSError) as exc:
        message = str(exc)
        raise CliError(message if args.model in message else f"{args.model}: {message}") from None
    announce_model(Path(args.model), rescaler.model)
    if args.scale is not None and args.scale != rescaler.scale:
        raise CliError(
            f"{args.model}: the model is {rescaler.scale}x, not {args.scale}x (--scale)"
        )
    try:
        images = load_eval_images(hr_dir, rescaler.scale, None, args.crop, args.max_images)
    except EvalInputError as exc:
        raise CliError(str(exc)) from None
    out_dir = prepare_output_dir(args.output)
    sink = _saver(prepare_output_dir(out_dir / "images")) if args.save_images else None
    start = time.perf_counter()
    with tqdm(total=len(images), desc="eval", unit="img") as bar:
        result = evaluate_rescaling(
            rescaler, images, temperature=temp, seed=args.seed, model_name=Path(args.model).name,
            sink=sink, progress=bar.update,  # type: ignore[arg-type]
        )  # fmt: skip
    result.command = _command_line(args, hr_dir, temp)
    written = write_rescale_reports(result, out_dir)
    if args.report is not None:
        write_atomic(args.report, (out_dir / "report.md").read_text(encoding="utf-8"))
    _print_summary(result)
    minutes = (time.perf_counter() - start) / 60
    print(f"{len(images)} image(s) in {minutes:.1f} min -> {written[0].parent}")
    return 0


def _command_line(args: argparse.Namespace, hr_dir: Path, temp: float) -> str:
    words = ["srflow", "eval", "--task", "rescale", "--hr", str(hr_dir), "--model", args.model]
    words += ["--temperature", f"{temp:g}", "--seed", str(args.seed)]
    words += ["--crop", str(args.crop)] if args.crop else []
    words += ["--max-images", str(args.max_images)] if args.max_images else []
    return shlex.join([*words, "-o", str(args.output)])


def _print_summary(result: RescaleResult) -> None:
    keys = [k for k in METRIC_KEYS if k in SUMMARY_KEYS]
    print("  ".join([f"{'method':<28}", *(f"{k:>10}" for k in keys)]))
    for row in result.summary():
        cells = (f"{row.metrics[k]:>10.4f}" if k in row.metrics else f"{'-':>10}" for k in keys)
        print("  ".join([f"{row.method[:28]:<28}", *cells]))
