"""Wall time of ``srflow sr`` with 1 and with all threads, on an idle and on a loaded machine.

    python benchmarks/threads.py [--size 64] [--samples 4] [--repeats 3]

The load is one busy process per core (pure-Python loops). Each cell is the median wall time of
``--repeats`` runs of ``srflow sr`` (embedded model, one LR image of ``--size`` pixels,
``--samples`` samples at temperature 0.8) in a fresh process, its threads set by
``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _spin(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


def _time(image: Path, out: Path, threads: int, samples: int, repeats: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "srflow.cli.main", "sr", str(image), "-o", str(out),
               "-n", str(samples), "-t", "0.8"]  # fmt: skip
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "lr.png"
        smooth = rng.random((args.size // 8, args.size // 8, 3))
        big = np.kron(smooth, np.ones((8, 8, 1)))  # a smooth, photo-like input
        Image.fromarray((big * 255).astype(np.uint8)).save(image)
        print(f"| machine load | 1 thread | {cores} threads | ratio {cores}/1 |")
        print("|---|---|---|---|")
        for busy in (0, cores):
            stop = multiprocessing.Event()
            spinners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(busy)]
            for s in spinners:
                s.start()
            try:
                one = _time(image, Path(tmp) / "out", 1, args.samples, args.repeats)
                all_ = _time(image, Path(tmp) / "out", cores, args.samples, args.repeats)
            finally:
                stop.set()
                for s in spinners:
                    s.join()
            label = "idle" if not busy else f"{busy} busy processes"
            print(f"| {label} | {one:.1f} s | {all_:.1f} s | {all_ / one:.2f} |")


if __name__ == "__main__":
    main()
