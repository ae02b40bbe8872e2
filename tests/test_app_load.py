"""The app as a server, over loopback: memory stays flat under sustained load, and work whose
client went away is stopped (a real ``srflow app`` process and ``gradio_client`` clients;
the 10-minute curve of docs/app.md is ``benchmarks/app_load.py``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_browser import running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="gradio not installed"),
]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _photo(path: Path, size: int, seed: int = 0) -> Path:
    coarse = np.random.default_rng(seed).random((size // 8, size // 8, 3)) * 255
    Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.BICUBIC).save(path)
    return path


def _visit(url: str, photo: Path, samples: int, seed: int) -> float:
    """One user in a new session: upload, sample, leave; returns the seconds it took."""
    from gradio_client import Client, handle_file

    start = time.monotonic()
    client = Client(url, verbose=False, download_files=False)
    try:
        client.predict(handle_file(str(photo)), api_name="/upload")
        client.predict("0.8", samples, seed, "", api_name="/sample")
    finally:
        client.close()
    return time.monotonic() - start


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_memory_is_flat_under_sustained_load(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png", 48)
    pids: list[int] = []
    with running_app(["--device", "cpu"], pids=pids) as url:  # the embedded model
        pid = pids[0]
        stop, visits, failures = threading.Event(), [0], []

        def user(index: int) -> None:
            seed = 1000 * index
            while not stop.is_set():
                try:
                    _visit(url, photo, 3, seed)
                    visits[0] += 1
                except Exception as exc:  # noqa: BLE001 - reported below
                    failures.append(repr(exc))
                seed += 1

        users = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(4)]
        for thread in users:
            thread.start()
        curve = []
        for _ in range(12):  # 60 s
            time.sleep(5)
            curve.append(_rss_mb(pid))
        stop.set()
        for thread in users:
            thread.join(timeout=120)
    assert not failures, failures[:3]
    assert visits[0] >= 12, visits
    # every visit left ~100 MB behind before (14 GB after 74 visits of 64x64 photos): now the
    # second half of the run sits where the first half did
    first, second = max(curve[:6]), max(curve[6:])
    assert second < first + 150, curve


def test_work_of_a_client_that_went_away_is_stopped(tmp_path: Path) -> None:
    big, small = _photo(tmp_path / "big.png", 256), _photo(tmp_path / "small.png", 32, 1)
    with running_app(["--device", "cpu"]) as url:
        _visit(url, small, 1, 0)  # warm: the model's first run
        alone = _visit(url, small, 1, 0)
        script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                  f"from test_app_load import _visit; _visit({url!r}, {str(big)!r}, 16, 0)")
        leaving = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(6)  # uploaded, and sampling (16 samples of 256x256 take far longer)
        leaving.kill()
        leaving.wait()
        after = _visit(url, small, 1, 0)
    # the next user waits for the job's current sample and the server's notice of the
    # departure (a heartbeat every 2 s), not for the rest of the 16 samples
    assert after < alone + 10, (alone, after)
