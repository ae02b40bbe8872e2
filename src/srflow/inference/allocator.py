"""Let the C allocator keep freed memory for the next tensor (glibc on Linux).

Sampling allocates and frees the same large activations (16-64 MB) for every flow step. By
default glibc serves each of them with a fresh ``mmap`` and unmaps it when freed, so every
step pays the kernel's page faults and zeroing again: the per-sample convolutions ran 2-3x
slower inside a decode than on their own. With ``mmap`` off for the heap and no trimming of
its top, freed blocks are reused. Measured (``benchmarks/RESULTS.md``, 2-core CPU, SRFlow DF2K
4x, batches of 4): 0.25 -> 0.20 s per sample at 64x64, 0.93 -> 0.73 s at 128x128; SRFlow-DA
4x 0.36 -> 0.25 s; the peak resident memory of a run stays within a few per cent (memory
freed after the peak is kept for reuse instead of going back to the system).

The ``srflow`` command calls :func:`keep_freed_memory` on start; library users may call it
themselves. A long-running server (``srflow app``) needs more: its work runs on many
threads, glibc gives each its own heap ("arena"), and each heap kept its peak for good, so
the server's memory grew with every thread that ever ran a job (measured: docs/app.md,
"Under load"). There the heaps are limited (:func:`serve_memory`) and the freed memory goes
back after each job (:func:`give_back_freed_memory`). None of these changes anything where
the platform is not glibc, when any ``MALLOC_*`` variable is set (the user's own tuning wins)
or when ``SRFLOW_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: ``mallopt`` parameters (glibc's ``malloc.h``).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
#: Largest ``M_TRIM_THRESHOLD`` (a C ``int``): free memory above it at the heap's top goes back.
KEEP_AT_MOST = 2**31 - 1


def _tuning_wanted() -> bool:
    if sys.platform != "linux" or os.environ.get("SRFLOW_MALLOC") == "default":
        return False
    return not any(name.startswith("MALLOC_") for name in os.environ)


def keep_freed_memory() -> bool:
    """Tune glibc's ``malloc`` to reuse freed blocks (see the module's text).

    Returns:
        Whether the allocator was tuned (``False``: not glibc, or not wanted).
    """
    if not _tuning_wanted():
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_AT_MOST))


def _libc() -> ctypes.CDLL | None:
    if not _tuning_wanted():
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def serve_memory(arenas: int = 2) -> bool:
    """For a long-running server: at most ``arenas`` malloc heaps whatever the number of
    threads (call before the threads start). Returns whether it applied (glibc only)."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def give_back_freed_memory() -> None:
    """Return the freed memory at the top of every heap to the system (glibc's
    ``malloc_trim``; nothing elsewhere)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
