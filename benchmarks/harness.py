"""Benchmark helpers: run a case in a fresh process, report wall time and peak memory.

Peak memory on the CPU is the child's peak resident set size (``ru_maxrss``) minus its
resident size just before the timed call, so each case starts from a clean process. On CUDA it
is ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def current_rss_mb() -> float:
    """Resident set size of this process now (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(fn: Callable[[], object], device: str) -> dict[str, float]:
    """Time one call of ``fn`` and its peak memory (MB) above the current level."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = current_rss_mb()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        return {"seconds": time.perf_counter() - start, "peak_mb": peak}
    seconds = time.perf_counter() - start
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # process_peak_mb: the whole process, model included
    return {"seconds": seconds, "peak_mb": process_peak - base, "process_peak_mb": process_peak}


def run_case_in_subprocess(script: Path, case: str, extra: list[str]) -> dict[str, float]:
    """Run ``script --case CASE`` in a fresh interpreter; it prints one JSON line last."""
    out = subprocess.run(
        [sys.executable, str(script), "--case", case, *extra],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_description(device: str) -> str:
    """One line naming the machine the numbers come from."""
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    cores = torch.get_num_threads()
    cpu = _cpu_model() or platform.processor() or platform.machine()
    return f"CPU {cpu}, {cores} threads (torch {torch.__version__})"


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), or ''."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


#: A section's hand-written analysis: kept when a script rewrites the section's table.
NOTES = "\n### Notes\n"


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of RESULTS.md; its ``### Notes``
    subsection, if any, stays (after the new body)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    marker = f"## {title}\n"
    if marker in text:
        head, rest = text.split(marker, 1)
        tail = rest.split("\n## ", 1)
        notes = tail[0][tail[0].index(NOTES) :] if NOTES in tail[0] else ""
        body = body.rstrip("\n") + "\n" + notes.rstrip("\n") + "\n" if notes else body
        text = head + marker + body + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + marker + body
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")
