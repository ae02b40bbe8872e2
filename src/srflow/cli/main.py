"""The ``srflow`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from srflow.cli import app, evaluate, latent, metrics, rescale, sr, tools
from srflow.cli.common import (
    CliError,
    Parser,
    describe_os_error,
    fail,
    one_line_warning,
    unexpected,
)
from srflow.cli.threads import apply_threads, threads_arg
from srflow.families import FAMILIES
from srflow.inference.allocator import keep_freed_memory
from srflow.version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = Parser(
        prog="srflow",
        description="Flow-based, diverse image super-resolution "
        f"({', '.join(family.name for family in FAMILIES)}).",
    )
    parser.add_argument("--version", action="version", version=f"srflow {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--threads", type=threads_arg, default="auto",
                        help="CPU threads: a number, or auto (the cores not busy with other "
                             "work; OMP_NUM_THREADS is respected)")  # fmt: skip
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    sr.add_parser(subparsers)
    tools.add_parsers(subparsers)
    evaluate.add_parser(subparsers)
    latent.add_parsers(subparsers)
    rescale.add_parser(subparsers)
    metrics.add_parser(subparsers)
    app.add_parser(subparsers)
    try:
        from srflow.cli import train
    except ImportError:  # training extras not importable: the other commands still work
        pass
    else:
        train.add_train_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    keep_freed_memory()  # reuse freed activations: see srflow.inference.allocator
    with warnings.catch_warnings():  # a warning is one `warning:` line, not Python's two
        warnings.showwarning = one_line_warning
        return _run(args)


def _flush_stdout() -> None:
    """Flush what the command showed: a full disk behind ``> FILE`` is an error, not lost."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise CliError(f"standard output: {exc.strerror or exc}") from None


def _run(args: argparse.Namespace) -> int:
    if sys.stdout is None:  # started with `>&-`: what the command shows would be lost
        fail("standard output is closed; send it to a file or to /dev/null")
        return 2
    try:
        apply_threads(args.threads)
        status = int(args.run(args))
        _flush_stdout()
        return status
    except CliError as exc:
        fail(str(exc))
        return 2
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except BrokenPipeError:  # e.g. `srflow info | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        os.close(devnull)
        return 141
    except OSError as exc:  # a file or folder the command could not use
        fail(describe_os_error(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - the one catch point: never a traceback
        fail(unexpected(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
