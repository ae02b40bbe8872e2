"""``srflow sr``, ``srflow eval`` and ``srflow train`` as torchrun jobs of 2 CPU workers
(gloo): the same files as one process, and a worker killed mid-run (``--max-restarts 1``)
loses nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file
from skimage import data as skimage_data

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)"),
]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "retina", "immunohistochemistry")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _photos(folder: Path, side: int) -> Path:
    """Real photographs (scikit-image's), ``side`` pixels wide, of different heights."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(PHOTOS):
        image = np.asarray(getattr(skimage_data, name)())[:, :, :3]
        step = max(1, min(image.shape[:2]) // (side + 8 * index))
        crop = image[::step, ::step][: side - 8 * (index % 3), :side]
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{name}.png")
    return folder


def _single(*args: str) -> None:
    """Run one srflow process; 3 (outputs written, some flagged) counts as success."""
    done = subprocess.run([sys.executable, "-m", "srflow", "--threads", "1", *args],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode in (0, 3), done.stdout + done.stderr


def _torchrun(*args: str, restarts: int = 0) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
            "--max-restarts", str(restarts), "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"127.0.0.1:{_port()}", "-m", "srflow", "--threads", "1",
            *args]  # fmt: skip


def _workers_of(agent: int) -> list[int]:
    """Process ids of the torchrun agent's children (its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == agent:
                found.append(int(entry.name))
    return found


def _run_and_kill_one(command: list[str], started: Callable[[], bool]) -> str:
    """Run a torchrun job, SIGKILL one of its workers once ``started()``; its output."""
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not started():
        assert job.poll() is None and time.monotonic() < deadline, "the job ended before the kill"
        time.sleep(0.05)
    workers = _workers_of(job.pid)
    assert workers, "no worker to kill"
    os.kill(workers[-1], signal.SIGKILL)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out
    return out


def _same_files(one: Path, other: Path, pattern: str = "*.png") -> int:
    names = sorted(p.name for p in one.glob(pattern))
    assert names and names == sorted(p.name for p in other.glob(pattern))
    for name in names:
        assert (one / name).read_bytes() == (other / name).read_bytes(), name
    return len(names)


@pytest.fixture(scope="module")
def lr_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _photos(tmp_path_factory.mktemp("lr") / "in", 64)


def test_sr_with_two_workers_writes_the_files_one_process_writes(
    lr_photos: Path, tmp_path: Path
) -> None:
    options = ("-n", "2", "-t", "0.5", "0.8")
    _single("sr", str(lr_photos), "-o", str(tmp_path / "one"), *options)
    job = subprocess.run(_torchrun("sr", str(lr_photos), "-o", str(tmp_path / "two"), *options),
                         capture_output=True, text=True)  # fmt: skip
    assert job.returncode == 0, job.stdout + job.stderr
    done = [int(line.split(": ")[1].split()[0]) for line in job.stdout.splitlines()
            if "image(s) super-resolved" in line and line.startswith("worker ")]  # fmt: skip
    assert sorted(done) == [3, 4], job.stdout  # each worker did its share
    assert _same_files(tmp_path / "one", tmp_path / "two") == 4 * len(PHOTOS)


def test_sr_job_completes_when_a_worker_is_killed(lr_photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "job"
    options = ("-n", "6", "-t", "0.7")
    log = _run_and_kill_one(_torchrun("sr", str(lr_photos), "-o", str(out), *options,
                                      restarts=1),
                            lambda: len(list(out.glob("*.png"))) >= 6)  # fmt: skip
    _single("sr", str(lr_photos), "-o", str(tmp_path / "one"), *options)
    assert _same_files(tmp_path / "one", out) == 6 * len(PHOTOS)
    assert "skipped (--skip-existing)" in log  # the restart kept what was written
    assert not list(out.glob(".*.tmp"))


@pytest.fixture(scope="module")
def hr_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _photos(tmp_path_factory.mktemp("hr") / "hr", 112)


def test_eval_with_two_workers_writes_the_tables_one_process_writes(
    hr_photos: Path, tmp_path: Path
) -> None:
    options = ("--hr", str(hr_photos), "--samples", "2", "-t", "0.6", "--no-plots")
    _single("eval", *options, "-o", str(tmp_path / "one"))
    job = subprocess.run(_torchrun("eval", *options, "-o", str(tmp_path / "two")),
                         capture_output=True, text=True)  # fmt: skip
    assert job.returncode == 0, job.stdout + job.stderr
    assert "by 2 workers" in job.stdout
    for table in ("per_image.csv", "summary.csv"):
        assert (tmp_path / "one" / table).read_bytes() == (tmp_path / "two" / table).read_bytes()


def test_eval_job_completes_when_a_worker_is_killed(hr_photos: Path, tmp_path: Path) -> None:
    options = ("--hr", str(hr_photos), "--samples", "3", "-t", "0.6", "--no-plots")
    out = tmp_path / "job"
    log = _run_and_kill_one(_torchrun("eval", *options, "-o", str(out), restarts=1),
                            lambda: len(list((out / "rows").glob("*.json"))) >= 3)  # fmt: skip
    _single("eval", *options, "-o", str(tmp_path / "one"))
    assert "already scored by this command" in log
    for table in ("per_image.csv", "summary.csv"):
        assert (tmp_path / "one" / table).read_bytes() == (out / table).read_bytes()


def test_training_killed_and_restarted_ends_with_the_uninterrupted_weights(
    tmp_path: Path,
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(skimage_data, name)()).save(photos / f"{name}.png")
    options = ("train", "train_tiny", "--no-progress", "--set", f"data.train_hr={photos}",
               "--set", "data.val_hr=null", "--set", "train.steps=24",
               "--set", "train.checkpoint_every=4")  # fmt: skip
    whole = subprocess.run(_torchrun(*options, "--out", str(tmp_path / "whole")),
                           capture_output=True, text=True)  # fmt: skip
    assert whole.returncode == 0, whole.stdout + whole.stderr
    run = tmp_path / "killed"
    eighth = run / "checkpoints" / "step_00000008.pt"
    log = _run_and_kill_one(_torchrun(*options, "--out", str(run), restarts=1), eighth.is_file)
    assert "resuming" in log
    expected = load_file(tmp_path / "whole" / "model.safetensors")
    got = load_file(run / "model.safetensors")
    assert expected.keys() == got.keys()
    assert all(bool((expected[k] == got[k]).all()) for k in expected)
