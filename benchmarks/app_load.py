"""The app as a server under sustained load: its resident memory over time.

Starts ``srflow app`` (the embedded model unless ``--model``), then runs ``--clients``
simulated users for ``--seconds``: each visit is a new session (a new ``gradio_client``
client) that uploads a photo, draws ``--samples`` samples and leaves. The server's resident
memory (``/proc/PID/status`` VmRSS) is read every ``--every`` seconds; the table printed at
the end (and the CSV of ``--csv``) is the curve of docs/app.md.

    python benchmarks/app_load.py --clients 8 --seconds 600 --csv rss.csv

Needs the ``app`` extra (gradio, which brings gradio_client).
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(args: list[str], timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """``python -m srflow app ARGS`` on a free port, once its page answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "srflow", "app", *args, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("srflow app exited")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("srflow app did not answer")


def visit(url: str, photo: Path, samples: int, seed: int) -> None:
    """One user: a new session uploads the photo, draws samples and leaves."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    try:
        client.predict(handle_file(str(photo)), api_name="/upload")
        client.predict("0.8", samples, seed, "", api_name="/sample")
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--every", type=float, default=10)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="LR photo side (pixels)")
    parser.add_argument("--model", help="model file (default: the embedded model)")
    parser.add_argument("--csv", type=Path, help="write the curve here")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="srflow-load-"))
    rng = np.random.default_rng(0)
    photo = folder / "photo.png"
    smooth = rng.random((args.size // 8, args.size // 8, 3)) * 255
    picture = Image.fromarray(smooth.astype(np.uint8))
    picture.resize((args.size, args.size), Image.BICUBIC).save(photo)
    proc, url = start_server(["--model", args.model] if args.model else [])
    done, errors, stop = [0], [0], threading.Event()

    def user(index: int) -> None:
        seed = index * 1000
        while not stop.is_set():
            try:
                visit(url, photo, args.samples, seed)
                done[0] += 1
            except Exception:  # noqa: BLE001 - counted and shown in the table
                errors[0] += 1
            seed += 1

    rows = [(0.0, rss_mb(proc.pid), 0, 0)]
    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(args.clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while (elapsed := time.monotonic() - start) < args.seconds:
            time.sleep(min(args.every, max(0.0, args.seconds - elapsed)))
            rows.append((time.monotonic() - start, rss_mb(proc.pid), done[0], errors[0]))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        rows.append((time.monotonic() - start, rss_mb(proc.pid), done[0], errors[0]))
        time.sleep(5)
        rows.append((time.monotonic() - start, rss_mb(proc.pid), done[0], errors[0]))
        proc.terminate()
        proc.wait(timeout=30)
    print(f"srflow app, {args.clients} clients, {args.samples} samples of a {args.size}x"
          f"{args.size} photo per visit, {os.cpu_count()} CPUs")
    print("| s | RSS (MB) | visits | errors |\n|---|---|---|---|")
    for seconds, rss, visits, failed in rows:
        print(f"| {seconds:.0f} | {rss:.0f} | {visits} | {failed} |")
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["seconds", "rss_mb", "visits", "errors"])
            writer.writerows(rows)


if __name__ == "__main__":
    main()
