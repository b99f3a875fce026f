"""The data folder's lock file (Prometheus ``tsdb/fileutil`` flock on ``<data>/lock``).

``flock`` locks belong to an open file description, so a second DB on the same folder is
refused even inside the same process, and the kernel drops the lock when a process dies
(a ``kill -9`` never leaves a stale lock behind).
"""

from __future__ import annotations

import fcntl
import os

from signalfire.errors import LockedError


class DirLock:
    """An exclusive, non-blocking lock on ``<path>/lock``; ``release`` is idempotent."""

    def __init__(self, path: str) -> None:
        self.path = os.path.join(path, "lock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            raise LockedError(
                f"lock data directory {path}: held by another process or DB "
                f"(use no_lockfile / --storage.tsdb.no-lockfile to skip): {err}"
            ) from err
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
