"""What the server keeps for its tabs, and for how long: bounded whatever the load.

A tab's results (samples, latent codes, the prepared conditioning that makes redraws quick)
take about 180 MB for a 64x64 photo and GBs at the 512x512 limit. The page's framework keeps a
tab's state for an hour after the tab closes, and forever for a client that never closes, so
a server that kept every tab's results grew by the results of every visit (measured:
docs/app.md, "Under load"). Here the results of the most recently active tabs only are kept;
older ones, idle ones and closed ones are released (the tab is told to sample again), their
work is stopped and their downloads deleted. Downloads live in one folder per server,
bounded in size, removed at shutdown; folders left by a killed server are removed at the
next start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from srflow.app.session import Session

#: Prefix of a server's temporary folder: ``srflow-app-PID-...``.
PREFIX = "srflow-app-"


@dataclass(frozen=True)
class RetentionLimits:
    """How much the server keeps.

    Attributes:
        tabs: tabs whose results are kept (the most recently active ones).
        idle_seconds: results of a tab idle this long are released.
        disk_bytes: downloads on disk, all tabs together: before a tab writes a gallery,
            the oldest other tabs' downloads are deleted until they take at most half of it
            (the other half is for the new gallery).
    """

    tabs: int = 4
    idle_seconds: float = 1800.0
    disk_bytes: int = 512 * 2**20


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_folders(parent: Path) -> list[Path]:
    """Remove the temporary folders of servers that no longer run (killed before their own
    cleanup); returns them."""
    removed = []
    for folder in parent.glob(f"{PREFIX}*"):
        pid = folder.name[len(PREFIX) :].split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Keeper:
    """The server's record of tabs with results, and their downloads.

    Args:
        limits: what to keep.
        parent: where the server's temporary folder goes (default: the system's).
    """

    def __init__(self, limits: RetentionLimits | None = None, parent: Path | None = None) -> None:
        self.limits = limits or RetentionLimits()
        parent = Path(parent or tempfile.gettempdir())
        remove_stale_folders(parent)
        self.root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
        self._tabs: OrderedDict[int, tuple[Session, float]] = OrderedDict()  # oldest first
        self._by_key: dict[str, Session] = {}
        self._downloads: OrderedDict[int, Path] = OrderedDict()  # oldest first
        self._lock = threading.RLock()

    def keep(self, session: Session, key: str | None = None) -> None:
        """``session`` has results now (or just used them): keep them; release those of the
        tabs beyond :attr:`RetentionLimits.tabs` (least recently active first) and of idle
        tabs."""
        now = time.monotonic()
        with self._lock:
            session.released = None
            if key:
                session.key = key
                self._by_key[key] = session
            self._tabs[id(session)] = (session, now)
            self._tabs.move_to_end(id(session))
            for other, used in list(self._tabs.values()):
                if other is session:
                    continue
                if len(self._tabs) > self.limits.tabs:
                    self.release(other, "the server keeps the results of "
                                        f"{self.limits.tabs} tab(s); other tabs were used since")
                elif now - used > self.limits.idle_seconds:
                    minutes = self.limits.idle_seconds / 60
                    self.release(other, f"unused for more than {minutes:g} minutes")

    def release(self, session: Session, why: str) -> None:
        """Let go of a tab's results and downloads."""
        with self._lock:
            session.release(why)
            self._tabs.pop(id(session), None)
            folder = self._downloads.pop(id(session), None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self, key: str) -> None:
        """The tab with page session id ``key`` closed (or its client went away): stop its
        work and release everything, its input image too."""
        with self._lock:
            session = self._by_key.pop(key, None)
        if session is not None:
            self.forget(session)

    def forget(self, session: Session) -> None:
        """The page dropped ``session`` (closed, or expired): release everything."""
        self.release(session, "the tab was closed")
        session.image = None
        with self._lock:
            if session.key is not None:
                self._by_key.pop(session.key, None)

    def downloads_folder(self, session: Session) -> Path:
        """A new, empty folder for ``session``'s downloads (its previous one is deleted), once
        the other tabs' oldest downloads made room within
        :attr:`RetentionLimits.disk_bytes`."""
        with self._lock:
            previous = self._downloads.pop(id(session), None)
            if previous is not None:
                shutil.rmtree(previous, ignore_errors=True)
            while self._downloads and sum(map(_size, self._downloads.values())) > (
                self.limits.disk_bytes // 2
            ):
                _, oldest = self._downloads.popitem(last=False)
                shutil.rmtree(oldest, ignore_errors=True)
            folder = self.root / "downloads" / uuid.uuid4().hex
            folder.mkdir(parents=True)
            self._downloads[id(session)] = folder
            return folder

    @property
    def kept(self) -> int:
        """Tabs whose results are kept now."""
        return len(self._tabs)

    def shutdown(self) -> None:
        """Delete the server's temporary folder."""
        shutil.rmtree(self.root, ignore_errors=True)
