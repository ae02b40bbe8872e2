"""Start the app: offline (no CDN fonts, no telemetry, no share link) and on localhost by
default."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from srflow.app.images import DEFAULT_MAX_PIXELS, MAX_FILE_SIZE
from srflow.app.models import ModelStore
from srflow.app.retention import Keeper, RetentionLimits
from srflow.app.session import AppError
from srflow.inference.allocator import serve_memory

logger = logging.getLogger(__name__)
#: How often the page tells the server it is still open: a closed tab's work is stopped and
#: its results released within about this time.
HEARTBEAT_SECONDS = 2

#: System fonts only: gradio's default theme would fetch web fonts.
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial",
                "sans-serif"]  # fmt: skip
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def offline_environment(temporary: Path) -> None:
    """Turn off gradio's telemetry and update checks, keep its files in ``temporary``, and
    notice a closed tab within seconds (before gradio is imported)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ["GRADIO_TEMP_DIR"] = str(temporary)
    os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", str(HEARTBEAT_SECONDS))


def example_images() -> list[Path]:
    """The example photos of a source checkout (``examples/``), if this is one."""
    folder = Path(__file__).resolve().parents[3] / "examples"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def serve(
    model: str | None = None, *, host: str = "127.0.0.1", port: int = 7860,
    device: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS,
    models_dirs: Sequence[str | Path] = (), limits: RetentionLimits | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:  # fmt: skip
    """Load the model, then serve the app until interrupted (Ctrl-C or SIGTERM); ``announce``
    is told (one line) which model and address, once the model is loaded. The server's
    temporary files are deleted when it stops.

    Raises:
        AppError: the model cannot be loaded.
        OSError: the port is taken.
    """
    keeper = Keeper(limits)
    try:
        _serve(model, host, port, device, max_pixels, models_dirs, keeper, announce)
    finally:
        keeper.shutdown()


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """SIGTERM ends the server as Ctrl-C does (so its temporary files are deleted)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _serve(
    model: str | None, host: str, port: int, device: str, max_pixels: int,
    models_dirs: Sequence[str | Path], keeper: Keeper,
    announce: Callable[[str], None] | None,
) -> None:  # fmt: skip
    offline_environment(keeper.root / "gradio")
    _stop_on_sigterm()
    serve_memory()  # few heaps for many worker threads: see srflow.inference.allocator
    import gradio as gr

    from srflow.app.ui import build

    for folder in models_dirs:
        if not Path(folder).is_dir():
            raise AppError(f"{folder}: no such folder (--models-dir)")
    store = ModelStore(model, device, models_dirs, keeper.root / "models")
    resolver = store.get()  # fail before serving when the model is unusable
    logger.info("model %s on %s", resolver.description, resolver.device)
    if announce is not None:
        announce(f"srflow app: {resolver.description} on {resolver.device}, "
                 f"http://{host}:{port} (Ctrl-C stops it)")  # fmt: skip
    page = build(store, max_pixels, example_images(), keeper)
    page.queue(default_concurrency_limit=1)
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)
    page.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
        show_error=False, max_file_size=MAX_FILE_SIZE, theme=theme, footer_links=["settings"],
        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
    )  # fmt: skip
