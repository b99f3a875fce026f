"""Read access to a data folder for the ``tsdb`` subcommands: blocks, their meta, their samples.

The CLI reads a folder the way promtool's ``tsdb.OpenDBReadOnly`` does: it lists the block
directories (named by ULID) and opens them without taking the folder's lock or replaying
anything into a writable head. Everything here goes through :mod:`signalfire.tsdb`'s public
names (``Block``, ``BlockMeta``, ``open_db``); nothing parses index or chunk files itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from signalfire.errors import NotFoundError, SignalfireError, StorageError
from signalfire.labels import Labels, Matcher
from signalfire.storage import SeriesSet

_CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def is_ulid(name: str) -> bool:
    """A block directory name: 26 Crockford base32 characters."""
    return len(name) == 26 and set(name.upper()) <= _CROCKFORD


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What ``tsdb list`` prints for one block. ``max_time`` is the meta's (exclusive) end."""

    ulid: str
    min_time: int
    max_time: int
    num_samples: int
    num_chunks: int
    num_series: int
    size: int
    path: Path


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                continue
    return total


def _meta_of(path: Path) -> Any:
    from signalfire.tsdb.block import Block

    return Block.open(path).meta


def _stat(meta: Any, name: str) -> int:
    stats = getattr(meta, "stats", None)
    if stats is not None and hasattr(stats, name):
        return int(getattr(stats, name))
    return int(getattr(meta, name, 0))


def block_info(path: Path) -> BlockInfo:
    """Meta and on-disk size of the block in ``path``; raises StorageError if it is unreadable."""
    try:
        meta = _meta_of(path)
    except SignalfireError:
        raise
    except Exception as err:  # a damaged block must name itself, not crash the listing
        raise StorageError(f"open block {path}: {err}") from err
    return BlockInfo(
        ulid=str(getattr(meta, "ulid", path.name)),
        min_time=int(meta.min_time),
        max_time=int(meta.max_time),
        num_samples=_stat(meta, "num_samples"),
        num_chunks=_stat(meta, "num_chunks"),
        num_series=_stat(meta, "num_series"),
        size=_dir_size(path),
        path=path,
    )


def check_dir(db_path: str | Path) -> Path:
    p = Path(db_path)
    if not p.is_dir():
        raise NotFoundError(f"open {db_path}: no such file or directory")
    return p


def list_blocks(db_path: str | Path) -> list[BlockInfo]:
    """The folder's blocks sorted by min time, as ``DBReadOnly.Blocks()`` returns them."""
    p = check_dir(db_path)
    dirs = [d for d in p.iterdir() if d.is_dir() and is_ulid(d.name) and (d / "meta.json").exists()]
    return sorted((block_info(d) for d in dirs), key=lambda b: (b.min_time, b.ulid))


def find_block(db_path: str | Path, block_id: str = "") -> BlockInfo:
    """The named block, or the last one created (largest ULID), like promtool's ``LastBlockID``."""
    blocks = list_blocks(db_path)
    if not blocks:
        raise NotFoundError(f"no blocks found in {db_path}")
    if not block_id:
        return max(blocks, key=lambda b: b.ulid)
    for b in blocks:
        if b.ulid == block_id:
            return b
    raise NotFoundError(f"block {block_id} not found")


@contextmanager
def block_querier(info: BlockInfo) -> Iterator[Any]:
    """A querier over one block's whole range; closed on exit."""
    from signalfire.tsdb.block import Block

    block = Block.open(info.path)
    q = block.querier(info.min_time, info.max_time)
    try:
        yield q
    finally:
        q.close()
        close = getattr(block, "close", None)
        if close is not None:
            close()


@contextmanager
def db_querier(db_path: str | Path, mint: int, maxt: int) -> Iterator[Any]:
    """A querier over the whole folder (blocks and any head data), read-only in spirit.

    The DB is opened without the lock file and closed on exit, so a dump never leaves a
    changed folder behind other than what opening a DB itself does (the WAL is replayed,
    not truncated).
    """
    from signalfire.tsdb import DBOptions, open_db

    p = check_dir(db_path)
    db = open_db(p, DBOptions(no_lockfile=True, enable_compaction=False, retention_ms=0))
    try:
        q = db.querier(mint, maxt)
        try:
            yield q
        finally:
            q.close()
    finally:
        db.close()


def copy_series_set(ss: SeriesSet) -> SeriesSet:
    """Copies of the arrays, valid after the querier closes."""
    return replace(
        ss,
        offsets=np.array(ss.offsets, np.int64),
        ts=np.array(ss.ts, np.int64),
        values=np.array(ss.values, np.float64),
    )


def union_series_sets(sets: Sequence[SeriesSet]) -> SeriesSet:
    """Series of every set, sorted by labels; a series selected twice appears once.

    This is what promtool's merge of several ``--match`` selections gives: the same
    series selected by two selectors carries the same samples, so the first copy is kept.
    """
    if len(sets) == 1:
        return sets[0]
    seen: dict[Labels, tuple[int, int]] = {}
    for k, ss in enumerate(sets):  # loop over series: label bookkeeping only, no samples
        for i, ls in enumerate(ss.labels):
            seen.setdefault(ls, (k, i))
    order = sorted(seen)
    parts_ts, parts_v, lens = [], [], []
    for ls in order:
        k, i = seen[ls]
        _, ts, vs = sets[k].series(i)
        parts_ts.append(ts)
        parts_v.append(vs)
        lens.append(len(ts))
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(np.asarray(lens, np.int64), out=offsets[1:])
    ts_all = np.concatenate(parts_ts) if parts_ts else np.empty(0, np.int64)
    v_all = np.concatenate(parts_v) if parts_v else np.empty(0, np.float64)
    return SeriesSet(order, offsets, ts_all.astype(np.int64), v_all.astype(np.float64))


def select_all(q: Any, matcher_sets: Sequence[Sequence[Matcher]]) -> SeriesSet:
    """Select each matcher set with ``q`` and union the results (copies)."""
    return union_series_sets([copy_series_set(q.select(list(ms))) for ms in matcher_sets])
