"""Helpers of the browser test (tests/test_app_browser.py): start ``srflow app`` in a
subprocess, find the system Chromium, read images shown in the page, paint on an editor."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Every skip reason of the browser test holds this, so that CI turns the skip into a failure.
SKIP_KEY = "app browser test"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium() -> str | None:
    """The system Chromium (``SRFLOW_CHROMIUM`` overrides the search)."""
    if os.environ.get("SRFLOW_CHROMIUM"):
        return os.environ["SRFLOW_CHROMIUM"]
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 90.0,
    pids: list[int] | None = None,
) -> Iterator[str]:  # fmt: skip
    """Run ``python -m srflow app ARGS --port N`` (with ``env`` added to the environment)
    until the page answers; yields its URL (and appends the server's process id to
    ``pids``). The server is stopped (by its process id) when the block ends.
    """
    port = free_port()
    command = [sys.executable, "-m", "srflow", "app", *args, "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})})  # fmt: skip
    if pids is not None:
        pids.append(proc.pid)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                raise RuntimeError(f"srflow app exited: {output}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"srflow app did not answer within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def proxy_trap() -> Iterator[tuple[dict[str, str], Any]]:
    """Proxy settings that send every outgoing HTTP(S) request of a process to a local
    socket, and a function counting the connections that socket received."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    address = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {name: address for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                      "https_proxy", "all_proxy")}  # fmt: skip
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    received: list[Any] = []

    def connections() -> int:
        while True:
            try:
                received.append(listener.accept()[0])
            except BlockingIOError:
                return len(received)

    try:
        yield env, connections
    finally:
        for conn in received:
            conn.close()
        listener.close()


def shown_image(page: Any, selector: str) -> np.ndarray:
    """The pixels of the ``<img>`` matching ``selector``, fetched from the server."""
    src = page.locator(selector).first.get_attribute("src")
    data = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _canvas_pixels(page: Any, editor: str) -> np.ndarray:
    """What the editor's canvas shows on screen (the brush strokes included)."""
    png = page.locator(f"{editor} canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def paint_stroke(page: Any, editor: str, size: int, start: tuple[float, float],
                 end: tuple[float, float], attempts: int = 3) -> None:  # fmt: skip
    """Drag the brush across the editor's image from ``start`` to ``end`` (fractions of the
    image, which is ``size`` pixels wide and shown centered at the editor's zoom), until the
    canvas shows the stroke: an editor still drawing its new picture (under load) can miss
    one; a stroke never shown in ``attempts`` tries fails."""
    for _ in range(attempts):
        before = _canvas_pixels(page, editor)
        canvas = page.locator(f"{editor} canvas").first
        box = canvas.bounding_box()
        zoom_text = page.locator(editor).get_by_text(re.compile(r"^\d+%$")).first.inner_text()
        shown = size * int(zoom_text.rstrip("%")) / 100
        x0 = box["x"] + box["width"] / 2 - shown / 2
        y0 = box["y"] + box["height"] / 2 - shown / 2
        page.mouse.move(x0 + start[0] * shown, y0 + start[1] * shown)
        page.mouse.down()
        for t in np.linspace(0, 1, 4):  # each move redraws the canvas (slow without a GPU)
            x = start[0] + t * (end[0] - start[0])
            y = start[1] + t * (end[1] - start[1])
            page.mouse.move(x0 + x * shown, y0 + y * shown, steps=2)
        page.mouse.up()
        # the stroke's neighbourhood in canvas pixels: it must change there, and only there
        left, right = sorted((x0 + start[0] * shown - box["x"], x0 + end[0] * shown - box["x"]))
        top, bottom = sorted((y0 + start[1] * shown - box["y"], y0 + end[1] * shown - box["y"]))
        near = np.zeros(before.shape[:2], dtype=bool)
        margin = 30  # the brush's radius and more
        rows = slice(max(int(top) - margin, 0), int(bottom) + margin)
        near[rows, max(int(left) - margin, 0) : int(right) + margin] = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            page.wait_for_timeout(250)
            after = _canvas_pixels(page, editor)
            if after.shape != before.shape:
                break  # the editor was laid out anew: paint again
            changed = np.abs(after - before).max(axis=2) > 64
            if (changed & near).sum() > 50 and not (changed & ~near).any():
                page.wait_for_timeout(500)  # the editor hands its new layers over asynchronously
                return
    raise AssertionError(f"{editor} did not show the brush stroke after {attempts} attempts")


def save_small_png(png: bytes, path: Path) -> None:
    """Write a screenshot with a 128-colour palette (small files for the docs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=128).save(path, optimize=True)


def wait_text(
    page: Any, selector: str, text: str, timeout: float = 30, poll_ms: int = 200
) -> None:
    """Wait until the element's text contains ``text`` (failing with what it shows)."""
    locator = page.locator(selector)
    deadline = time.monotonic() + timeout
    while text not in locator.inner_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} shows {locator.inner_text()!r}, not {text!r}")
        page.wait_for_timeout(poll_ms)


SETTLED = """() => !document.querySelector('.eta-bar') && [...document.querySelectorAll('img')]
    .filter(i => i.getAttribute('src') && i.offsetParent !== null)
    .every(i => i.complete && i.naturalWidth > 0)"""


PENDING = """() => ({progress: [...document.querySelectorAll('.eta-bar')]
        .map(e => (e.closest('[id]') || {}).id),
    images: [...document.querySelectorAll('img')].filter(i => i.getAttribute('src')
        && i.offsetParent !== null && !(i.complete && i.naturalWidth > 0))
        .map(i => (i.closest('[id]') || {}).id + ' ' + i.src.slice(0, 60))})"""


def settle(page: Any, pause_ms: int = 1500) -> None:
    """Wait for the page's images to load and its editors to draw; close the toasts."""
    try:
        page.wait_for_function(SETTLED, polling=200, timeout=30_000)
    except Exception as exc:  # say what is still loading
        pending = page.evaluate(PENDING)
        raise AssertionError(f"the page did not settle: {pending}") from exc
    page.wait_for_timeout(pause_ms)
    page.evaluate("() => document.querySelectorAll('.toast-wrap').forEach(t => t.remove())")
