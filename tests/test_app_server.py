"""The app as a long-running server facing any client: what it keeps and for how long, which
files it opens, and what it accepts from the page (without a browser; the load test with a
real server is tests/test_app_load.py)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srflow.app import actions
from srflow.app.images import read_upload
from srflow.app.models import DEFAULT_LABEL, ModelStore
from srflow.app.retention import PREFIX, Keeper, RetentionLimits, remove_stale_folders
from srflow.app.session import AppError, Session
from srflow.checkpoints import save_model
from srflow.data.image_io import image_from_pil
from srflow.inference.pipeline import SuperResolver
from test_inference_api import tiny_model


@pytest.fixture(scope="module")
def resolver() -> SuperResolver:
    return SuperResolver(tiny_model())


def _session(seed: int) -> Session:
    photo = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), np.uint8))
    return Session(image=image_from_pil(photo), name=f"photo{seed}")


def _sampled(resolver: SuperResolver, seed: int) -> Session:
    session = _session(seed)
    actions.draw_samples(session, resolver, 0.3, 2, seed, lambda *_: None)
    return session


def test_results_of_the_least_recent_tabs_and_idle_tabs_are_released(
    resolver: SuperResolver, tmp_path: Path
) -> None:
    keeper = Keeper(RetentionLimits(tabs=2, idle_seconds=3600), parent=tmp_path)
    tabs = [_sampled(resolver, seed) for seed in range(3)]
    for tab in tabs:
        keeper.keep(tab)
    assert keeper.kept == 2 and tabs[0].samples is None and tabs[0].codes == []
    assert tabs[1].samples is not None and tabs[2].samples is not None
    with pytest.raises(AppError, match="samples were released .*server keeps the results of 2"):
        actions.start_exploring(tabs[0], resolver, 0)
    assert tabs[0].image is not None  # the input stays: sampling again needs no new upload
    keeper.keep(tabs[0])  # sampling again makes it the most recent
    assert tabs[0].released is None and tabs[1].released is not None

    idle = Keeper(RetentionLimits(tabs=10, idle_seconds=0.05), parent=tmp_path)
    old, new = _sampled(resolver, 5), _sampled(resolver, 6)
    idle.keep(old)
    time.sleep(0.1)
    idle.keep(new)
    assert old.samples is None and "unused for more than" in str(old.released)
    assert new.samples is not None


def test_a_closed_tab_stops_its_work_and_lets_go_of_everything(
    resolver: SuperResolver, tmp_path: Path
) -> None:
    keeper = Keeper(parent=tmp_path)
    tab = _sampled(resolver, 1)
    keeper.keep(tab, key="abc")
    folder = keeper.downloads_folder(tab)
    actions.write_samples(tab, folder)
    tab.busy = True  # work running: it stops at its next progress report
    keeper.close("abc")
    assert tab.cancel and tab.samples is None and tab.image is None
    assert not folder.exists() and keeper.kept == 0
    keeper.close("abc")  # twice, or an unknown tab: nothing happens


def test_downloads_stay_within_their_disk_bound_and_go_at_shutdown(
    resolver: SuperResolver, tmp_path: Path
) -> None:
    tabs = [_sampled(resolver, seed) for seed in range(4)]
    one = actions.write_samples(tabs[0], tmp_path / "one")
    gallery = sum(p.stat().st_size for p in one)  # about the size of each tab's downloads
    keeper = Keeper(RetentionLimits(disk_bytes=5 * gallery), parent=tmp_path)
    folders = []
    for tab in tabs:
        folders.append(keeper.downloads_folder(tab))
        actions.write_samples(tab, folders[-1])
    first_again = keeper.downloads_folder(tabs[0])  # a new gallery replaces the old one
    assert not folders[0].exists() and first_again.exists()
    total = sum(p.stat().st_size for p in (keeper.root / "downloads").rglob("*") if p.is_file())
    assert total <= 5 * gallery and folders[-1].exists()
    assert not folders[1].exists()  # the oldest went first
    keeper.shutdown()
    assert not keeper.root.exists()


def test_folders_of_killed_servers_are_removed_at_the_next_start(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f"{PREFIX}{dead}-x1"
    (stale / "downloads").mkdir(parents=True)
    live = tmp_path / f"{PREFIX}{os.getpid()}-x2"
    live.mkdir()
    assert remove_stale_folders(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


def test_the_model_panel_opens_only_allowed_files_and_shows_no_paths(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    path = save_model(tiny_model(), models / "sub" / "tiny.safetensors")
    (tmp_path / "secret.safetensors").write_bytes(path.read_bytes())
    store = ModelStore(str(path), device="cpu", folders=[models], uploads=tmp_path / "up")
    assert store.choices() == [DEFAULT_LABEL, "sub/tiny.safetensors"]
    one = store.get("sub/tiny.safetensors")
    assert store.get("sub/../sub/./tiny.safetensors") is one is store.get(None)  # one copy
    refusals = set()
    for outside in ("../secret.safetensors", str(tmp_path / "secret.safetensors"),
                    "/etc/shadow", "../missing.safetensors", "sub"):  # fmt: skip
        with pytest.raises(AppError) as refused:
            store.get(outside)
        refusals.add(str(refused.value).replace(repr(outside), "NAME"))
        assert str(tmp_path) not in str(refused.value).replace(repr(outside), "")
    assert len(refusals) == 1  # the same words whether or not the file exists
    key = store.add_upload(path, "mine.safetensors")
    again = store.add_upload(tmp_path / "secret.safetensors", "again.safetensors")
    assert store.get(key) is store.get(again)  # the same bytes uploaded twice: one model
    assert len(list((tmp_path / "up").iterdir())) == 1
    assert store.label(key) == "mine.safetensors" and "tiny" in store.label(None)
    nothing = ModelStore(str(path), device="cpu")
    with pytest.raises(AppError, match="start it with --models-dir DIR"):
        nothing.get("tiny.safetensors")


def _png_header_only(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(bytes(4096))) + chunk(b"IEND", b""))
    return path


def test_uploads_are_checked_from_their_header_and_named_without_server_paths(
    tmp_path: Path,
) -> None:
    huge = _png_header_only(tmp_path / "huge.png", 13000, 13000)
    start = time.perf_counter()
    with pytest.raises(AppError, match=r"^huge\.png is 13000x13000 pixels; this app takes"):
        read_upload(huge)
    assert time.perf_counter() - start < 1
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(AppError, match=r"^dot\.png is 1x1 pixels; this model needs at least 8x8"):
        read_upload(tmp_path / "dot.png", min_side=8)
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(AppError) as bad:
        read_upload(tmp_path / "text.png")
    assert str(bad.value).startswith("text.png: cannot read image") and str(tmp_path) not in str(
        bad.value)
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue", "green")]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    assert read_upload(tmp_path / "moving.gif").frames == 3


@pytest.mark.skipif(sys.modules.get("gradio") is None and __import__("importlib").util.find_spec(
    "gradio") is None, reason="gradio not installed")
def test_every_value_from_the_page_is_checked_as_the_cli_checks_it() -> None:
    from srflow.app.handlers import count_of, seed_of, temperature_of

    assert seed_of(None) == 0 and seed_of(7) == 7 and seed_of(7.0) == 7
    for bad in (1e30, -1, 2.5, "x", float("nan"), 2**63):
        with pytest.raises(AppError, match="seed"):
            seed_of(bad)
    assert temperature_of(0.8) == 0.8
    for bad in (-0.1, float("inf"), 1e9, None, "hot"):
        with pytest.raises(AppError, match="temperature"):
            temperature_of(bad)
    assert count_of(3) == 3 and count_of(3.0) == 3
    for bad in (0, 17, 2.5, None, "many", float("nan")):
        with pytest.raises(AppError, match="number of samples"):
            count_of(bad)
