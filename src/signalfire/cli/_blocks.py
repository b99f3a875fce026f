"""Read access to a data folder for the ``tsdb`` subcommands: blocks, their meta, their samples.

The CLI reads a folder the way promtool's ``tsdb.OpenDBReadOnly`` does: it lists the block
directories (named by ULID) and opens them without taking the folder's lock or replaying
anything into a writable head. Everything here goes through :mod:`signalfire.tsdb`'s public
names (``Block``, ``BlockMeta``, ``open_db``); nothing parses index or chunk files itself.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from signalfire.errors import NotFoundError, SignalfireError, StorageError
from signalfire.labels import Labels, Matcher
from signalfire.storage import SeriesSet, empty_series_set

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


#: First bytes of a Prometheus TSDB index file (``tsdb/index`` MagicIndex 0xBAAAD700).
PROMETHEUS_INDEX_MAGIC = b"\xba\xaa\xd7\x00"


def _refuse_prometheus_block(path: Path) -> None:
    """A Prometheus block gets a way forward instead of a bare corruption error."""
    try:
        with open(path / "index", "rb") as f:
            magic = f.read(4)
    except OSError:
        return
    if magic == PROMETHEUS_INDEX_MAGIC:
        raise StorageError(
            f"open block {path}: this is a Prometheus block, not a signalfire one; move its data with "
            "`promtool tsdb dump-openmetrics` and `signalfire tsdb create-blocks-from openmetrics`"
        )


def block_info(path: Path) -> BlockInfo:
    """Meta and on-disk size of the block in ``path``; raises StorageError if it is unreadable."""
    from signalfire.tsdb import Block

    _refuse_prometheus_block(path)
    try:
        with Block.open(path) as block:
            meta, size = block.meta, block.size_bytes()
    except SignalfireError:
        raise
    except Exception as err:  # a damaged block must name itself, not crash the listing
        raise StorageError(f"open block {path}: {err}") from err
    return BlockInfo(
        ulid=meta.ulid,
        min_time=meta.min_time,
        max_time=meta.max_time,
        num_samples=meta.num_samples,
        num_chunks=meta.num_chunks,
        num_series=meta.num_series,
        size=size,
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
    from signalfire.tsdb import Block

    with Block.open(info.path) as block:
        q = block.querier(info.min_time, info.max_time - 1)  # meta's end is exclusive
        try:
            yield q
        finally:
            q.close()


def select_head(
    db_path: Path, matcher_sets: Sequence[Sequence[Matcher]], mint: int, maxt: int, sandbox_root: str = ""
) -> SeriesSet:
    """Samples still in the head of the database in ``db_path``, read from a copy of its WAL.

    As promtool's ``OpenDBReadOnly`` does, the WAL is copied into a sandbox folder (under
    ``sandbox_root``, default the system temp folder) and replayed there, so a folder in use
    by a running signalfire is never locked, replayed into or written by a dump.
    """
    from signalfire.tsdb import DBOptions, open_db

    sandbox = Path(tempfile.mkdtemp(prefix="signalfire-dump-", dir=sandbox_root or None))
    try:
        shutil.copytree(db_path / "wal", sandbox / "wal")
        db = open_db(
            sandbox, DBOptions(no_lockfile=True, enable_compaction=False, retention_ms=0, fsync="never")
        )
        try:
            q = db.querier(mint, maxt)
            try:
                return select_all(q, matcher_sets)
            finally:
                q.close()
        finally:
            db.close()
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


def copy_series_set(ss: SeriesSet) -> SeriesSet:
    """Copies of the arrays, valid after the querier closes."""
    return replace(
        ss,
        offsets=np.array(ss.offsets, np.int64),
        ts=np.array(ss.ts, np.int64),
        values=np.array(ss.values, np.float64),
    )


def merge_series_sets(sets: Sequence[SeriesSet]) -> SeriesSet:
    """One SeriesSet with every series of ``sets``, sorted by labels, samples merged by time.

    This is Prometheus's chained series merge: a series present in several sets (two
    blocks, or two ``--match`` selections) gets the union of its samples, and a timestamp
    present twice is kept once (the first set's sample). Steps: rank label sets, one
    lexsort of all samples by (rank, ts), drop repeated (rank, ts), offsets by bincount.
    """
    if len(sets) == 1:
        return sets[0]
    if not sets:
        return empty_series_set()
    ranks: dict[Labels, int] = {}
    for ss in sets:  # loop over series: label bookkeeping only
        for ls in ss.labels:
            ranks.setdefault(ls, 0)
    order = sorted(ranks)
    for i, ls in enumerate(order):
        ranks[ls] = i
    sample_rank = np.concatenate(
        [np.repeat(np.array([ranks[ls] for ls in ss.labels], np.int64), np.diff(ss.offsets)) for ss in sets]
        or [np.empty(0, np.int64)]
    )
    ts = np.concatenate([np.asarray(ss.ts, np.int64) for ss in sets] or [np.empty(0, np.int64)])
    values = np.concatenate([np.asarray(ss.values, np.float64) for ss in sets] or [np.empty(0, np.float64)])
    idx = np.lexsort((ts, sample_rank))  # stable: equal (rank, ts) keep the set order
    sample_rank, ts, values = sample_rank[idx], ts[idx], values[idx]
    keep = np.ones(len(ts), bool)
    keep[1:] = (sample_rank[1:] != sample_rank[:-1]) | (ts[1:] != ts[:-1])
    sample_rank, ts, values = sample_rank[keep], ts[keep], values[keep]
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(np.bincount(sample_rank, minlength=len(order)), out=offsets[1:])
    return SeriesSet(order, offsets, ts, values)


def select_blocks(
    db_path: str | Path,
    matcher_sets: Sequence[Sequence[Matcher]],
    mint: int,
    maxt: int,
    sandbox_root: str = "",
) -> SeriesSet:
    """Samples of the folder in ``[mint, maxt]``: every block, plus the head when there is a WAL.

    Blocks are opened read-only; the head comes from :func:`select_head`. The parts are
    merged, so samples both in a block and still in the WAL are printed once.
    """
    from signalfire.tsdb import Block

    p = check_dir(db_path)
    parts = []
    for info in list_blocks(p):
        if info.max_time <= mint or info.min_time > maxt:
            continue
        with Block.open(info.path) as block:
            q = block.querier(max(mint, info.min_time), min(maxt, info.max_time - 1))
            try:
                parts.append(select_all(q, matcher_sets))
            finally:
                q.close()
    if (p / "wal").is_dir():
        parts.append(select_head(p, matcher_sets, mint, maxt, sandbox_root))
    return merge_series_sets(parts)


def select_all(q: Any, matcher_sets: Sequence[Sequence[Matcher]]) -> SeriesSet:
    """Select each matcher set with ``q`` and union the results (copies)."""
    return merge_series_sets([copy_series_set(q.select(list(ms))) for ms in matcher_sets])
