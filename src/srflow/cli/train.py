"""``srflow train``: train a model (SRFlow, SRFlow-DA, HCFlow) from a YAML config or a preset.

Examples::

    srflow train train_small_cpu --set data.train_hr=photos/ --out runs/small
    srflow train my.yaml --set train.lr=2e-4 --set train.steps=50000 --out runs/a
    srflow train --resume --out runs/a            # continue (config from runs/a/config.yaml)
    torchrun --nproc-per-node 4 -m srflow.cli.train my.yaml --out runs/ddp
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from srflow.checkpoints import CheckpointError
from srflow.cli.common import CliError, fail
from srflow.config.loading import ConfigError
from srflow.data.datasets import DatasetError
from srflow.data.image_io import ImageReadError
from srflow.families import FAMILIES
from srflow.train.config import load_run_config
from srflow.train.guard import TrainingDivergedError
from srflow.train.interrupt import TrainingInterrupted
from srflow.train.setup import RunDirError
from srflow.workers import Worker

logger = logging.getLogger(__name__)


def _configure(p: argparse.ArgumentParser) -> None:
    from srflow.config.presets import training_preset_names

    p.epilog = "training presets: " + ", ".join(training_preset_names())
    p.add_argument(
        "config", nargs="?", help="YAML config file or training preset name (listed below)"
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train.lr=2e-4 (repeatable)")  # fmt: skip
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: runs/<config name>)")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="continue from RUN_DIR/checkpoints/last.pt (exactly)")  # fmt: skip
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: config)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run_train)


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow train`` and ``srflow export``."""
    _configure(subparsers.add_parser("train", help="train a model (YAML config or preset)"))
    p = subparsers.add_parser("export", help="write a training checkpoint as a model file")
    p.add_argument("source", type=Path, help="run folder (newest checkpoint) or checkpoint .pt")
    p.add_argument("target", type=Path, help="output .safetensors file")
    p.add_argument("--raw", action="store_true", help="the raw weights, not the EMA weights")
    p.add_argument("--name", default=None,
                   help="a name for the model, shown by every command in place of 'custom "
                        "configuration'")  # fmt: skip
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Run ``srflow export``."""
    from srflow.train.checkpoint import export_model

    try:
        target = export_model(args.source, args.target, use_ema=not args.raw, name=args.name)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {target}")
    return 0


def _run_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    if args.config is None:
        raise CliError("give a CONFIG (file or preset name), or --resume --out RUN_DIR")
    return Path("runs") / Path(args.config).stem


def _restarted_with_checkpoint(run_dir: Path) -> bool:
    """Whether torchrun restarted this job (``--max-restarts``) after it wrote a checkpoint:
    the restarted workers then resume, as ``--resume`` would."""
    from srflow.train.checkpoint import last_checkpoint

    return Worker.from_env().restart > 0 and last_checkpoint(run_dir) is not None


def run_train(args: argparse.Namespace) -> int:
    """Run ``srflow train``; returns the exit status."""
    from srflow.train.loop import train  # heavy imports only when training

    run_dir = _run_dir(args)
    source = args.config
    if source is None:
        if args.resume and args.out is not None and not (run_dir / "config.yaml").is_file():
            raise CliError(f"{run_dir}: no run to resume there (no config.yaml); start one "
                           f"with `srflow train CONFIG --out {run_dir}`")  # fmt: skip
        if not (args.resume and (run_dir / "config.yaml").is_file()):
            raise CliError("give a CONFIG (file or preset name), or --resume --out RUN_DIR")
        source = str(run_dir / "config.yaml")
    try:
        cfg = load_run_config(source, args.overrides)
        if not cfg.data.train_hr:
            raise CliError("data.train_hr is not set (use --set data.train_hr=FOLDER)")
        result = train(
            cfg, run_dir, resume=args.resume or _restarted_with_checkpoint(run_dir),
            device=args.device,
            command=shlex.join(sys.argv), progress=not args.no_progress,
            notify=lambda message: print(message, file=sys.stderr, flush=True),
        )  # fmt: skip
    except (ConfigError, DatasetError, ImageReadError, RunDirError, CheckpointError,
            TrainingDivergedError, FileNotFoundError, ValueError) as exc:  # fmt: skip
        raise CliError(str(exc)) from None
    except TrainingInterrupted as exc:
        fail(str(exc))
        return 130
    if result.model_path is not None:
        print(f"{result.step} steps ({result.skipped_total} skipped, {result.rollbacks} "
              f"rollbacks); model: {result.model_path}")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m srflow.cli.train CONFIG ...`` (the same options as ``srflow train``)."""
    parser = argparse.ArgumentParser(
        prog="srflow train",
        description=f"Train a flow model ({', '.join(family.name for family in FAMILIES)}).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    _configure(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return run_train(args)
    except CliError as exc:
        fail(str(exc))
        return 2
    except KeyboardInterrupt:
        fail("interrupted (continue with --resume)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
