"""Start the app: offline (no CDN fonts, no telemetry, no share link) and on localhost by
default."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from srflow.app.images import DEFAULT_MAX_PIXELS, MAX_FILE_SIZE
from srflow.app.models import ModelStore

logger = logging.getLogger(__name__)

#: System fonts only: gradio's default theme would fetch web fonts.
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial",
                "sans-serif"]  # fmt: skip
SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def offline_environment() -> None:
    """Turn off gradio's telemetry and update checks (before gradio is imported)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def example_images() -> list[Path]:
    """The example photos of a source checkout (``examples/``), if this is one."""
    folder = Path(__file__).resolve().parents[3] / "examples"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def serve(
    model: str | None = None, *, host: str = "127.0.0.1", port: int = 7860,
    device: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS,
    announce: Callable[[str], None] | None = None,
) -> None:  # fmt: skip
    """Load the model, then serve the app until interrupted; ``announce`` is told (one line)
    which model and address, once the model is loaded.

    Raises:
        AppError: the model cannot be loaded.
        OSError: the port is taken.
    """
    offline_environment()
    import gradio as gr

    from srflow.app.ui import build

    store = ModelStore(model, device)
    resolver = store.get()  # fail before serving when the model is unusable
    logger.info("model %s on %s", resolver.description, resolver.device)
    if announce is not None:
        announce(f"srflow app: {resolver.description} on {resolver.device}, "
                 f"http://{host}:{port} (Ctrl-C stops it)")  # fmt: skip
    page = build(store, max_pixels, example_images())
    page.queue(default_concurrency_limit=1)
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)
    page.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
        show_error=False, max_file_size=MAX_FILE_SIZE, theme=theme, footer_links=["settings"],
        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
    )  # fmt: skip
