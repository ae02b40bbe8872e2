"""The explorer app in a real headless browser: ``srflow app`` with a tiny model, driven by
Playwright through the system Chromium. Takes the screenshots of docs/app.md (written there
when ``SRFLOW_APP_SCREENSHOTS=1``; ``SRFLOW_APP_MODEL`` names another model for them)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_browser import (
    SKIP_KEY,
    chromium,
    paint_stroke,
    proxy_trap,
    running_app,
    save_small_png,
    settle,
    shown_image,
    wait_text,
)
from srflow.app.images import REACHABLE_GREY
from srflow.checkpoints import save_model
from test_inference_api import tiny_model

BROWSER = chromium()
MISSING = [name for name in ("gradio", "playwright") if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"{SKIP_KEY}: {', '.join(MISSING)} not installed "
                                             "(pip install -e '.[app]')"),
    pytest.mark.skipif(BROWSER is None, reason=f"{SKIP_KEY}: no system chromium (apt-get "
                                               "install chromium, or set SRFLOW_CHROMIUM)"),
]  # fmt: skip
DOCS = Path(__file__).resolve().parents[1] / "docs" / "app"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut_lr.png"
MAX_PIXELS = 4096  # the server's limit in this test: the 48x48 photo fits, 80x80 does not
LR, SCALE = 48, 4


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app")
    photo = Image.open(EXAMPLE).convert("RGB").crop((32, 16, 32 + LR, 16 + LR))
    photo.save(root / "photo.png")
    photo.save(root / "photo_q20.jpg", quality=20)
    photo.resize((LR * SCALE, LR * SCALE), Image.BICUBIC).save(root / "style.png")
    Image.open(EXAMPLE).convert("RGB").crop((0, 0, 80, 80)).save(root / "large.png")
    Image.open(EXAMPLE).convert("RGB").crop((0, 0, 64, 64)).save(root / "largest.png")
    data = (root / "photo.png").read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    model = os.environ.get("SRFLOW_APP_MODEL")
    if model != "default":
        model = str(save_model(tiny_model(), root / "tiny.safetensors"))
    return {"root": root, "model": Path(model) if model != "default" else Path("")}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield chrome
        chrome.close()


def test_the_app_in_a_browser(files: dict[str, Path], browser, tmp_path: Path) -> None:
    shots = DOCS if os.environ.get("SRFLOW_APP_SCREENSHOTS") == "1" else tmp_path / "shots"
    model = ["--model", str(files["model"])] if str(files["model"]) not in ("", ".") else []
    root = files["root"]
    tiny = bool(model)
    args = [*model, "--device", "cpu", "--max-pixels", str(MAX_PIXELS)]
    with proxy_trap() as (proxy_env, outgoing), running_app(args, proxy_env) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        hosts: set[str] = set()
        page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
        page.goto(url)
        upload = page.locator("#upload input[type=file]")

        # bad uploads: a message in the page, and the server keeps going
        upload.set_input_files(str(root / "truncated.png"))
        wait_text(page, "#sample-status", "cannot read image")
        upload.set_input_files(str(root / "large.png"))
        wait_text(page, "#sample-status", f"at most {MAX_PIXELS} pixels")

        # long work shows progress and can be cancelled (16 samples of the largest input)
        upload.set_input_files(str(root / "largest.png"))
        wait_text(page, "#sample-status", "input: 64x64")
        page.fill("#count input[type=number]", "16")
        page.press("#count input[type=number]", "Enter")
        page.click("#sample")
        wait_text(page, "#sample-status", "sampling - ", poll_ms=20)  # the progress bar
        page.click("#cancel")
        wait_text(page, "#sample-status", "cancelled", timeout=60)

        # Sample: 3 images of 4x the photo's size, with their LR-PSNR
        upload.set_input_files(str(root / "photo.png"))
        wait_text(page, "#sample-status", f"input: {LR}x{LR}")
        page.fill("#noise-level textarea, #noise-level input", "0.02")  # not an NCSR model
        page.click("#sample")
        wait_text(page, "#sample-status", "a noise level: ")
        page.fill("#noise-level textarea, #noise-level input", "")
        page.fill("#temperature textarea, #temperature input", "0.5")
        page.fill("#count input[type=number]", "3")
        page.press("#count input[type=number]", "Enter")
        page.click("#sample")
        wait_text(page, "#sample-status", "3 samples", timeout=120)
        settle(page)
        sizes = page.eval_on_selector_all(
            "#gallery img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])"
        )
        assert sizes == [[LR * SCALE, LR * SCALE]] * 3
        assert page.locator("#gallery").inner_text().count(" dB") == 3
        assert "photo_sr_t0.50_s02\n.png" in page.locator("#downloads").inner_text()
        settle(page)
        save_small_png(page.screenshot(full_page=True), shots / "sample.png")

        # Explore: paint a stroke near the top left, redraw it; far pixels stay identical
        page.get_by_role("tab", name="Explore a region").click()
        page.wait_for_selector("#editor canvas")
        settle(page, 500)
        page.click("#choose input")
        page.get_by_role("option", name="s00").click()
        wait_text(page, "#explore-status", "exploring s00")
        settle(page)
        before = shown_image(page, "#current img")
        paint_stroke(page, "#editor", LR * SCALE, (0.1, 0.12), (0.25, 0.12))
        page.click("#redraw")
        wait_text(page, "#explore-status", "redraw 1", timeout=60)
        after = shown_image(page, "#current img")
        picture = shown_image(page, "#changed img")
        shown_changed = (picture == 255).all(axis=2)
        may_change = shown_changed | (picture == round(255 * REACHABLE_GREY)).all(axis=2)
        changed = (after != before).any(axis=2)
        assert changed.any(), "the redraw changed nothing"
        assert (changed == shown_changed).all(), "the page's changed pixels are not the real ones"
        assert not (changed & ~may_change).any(), "pixels outside the region changed"
        if tiny:  # its receptive field is small: the far corner cannot change
            assert not may_change[LR * 3 :, LR * 3 :].any()
            assert (after[LR * 3 :, LR * 3 :] == before[LR * 3 :, LR * 3 :]).all()
        settle(page)
        save_small_png(page.screenshot(full_page=True), shots / "explore.png")
        page.click("#undo")
        wait_text(page, "#explore-status", "undone")
        assert (shown_image(page, "#current img") == before).all()

        # Transfer: style from an HR image, restoration of a JPEG
        page.get_by_role("tab", name="Transfer / normalize / restore").click()
        page.locator("#style-source input[type=file]").set_input_files(str(root / "style.png"))
        page.click("#style")
        wait_text(page, "#transfer-status", "style transferred", timeout=60)
        page.wait_for_selector("#paste canvas")
        settle(page)
        paint_stroke(page, "#paste", LR * SCALE, (0.5, 0.5), (0.7, 0.6))
        page.click("#content")
        wait_text(page, "#transfer-status", "pasted content normalized", timeout=60)
        assert shown_image(page, "#transfer-out img").shape == (LR * SCALE, LR * SCALE, 3)
        page.locator("#degraded input[type=file]").set_input_files(str(root / "photo_q20.jpg"))
        page.click("#restore")
        wait_text(page, "#transfer-status", "restored", timeout=60)
        assert shown_image(page, "#transfer-out img").shape == (LR, LR, 3)
        settle(page)
        save_small_png(page.screenshot(full_page=True), shots / "transfer.png")

        # Model: what is loaded; a bad checkpoint path is one line in the page
        page.get_by_role("tab", name="Model").click()
        assert "parameters" in page.locator("#model-info").inner_text()
        settle(page)
        save_small_png(page.screenshot(full_page=True), shots / "model.png")
        # no server path can be typed: a bad uploaded model is one line naming the upload only
        (root / "notes.safetensors").write_text("not a model")
        page.locator("#model-upload input[type=file]").set_input_files(
            str(root / "notes.safetensors"))
        page.click("#load")
        wait_text(page, "#model-status", "notes.safetensors: not a readable safetensors file")
        assert str(root) not in page.locator("#model-status").inner_text()
        assert "/tmp" not in page.locator("#model-status").inner_text()

        # a second tab has its own session: it sees none of the first tab's samples
        other = browser.new_page()
        other.goto(url)
        other.get_by_role("tab", name="Explore a region").click()
        other.click("#redraw")
        wait_text(other, "#explore-status", "draw samples in the Sample panel first")
        other.close()
        page.close()
        assert outgoing() == 0, "the server made requests to the internet (through the proxy)"
    assert hosts == {url.split("/")[2]}, f"requests left localhost: {sorted(hosts)}"
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "explore.png", "model.png", "sample.png", "transfer.png"
    ]
    assert all(p.stat().st_size < 400_000 for p in shots.glob("*.png"))
    assert np.asarray(Image.open(shots / "sample.png")).size > 0
