"""Atomic file writing: a temporary file in the same folder, then a rename.

An interrupted write never leaves a half-written file under the final name, and the finished
file gets the permissions a plain ``open()`` would give it (``0o666`` less the umask) rather
than the private ``0o600`` of temporary files. Temporary names are ``.NAME.PID.XXXXXXXX.tmp``
(``NAME`` shortened so that the whole stays within the 255 bytes a file name may have): one
left by a process that was killed can be told from one still being written
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "atomic_path", "new_file_mode", "remove_stale_temporaries"]

#: A name may have this many bytes (ext4, APFS, NTFS: 255).
NAME_MAX = 255
#: ``.NAME.PID.XXXXXXXX.tmp``: what :func:`atomic_path` names its temporary files.
TEMPORARY = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp$")


def new_file_mode() -> int:
    """The permissions ``open()`` gives a new file: ``0o666`` less the umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``.

    For writers that take a file name (e.g. safetensors). On an exception the temporary file
    is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pid = f".{os.getpid()}."
    room = NAME_MAX - len(pid) - len(".XXXXXXXX.tmp") - 1
    short = os.fsencode(path.name)[:room].decode(errors="ignore")
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{short}{pid}", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, new_file_mode())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; on success flush, sync and rename."""
    with atomic_path(path) as temporary, open(temporary, mode, **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or not ours to ask: leave its file
    return True


def remove_stale_temporaries(folder: Path, recursive: bool = False) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` under ``folder`` whose writing process
    no longer runs (it was killed before its rename); returns them. Files of running processes
    and every other file are left alone."""
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp"):
        match = TEMPORARY.match(path.name)
        if match and path.is_file() and not _alive(int(match[1])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
