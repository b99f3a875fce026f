"""Durability helpers shared by the WAL, blocks, tombstones and snapshots."""

from __future__ import annotations

import os


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in the directory ``path`` durable (its entry is
    written to disk only when the directory itself is fsynced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["fsync_dir"]
