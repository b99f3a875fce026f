"""Hot backups: a consistent copy of a DB while it is being written to.

The view is taken in one short section under the DB's write and head locks (no commit or
delete in flight): the block list with each block's tombstones and meta, and the head's
read plan. So the backup reflects exactly the commits and deletes before it. Files are
linked and the head block written after the locks are released, while appends go on.
Blocks are immutable except for their tombstones and meta.json, which are written from
the captured state rather than linked, so a later delete in the live DB cannot change the
backup. The result is a data folder that ``open_db`` opens like any other.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from signalfire.errors import BadDataError
from signalfire.tsdb.block import write_block
from signalfire.tsdb.block_meta import write_meta
from signalfire.tsdb.tombstones import Tombstones, write_tombstones
from signalfire.util.files import fsync_dir

if TYPE_CHECKING:
    from signalfire.tsdb.db import DB

_COPIED = {"tombstones", "meta.json"}


def _link_tree(src: str, dst: str) -> None:
    """Hard-link every file of ``src`` into ``dst`` (copy across devices); the mutable
    files (``_COPIED``) are left to the caller."""
    os.makedirs(dst)
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s):
            _link_tree(s, d)
        elif name in _COPIED or name.endswith(".tmp"):
            continue
        else:
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)


def write_snapshot(db: DB, dest: str, with_head: bool) -> None:
    """Write blocks (+ head) of ``db`` into ``dest``; the caller holds the compaction lock
    (no block comes or goes). Links blocks and copies the head under the DB lock (a
    commit boundary), then writes the head block with appends going on."""
    if os.path.exists(dest) and os.listdir(dest):
        raise BadDataError(f"snapshot: destination {dest} is not empty")
    os.makedirs(dest, exist_ok=True)
    h = db.head
    with h.write_lock, h.lock:
        blocks = [(b.dir, b.meta, Tombstones(dict(b.tombstones.items()))) for b in db.blocks]
        read = db.head_series_later(h.min_time, h.max_time) if with_head and h.num_samples else None
        mint, maxt = h.min_time, h.max_time + 1
    # Blocks cannot go away meanwhile: the caller holds the compaction lock.
    for src, meta, tomb in blocks:
        dst = Path(dest) / meta.ulid
        _link_tree(str(src), str(dst))
        write_tombstones(dst, tomb)
        write_meta(dst, meta)
    series = read() if read is not None else None  # decodes cut head chunks without the lock
    if series is not None and series.num_samples:
        write_block(Path(dest), series, min_time=mint, max_time=maxt)
    fsync_dir(dest)
