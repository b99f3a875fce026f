"""The DB: one data folder with a head, its WAL and the persisted blocks (Prometheus ``tsdb/db.go``).

Layout::

    <path>/lock                      flock'd while open (unless no_lockfile)
    <path>/wal/00000000 ...          WAL segments; checkpoint.NNNNNNNN/ directories
    <path>/<ULID>/                   blocks (meta.json, index, chunks/, tombstones)

Locks (docs/storage.md, "Locks and concurrency"), always taken in this order:
``_compact_lock`` (compactions, snapshots, close), ``head.write_lock`` (writers: commits,
deletes, head truncations, block swaps, one at a time, so the WAL's order is the head's
order), ``head.lock`` (short: mutations, and every read's picking). Readers take only the
last, to pick a consistent view (refs, slab copies, immutable chunk groups, the block
list with its blocks pinned); decoding, directory walks and file I/O run after it is
released. Nothing is global: two DBs in one process share no state.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.errors import BadDataError, StorageError
from signalfire.labels import Matcher
from signalfire.metrics import Registry
from signalfire.storage import MergeQuerier, Querier, RunSet, SelectHints, SeriesSet
from signalfire.tsdb.block import Block, BlockQuerier, delete_block_dir, dir_size, write_block
from signalfire.tsdb.block_meta import BlockMeta, is_ulid
from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.compact import compact_blocks, plan_compaction
from signalfire.tsdb.head import Head
from signalfire.tsdb.head_append import HeadAppender
from signalfire.tsdb.head_read import HeadQuerier, read_series_later
from signalfire.tsdb.head_wal import ReplayStats, replay
from signalfire.tsdb.lock import DirLock
from signalfire.tsdb.metrics import TSDBMetrics
from signalfire.tsdb.options import DBOptions
from signalfire.tsdb.retention import blocks_to_delete
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.checkpoint import capture, delete_checkpoints_before, write_checkpoint
from signalfire.tsdb.wal.segment import WAL
from signalfire.util.deadline import Deadline

log = logging.getLogger(__name__)


class DB:
    """An open data folder. Build with :func:`open_db`; close with :meth:`close`.

    ``metrics`` is the registry its ``signalfire_tsdb_*`` self metrics are in: the one
    given to :func:`open_db` (a server's, shared by all its parts) or its own.
    """

    def __init__(
        self, path: str, options: DBOptions, lock: DirLock | None, registry: Registry | None = None
    ) -> None:
        self.path = path
        self.options = options
        self._dir_lock = lock
        self.chunk_cache = ChunkCache(options.chunk_cache_bytes)
        self.head = Head(options.min_block_duration, cache=self.chunk_cache)
        self._lock = self.head.lock
        self._write = self.head.write_lock
        self._ooo_window = options.out_of_order_time_window
        self.blocks: list[Block] = []
        self._readers: dict[str, int] = {}  # open queriers per block ULID
        self._doomed: dict[str, Block] = {}  # dropped blocks still being read
        self.wal: WAL | None = None
        self.replay_stats = ReplayStats()
        self._closed = False
        self._stop = threading.Event()
        self.metrics = registry if registry is not None else Registry()
        self._metrics = TSDBMetrics(self.metrics, self._figures)
        #: Serialises compactions, snapshots and close; the DB lock is taken inside it.
        self._compact_lock = threading.Lock()
        #: Bumped by every delete, so a block written without the lock can tell it is stale.
        self._delete_epoch = 0
        self._compactor: threading.Thread | None = None
        self._pending_checkpoints: list[tuple[int, Iterable[bytes]]] = []
        self._checkpoint_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        options: DBOptions | None = None,
        *,
        repair: bool = True,
        registry: Registry | None = None,
    ) -> DB:
        """Same as :func:`open_db`."""
        return open_db(path, options, repair=repair, registry=registry)

    # ---------------------------------------------------------------- open/close

    def _open(self, repair: bool) -> None:
        self.blocks = _load_blocks(self.path, self.chunk_cache)
        if self.blocks:
            self.head.min_valid_time = max(b.meta.max_time for b in self.blocks)
        wal_dir = os.path.join(self.path, "wal")
        self.replay_stats = replay(wal_dir, self.head, repair=repair)
        self.wal = WAL(wal_dir, self.options.wal_segment_size, self.options.fsync)
        if os.path.getsize(os.path.join(wal_dir, f"{self.wal.current_segment:08d}")) > 0:
            self.wal.next_segment()
        # A crash between writing a block and checkpointing leaves its samples in the WAL
        # too. They are not dropped here (out-of-order samples below the newest block may
        # exist only in the head): reads deduplicate them, and the next cut writes them
        # into an overlapping block that compaction merges away.
        if self.options.compaction_interval_ms > 0:
            self._compactor = threading.Thread(target=self._compact_loop, name="tsdb-compact", daemon=True)
            self._compactor.start()

    def _compact_loop(self) -> None:
        """Background job: compact every interval until close (a task boundary: errors
        are logged and counted, the loop goes on)."""
        while not self._stop.wait(self.options.compaction_interval_ms / 1000):
            try:
                self.compact()
            except Exception:
                self._metrics.compactions_failed.inc()
                log.exception("background compaction of %s failed", self.path)

    def close(self) -> None:
        """Stop background compaction, sync and close the WAL, close blocks, release the
        lock. Idempotent."""
        self._stop.set()
        if self._compactor is not None and self._compactor is not threading.current_thread():
            self._compactor.join()
        self._finish_checkpoints()
        with self._compact_lock, self._write, self._lock:
            if self._closed:
                return
            self._closed = True
            if self.wal is not None:
                self.wal.close()
            for b in self.blocks:
                b.close()
            self.head.chunks.close()
            if self._dir_lock is not None:
                self._dir_lock.release()
            self._metrics.unregister()

    @property
    def compaction_failures(self) -> int:
        """Background compactions that failed since open."""
        return int(self._metrics.compactions_failed.value)

    def __enter__(self) -> DB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"tsdb at {self.path} is closed")

    # ---------------------------------------------------------------- write

    def appender(self) -> HeadAppender:
        """A new appender (see storage.Appender); commit logs to the WAL, then the head."""
        self._check_open()
        return HeadAppender(self.head, self.wal, lambda: self._ooo_window)

    def set_out_of_order_window(self, ms: int) -> None:
        """Change ``out_of_order_time_window`` at runtime (config reload)."""
        if ms < 0:
            raise BadDataError(f"out_of_order_time_window must not be negative, got {ms}")
        self._ooo_window = int(ms)

    @property
    def out_of_order_window(self) -> int:
        return self._ooo_window

    def delete(self, matchers: Sequence[Matcher], mint: int = MIN_TIME, maxt: int = MAX_TIME) -> None:
        """Delete samples of matching series in ``[mint, maxt]`` from head and blocks."""
        self._check_open()
        # A writer: the WAL record and the block tombstone files are written without the
        # head lock; compactions pick and swap under the write lock, so they see a delete
        # whole or not at all (the epoch tells them to redo a block written meanwhile).
        with self._write:
            with self._lock:
                self._delete_epoch += 1
                refs = self.head.select_refs(matchers)
            if len(refs) and self.wal is not None:
                self.wal.log(records.REC_TOMBSTONES, records.encode_tombstones(refs, mint, maxt))
            with self._lock:
                self.head.delete(refs, mint, maxt)
            for b in self.blocks:
                if b.meta.min_time <= maxt and b.meta.max_time > mint:
                    b.delete(matchers, mint, maxt)

    # ---------------------------------------------------------------- read

    def querier(self, mint: int, maxt: int) -> Querier:
        """Every block overlapping ``[mint, maxt]`` then the head, merged.

        Blocks go in creation (ULID) order, the head last: where they overlap, the
        merge keeps the copy listed first, so a timestamp written twice keeps its
        first write, as the head itself does (see ``storage/merge.py``).
        """
        self._check_open()
        with self._lock:
            blocks = [b for b in self.blocks if b.meta.min_time <= maxt and b.meta.max_time > mint]
            blocks.sort(key=lambda b: b.meta.ulid)
            for b in blocks:
                self._readers[b.meta.ulid] = self._readers.get(b.meta.ulid, 0) + 1
        queriers: list[Querier] = [
            _TrackedQuerier(b.querier(mint, maxt), b.meta.ulid, self._release) for b in blocks
        ]
        # The head only when it may hold samples in range (Prometheus: maxt >= head mint);
        # an empty head's min_time is MAX_TIME. Not skipped when nothing else is left, so
        # every querier answers label names and values from the head as before.
        if maxt >= self.head.min_time or not queriers:
            queriers.append(HeadQuerier(self.head, mint, maxt))
        return queriers[0] if len(queriers) == 1 else MergeQuerier(queriers)

    def _release(self, ulid: str) -> None:
        """A block querier closed; close a dropped block once its last reader is gone."""
        with self._lock:
            left = self._readers.get(ulid, 0) - 1
            if left > 0:
                self._readers[ulid] = left
                return
            self._readers.pop(ulid, None)
            doomed = self._doomed.pop(ulid, None)
        if doomed is not None:
            doomed.close()

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        q = self.querier(MIN_TIME, MAX_TIME)
        try:
            return q.label_names(matchers)
        finally:
            q.close()

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        q = self.querier(MIN_TIME, MAX_TIME)
        try:
            return q.label_values(name, matchers)
        finally:
            q.close()

    def stats(self) -> dict[str, Any]:
        """Head figures plus block count and sizes (``/api/v1/status/tsdb``).

        The figures are read under the head lock; the block directories are walked after
        it is released (a block dropped meanwhile counts what is left of it)."""
        with self._lock:
            out: dict[str, Any] = dict(self.head.stats())
            blocks = list(self.blocks)
            out["num_blocks"] = len(blocks)
            out["wal_segment"] = self.wal.current_segment if self.wal else -1
            out["out_of_order_time_window"] = self._ooo_window
            c = self.head.counters
            out["samples_appended_total"] = c.appended
            out["out_of_order_samples_total"] = c.out_of_order
            out["out_of_bounds_samples_total"] = c.out_of_bounds
            out["too_old_samples_total"] = c.too_old
            out["duplicate_samples_total"] = c.duplicate_conflict
            out["exact_duplicate_samples_total"] = c.duplicate
            out.update(self.replay_stats.counters())  # wal_repairs_total and what replay dropped
            out["compactions_failed_total"] = self.compaction_failures
        out["blocks_bytes"] = sum(b.size_bytes() for b in blocks)
        return out

    def _figures(self) -> dict[str, float]:
        """What the self-metrics collector reads at each scrape (``tsdb/metrics.py``):
        :meth:`stats` (one short look under the lock, the directory walks after it), with
        head times 0 while the head is empty and the out-of-order window in seconds."""
        out: dict[str, float] = self.stats()
        if not out["num_samples"]:
            out["min_time"] = out["max_time"] = 0
        out["out_of_order_time_window_seconds"] = out["out_of_order_time_window"] / 1000
        return out

    # ---------------------------------------------------------------- compaction

    def compactable(self) -> bool:
        """Prometheus's rule: the head spans more than 1.5 block ranges."""
        h = self.head
        return h.max_time != MIN_TIME and h.max_time - h.min_time > self.options.min_block_duration // 2 * 3

    def compact(self) -> list[str]:
        """Cut the head into block-range-aligned blocks while it is compactable, then
        compact blocks (``plan_compaction``) and apply retention (time and size).
        Returns the ULIDs of the blocks written.

        Blocks are written *without* the DB lock, so appends and queries go on meanwhile;
        only the swap (open the new block, truncate the head, drop inputs) takes it. If an
        out-of-order append or a delete touched the data being written, the block is
        discarded and written again under the lock (rare; optimistic concurrency).

        Crash safety: a block is renamed into place complete before the head or the WAL
        forgets its samples, and a compacted block before its parents are deleted; a
        crash in between leaves the same samples twice, which reads deduplicate and the
        next open cleans up (parents of a present block are deleted on open).
        """
        self._check_open()
        written: list[str] = []
        with self._compact_lock:
            self._check_open()
            written += self._cut_head()
            if self.options.enable_compaction:
                written += self._compact_blocks()
            self._apply_retention()
        return written

    def _cut_head(self) -> list[str]:
        written = []
        rng = self.options.min_block_duration
        head = self.head
        while True:
            started = time.perf_counter()
            with self._write, self._lock:
                if not self.compactable():
                    break
                mint = head.min_time
                maxt = (mint // rng) * rng + rng
                read = self.head_series_later(mint, maxt - 1)
                head.watch_below, head.watch_hit = maxt, False
                epoch = self._delete_epoch
            meta = self._write_head_block(read, mint, maxt)  # appends and reads go on
            with self._write:
                with self._lock:
                    head.watch_below = MIN_TIME
                    redo = head.watch_hit or epoch != self._delete_epoch
                    if redo:
                        mint = min(mint, head.min_time)  # an out-of-order sample may predate it
                        read = self.head_series_later(mint, maxt - 1)
                if redo:  # rare: writers wait (the head must not change), readers do not
                    if meta is not None:
                        delete_block_dir(Path(self.path) / meta.ulid)
                    meta = self._write_head_block(read, mint, maxt)
                block = None
                if meta is not None:
                    block = Block.open(os.path.join(self.path, meta.ulid), self.chunk_cache)
                with self._lock:
                    if block is not None:
                        self.blocks.append(block)
                        self._sort_blocks()
                        written.append(block.meta.ulid)
                        self._metrics.compaction_done(started)
                    frames = self._truncate_locked(maxt)
                self._rotate_for_checkpoint(frames)
            self._finish_checkpoints()  # written without the lock
        return written

    def _write_head_block(self, read: Callable[[], SeriesSet], mint: int, maxt: int) -> BlockMeta | None:
        """Decode what ``read`` picked and write it as a block; None when it is empty."""
        series = read()
        if not series.num_samples:
            return None
        return write_block(Path(self.path), series, min_time=mint, max_time=maxt)

    def _sort_blocks(self) -> None:
        self.blocks.sort(key=lambda b: (b.meta.min_time, b.meta.ulid))

    def _compact_blocks(self) -> list[str]:
        written = []
        ranges = self.options.block_ranges()
        for _ in range(1000):  # each round removes at least one block; bounded anyway
            started = time.perf_counter()
            with self._write:  # no delete in flight while the inputs are picked
                plan = plan_compaction([b.meta for b in self.blocks], ranges)
                if not plan:
                    break
                want = {m.ulid for m in plan[0]}
                group = [b for b in self.blocks if b.meta.ulid in want]
                epoch = self._delete_epoch
            # Inputs stay open: only compactions (serialised by _compact_lock) and close
            # (which waits for that lock) drop blocks.
            meta = compact_blocks(Path(self.path), group)
            with self._write:
                if epoch != self._delete_epoch:  # tombstones added meanwhile: redo
                    if meta is not None:
                        delete_block_dir(Path(self.path) / meta.ulid)
                    meta = compact_blocks(Path(self.path), group)
                block = None
                if meta is not None:
                    block = Block.open(os.path.join(self.path, meta.ulid), self.chunk_cache)
                    written.append(meta.ulid)
                    self._metrics.compaction_done(started)
                with self._lock:
                    if block is not None:
                        self.blocks.append(block)
                    gone = self._drop_blocks(want)
            self._remove_blocks(gone)
        return written

    def _drop_blocks(self, ulids: set[str]) -> list[Block]:
        """Take ``ulids`` out of the block list (the caller holds the write and head
        locks); returns them for :meth:`_remove_blocks`, called after the locks."""
        keep: list[Block] = []
        gone: list[Block] = []
        for b in self.blocks:
            (gone if b.meta.ulid in ulids else keep).append(b)
        self.blocks = keep
        self._sort_blocks()
        return gone

    def _remove_blocks(self, gone: list[Block]) -> None:
        """Delete dropped blocks' directories and close the ones no querier reads.

        Unlinking is safe under open mmaps (Linux keeps the pages); closing is not, so a
        block still being read is closed by the last querier's close(). No querier can
        pin a block once it left the list, so the count checked here only goes down."""
        for b in gone:
            delete_block_dir(b.dir)
            with self._lock:
                doomed = self._readers.get(b.meta.ulid, 0) > 0
                if doomed:
                    self._doomed[b.meta.ulid] = b
            if not doomed:
                b.close()

    def _apply_retention(self) -> None:
        """Drop blocks past the time or size retention. Sizes are walked without the DB
        locks (the caller holds ``_compact_lock``, so the block list cannot change)."""
        o = self.options
        blocks = list(self.blocks)
        if not blocks or (o.retention_ms <= 0 and o.retention_bytes <= 0):
            return
        wal_bytes = dir_size(os.path.join(self.path, "wal")) if o.retention_bytes > 0 else 0
        doomed = blocks_to_delete(
            [(b.meta, b.size_bytes()) for b in blocks],
            retention_ms=o.retention_ms,
            max_bytes=o.retention_bytes,
            head_bytes=wal_bytes,
        )
        if doomed:
            with self._write, self._lock:
                gone = self._drop_blocks(set(doomed))
            self._remove_blocks(gone)

    def truncate_head(self, mint: int) -> None:
        """Drop head samples below ``mint`` and checkpoint the WAL so segments can go.

        Under the write and head locks: truncate, rotate the WAL (all older state is in
        closed segments) and capture the head's state as bytes. Without them: write the
        checkpoint atomically, then delete what it covers. A crash anywhere leaves either
        the old checkpoint with every segment, or the new one with the segments after it.
        Must not be called with either lock held (see ``_truncate_locked``).
        """
        with self._write:
            with self._lock:
                frames = self._truncate_locked(mint)
            self._rotate_for_checkpoint(frames)
        self._finish_checkpoints()

    def _truncate_locked(self, mint: int) -> Iterable[bytes] | None:
        """Truncate the head and capture its state for a checkpoint (None without a WAL);
        the caller holds the write and head locks, and passes the capture on to
        :meth:`_rotate_for_checkpoint` before it releases the write lock. The write lock
        makes the capture complete: no commit is between its WAL write and its scatter."""
        self._metrics.head_truncations.inc()
        self.head.truncate(mint)
        return None if self.wal is None else capture(self.head)

    def _rotate_for_checkpoint(self, frames: Iterable[bytes] | None) -> None:
        """Close the WAL segment the capture covers (an fsync) and queue the checkpoint;
        the caller holds the write lock but not the head lock. No WAL record can come
        between the capture and the rotation, since every WAL writer holds the write lock."""
        if frames is None or self.wal is None:
            return
        last = self.wal.current_segment
        self.wal.next_segment()
        self._pending_checkpoints.append((last, frames))

    def _finish_checkpoints(self) -> None:
        """Write captured checkpoints; called with no DB lock held (the write is slow)."""
        if self.wal is None:
            return
        with self._checkpoint_lock:
            while self._pending_checkpoints:
                last, frames = self._pending_checkpoints.pop(0)
                wal_dir = self.wal.dir
                write_checkpoint(wal_dir, last, frames, sync=self.options.fsync != "never")
                self.wal.delete_segments_before(last + 1)
                delete_checkpoints_before(wal_dir, last)

    # ---------------------------------------------------------------- snapshot

    def snapshot(self, dest: str | os.PathLike[str], with_head: bool = True) -> str:
        """Consistent hot backup into ``dest`` (must not exist or be empty).

        Blocks are hard-linked (copied across file systems, tombstones always copied);
        the head is written as one more block. Blocks are linked and the head copied in
        one DB-lock section, so the backup reflects exactly the commits before it; the
        head block is written after, while appends go on. Returns ``dest``.
        """
        from signalfire.tsdb.snapshot import write_snapshot

        self._check_open()
        dest = os.fspath(dest)
        with self._compact_lock:
            write_snapshot(self, dest, with_head)
        return dest

    def head_series_set(self, mint: int, maxt: int) -> SeriesSet:
        """All head series with samples in ``[mint, maxt]`` (label order), copied; picked
        under the head lock, decoded after it."""
        return self.head_series_later(mint, maxt)()

    def head_series_later(self, mint: int, maxt: int) -> Callable[[], SeriesSet]:
        """:meth:`head_series_set` as of now, decoded when the returned function is called
        (which needs no lock): for block cuts and snapshots, so appends go on meanwhile."""
        with self._lock:
            h = self.head
            return read_series_later(h, h.sort_by_labels(h.live_refs()), mint, maxt)


class _TrackedQuerier:
    """A block querier that tells the DB when it is closed (see ``DB._release``)."""

    def __init__(self, inner: BlockQuerier, ulid: str, release: Callable[[str], None]) -> None:
        self._inner = inner
        self._ulid = ulid
        self._release: Callable[[str], None] | None = release

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet:
        return self._inner.select(matchers, hints, deadline)

    def select_runs(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> RunSet:
        """Runs for :class:`~signalfire.storage.merge.MergeQuerier` (one copy, by the merge)."""
        return self._inner.select_runs(matchers, hints, deadline)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self._inner.label_names(matchers)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self._inner.label_values(name, matchers)

    def close(self) -> None:
        if self._release is not None:
            self._inner.close()
            release, self._release = self._release, None
            release(self._ulid)


def _load_blocks(path: str, cache: ChunkCache) -> list[Block]:
    """Open the blocks of ``path``; remove leftovers of interrupted writes and compactions."""
    for name in os.listdir(path):
        if name.endswith(".tmp") or name.endswith(".tmp-for-deletion"):
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    blocks = [Block.open(os.path.join(path, n), cache) for n in sorted(os.listdir(path)) if is_ulid(n)]
    # A compaction that crashed before deleting its inputs leaves them beside its output.
    parents = {p for b in blocks for p in b.meta.parents}
    for b in [b for b in blocks if b.meta.ulid in parents]:
        b.close()
        delete_block_dir(b.dir)
    blocks = [b for b in blocks if b.meta.ulid not in parents]
    blocks.sort(key=lambda b: (b.meta.min_time, b.meta.ulid))
    return blocks


def open_db(
    path: str | os.PathLike[str],
    options: DBOptions | None = None,
    *,
    repair: bool = True,
    registry: Registry | None = None,
) -> DB:
    """Open (creating if needed) the data folder ``path``: lock it, load blocks, replay the WAL.

    ``repair`` (default, as Prometheus) cuts a torn or corrupt WAL segment at the damage and
    goes on, logging and counting what was dropped; with ``repair=False`` such damage raises
    CorruptionError naming the segment and offset. A missing or foreign WAL file is refused
    either way (``docs/storage.md``, "WAL damage on open").
    Raises LockedError when another DB holds the folder. Self metrics go into
    ``registry`` (a server's, shared by its parts), or into a new one (``DB.metrics``).
    """
    options = options or DBOptions()
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    lock = None if options.no_lockfile else DirLock(path)
    db: DB | None = None
    try:
        db = DB(path, options, lock, registry)
        db._open(repair)
    except BaseException:
        if db is not None:
            db._metrics.unregister()
        if lock is not None:
            lock.release()
        raise
    return db
