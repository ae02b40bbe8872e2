"""``srflow app``: the explorer in the browser (needs the ``app`` extra; docs/app.md)."""

from __future__ import annotations

import argparse
import importlib.util

from srflow.app.retention import RetentionLimits
from srflow.cli.common import CliError

INSTALL = "srflow app needs the app extra: pip install 'srflow[app]' (it brings gradio)"


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1 to 65535, got {text}")
    return port


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow app`` (its help works without gradio)."""
    from srflow.app.images import DEFAULT_MAX_PIXELS

    p = subparsers.add_parser(
        "app", help="explore super-resolutions in the browser (pip install 'srflow[app]')",
        description="Open a local web page to sample super-resolutions of a photo, redraw "
                    "regions, transfer style and content, and restore images. Offline; "
                    "binds to localhost unless --host says otherwise (docs/app.md).",
    )  # fmt: skip
    p.add_argument("--model", help="model file (.safetensors or original .pth); default: embedded")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; use an "
                        "SSH tunnel for a remote machine)")  # fmt: skip
    p.add_argument("--port", type=_port, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"largest input image in pixels (default {DEFAULT_MAX_PIXELS}, "
                        "512x512)")  # fmt: skip
    p.add_argument("--models-dir", action="append", default=[], metavar="DIR",
                   help="a folder whose model files the page may load (repeat for more; "
                        "default: only the server's model and files uploaded in the page)")
    p.add_argument("--keep-results", type=int, default=RetentionLimits.tabs, metavar="N",
                   help="tabs whose results (samples, codes) the server keeps at once (default "
                        f"{RetentionLimits.tabs}); older tabs are asked to sample again")
    p.add_argument("--idle-minutes", type=float, default=RetentionLimits.idle_seconds / 60,
                   help="release a tab's results after this long unused (default "
                        f"{RetentionLimits.idle_seconds / 60:g})")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve the app until interrupted (Ctrl-C)."""
    if importlib.util.find_spec("gradio") is None:
        raise CliError(INSTALL)
    if args.max_pixels < 4:
        raise CliError("--max-pixels must be at least 4")
    if args.keep_results < 1 or not args.idle_minutes > 0:
        raise CliError("--keep-results must be at least 1 and --idle-minutes above 0")
    from srflow.app.server import serve
    from srflow.app.session import AppError

    limits = RetentionLimits(tabs=args.keep_results, idle_seconds=args.idle_minutes * 60)
    try:
        serve(args.model, host=args.host, port=args.port, device=args.device,
              max_pixels=args.max_pixels, models_dirs=args.models_dir, limits=limits,
              announce=lambda line: print(line, flush=True))
    except AppError as exc:
        raise CliError(str(exc)) from None
    return 0
