"""The DB: one data folder with a head, its WAL and the persisted blocks (Prometheus ``tsdb/db.go``).

Layout::

    <path>/lock                      flock'd while open (unless no_lockfile)
    <path>/wal/00000000 ...          WAL segments; checkpoint.NNNNNNNN/ directories
    <path>/<ULID>/                   blocks (meta.json, index, chunks/, tombstones)

Commits, deletes, head truncations and block swaps run under one lock, the head's, so the
WAL's order is the head's order and a snapshot sees a commit boundary. Compaction writes
its blocks outside that lock (serialised by a second one) and only swaps them in under
it. Queriers copy head data under the lock and read blocks without it. Nothing is
global: two DBs in one process share no state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.errors import BadDataError, StorageError
from signalfire.labels import Matcher
from signalfire.storage import Querier, SelectHints, SeriesSet
from signalfire.storage.merge import MergeQuerier
from signalfire.storage.runs import RunSet
from signalfire.tsdb.block import Block, BlockQuerier, delete_block_dir, write_block
from signalfire.tsdb.block_meta import is_ulid
from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.compact import compact_blocks, plan_compaction
from signalfire.tsdb.head import Head
from signalfire.tsdb.head_append import HeadAppender
from signalfire.tsdb.head_read import HeadQuerier, read_series, read_series_later
from signalfire.tsdb.head_wal import ReplayStats, replay
from signalfire.tsdb.lock import DirLock
from signalfire.tsdb.options import DBOptions
from signalfire.tsdb.retention import blocks_to_delete
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.checkpoint import capture, delete_checkpoints_before, write_checkpoint
from signalfire.tsdb.wal.segment import WAL
from signalfire.util.deadline import Deadline

log = logging.getLogger(__name__)


def blocks_available() -> bool:
    """Whether on-disk blocks are supported (always, now; kept for callers that asked)."""
    return True


class DB:
    """An open data folder. Build with :func:`open_db`; close with :meth:`close`."""

    def __init__(self, path: str, options: DBOptions, lock: DirLock | None) -> None:
        self.path = path
        self.options = options
        self._dir_lock = lock
        self.chunk_cache = ChunkCache(options.chunk_cache_bytes)
        self.head = Head(options.min_block_duration, cache=self.chunk_cache)
        self._lock = self.head.lock
        self._ooo_window = options.out_of_order_time_window
        self.blocks: list[Block] = []
        self._readers: dict[str, int] = {}  # open queriers per block ULID
        self._doomed: dict[str, Block] = {}  # dropped blocks still being read
        self.wal: WAL | None = None
        self.replay_stats = ReplayStats()
        self._closed = False
        self._stop = threading.Event()
        self.compaction_failures = 0
        #: Serialises compactions, snapshots and close; the DB lock is taken inside it.
        self._compact_lock = threading.Lock()
        #: Bumped by every delete, so a block written without the lock can tell it is stale.
        self._delete_epoch = 0
        self._compactor: threading.Thread | None = None
        self._pending_checkpoints: list[tuple[int, Iterable[bytes]]] = []
        self._checkpoint_lock = threading.Lock()

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], options: DBOptions | None = None, *, repair: bool = True
    ) -> DB:
        """Same as :func:`open_db`."""
        return open_db(path, options, repair=repair)

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
                self.compaction_failures += 1
                log.exception("background compaction of %s failed", self.path)

    def close(self) -> None:
        """Stop background compaction, sync and close the WAL, close blocks, release the
        lock. Idempotent."""
        self._stop.set()
        if self._compactor is not None and self._compactor is not threading.current_thread():
            self._compactor.join()
        self._finish_checkpoints()
        with self._compact_lock, self._lock:
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
        with self._lock:
            self._delete_epoch += 1
            refs = self.head.select_refs(matchers)
            if len(refs) and self.wal is not None:
                self.wal.log(records.REC_TOMBSTONES, records.encode_tombstones(refs, mint, maxt))
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
        """Head figures plus block count and sizes (``/api/v1/status/tsdb``)."""
        with self._lock:
            out: dict[str, Any] = dict(self.head.stats())
            out["num_blocks"] = len(self.blocks)
            out["blocks_bytes"] = sum(b.size_bytes() for b in self.blocks)
            out["wal_segment"] = self.wal.current_segment if self.wal else -1
            out["out_of_order_time_window"] = self._ooo_window
            c = self.head.counters
            out["samples_appended_total"] = c.appended
            out["out_of_order_samples_total"] = c.out_of_order
            out["out_of_bounds_samples_total"] = c.out_of_bounds
            out["too_old_samples_total"] = c.too_old
            out["duplicate_samples_total"] = c.duplicate_conflict
            out["exact_duplicate_samples_total"] = c.duplicate
            out["compactions_failed_total"] = self.compaction_failures
            out["wal_repairs_total"] = len(self.replay_stats.repaired)
            return out

    def metrics(self) -> dict[str, float]:
        """Self-metrics named like Prometheus's ``prometheus_tsdb_*`` (``signalfire_`` prefix),
        for ``/metrics``; gauges and ``_total`` counters since open."""
        s = self.stats()
        return {
            "signalfire_tsdb_head_series": s["num_series"],
            "signalfire_tsdb_head_samples": s["num_samples"],
            "signalfire_tsdb_head_min_time": s["min_time"] if s["num_samples"] else 0,
            "signalfire_tsdb_head_max_time": s["max_time"] if s["num_samples"] else 0,
            "signalfire_tsdb_head_memory_bytes": s["memory_bytes"],
            "signalfire_tsdb_head_chunks": s["num_chunks"],
            "signalfire_tsdb_head_chunks_bytes": s["chunk_bytes"],
            "signalfire_tsdb_head_samples_appended_total": s["samples_appended_total"],
            "signalfire_tsdb_out_of_order_samples_total": s["out_of_order_samples_total"],
            "signalfire_tsdb_out_of_bound_samples_total": s["out_of_bounds_samples_total"],
            "signalfire_tsdb_too_old_samples_total": s["too_old_samples_total"],
            "signalfire_tsdb_duplicate_samples_total": s["duplicate_samples_total"],
            "signalfire_tsdb_blocks_loaded": s["num_blocks"],
            "signalfire_tsdb_storage_blocks_bytes": s["blocks_bytes"],
            "signalfire_tsdb_wal_segment_current": s["wal_segment"],
            "signalfire_tsdb_wal_corruptions_total": s["wal_repairs_total"],
            "signalfire_tsdb_compactions_failed_total": s["compactions_failed_total"],
            "signalfire_tsdb_out_of_order_time_window_milliseconds": s["out_of_order_time_window"],
        }

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
            with self._lock:
                self._apply_retention()
        return written

    def _cut_head(self) -> list[str]:
        written = []
        rng = self.options.min_block_duration
        head = self.head
        while True:
            with self._lock:
                if not self.compactable():
                    break
                mint = head.min_time
                maxt = (mint // rng) * rng + rng
                read = self.head_series_later(mint, maxt - 1)
                head.watch_below, head.watch_hit = maxt, False
                epoch = self._delete_epoch
            series = read()  # decodes cut head chunks without the lock
            meta = (
                write_block(Path(self.path), series, min_time=mint, max_time=maxt)
                if series.num_samples
                else None
            )
            with self._lock:
                head.watch_below = MIN_TIME
                if head.watch_hit or epoch != self._delete_epoch:
                    if meta is not None:
                        delete_block_dir(Path(self.path) / meta.ulid)
                    mint = min(mint, head.min_time)  # an out-of-order sample may predate it
                    series = self.head_series_set(mint, maxt - 1)
                    meta = (
                        write_block(Path(self.path), series, min_time=mint, max_time=maxt)
                        if series.num_samples
                        else None
                    )
                if meta is not None:
                    self.blocks.append(Block.open(os.path.join(self.path, meta.ulid), self.chunk_cache))
                    self._sort_blocks()
                    written.append(meta.ulid)
                self.truncate_head(maxt)
            self._finish_checkpoints()  # written without the lock
        return written

    def _sort_blocks(self) -> None:
        self.blocks.sort(key=lambda b: (b.meta.min_time, b.meta.ulid))

    def _compact_blocks(self) -> list[str]:
        written = []
        ranges = self.options.block_ranges()
        for _ in range(1000):  # each round removes at least one block; bounded anyway
            with self._lock:
                plan = plan_compaction([b.meta for b in self.blocks], ranges)
                if not plan:
                    break
                want = {m.ulid for m in plan[0]}
                group = [b for b in self.blocks if b.meta.ulid in want]
                epoch = self._delete_epoch
            # Inputs stay open: only compactions (serialised by _compact_lock) and close
            # (which waits for that lock) drop blocks.
            meta = compact_blocks(Path(self.path), group)
            with self._lock:
                if epoch != self._delete_epoch:  # tombstones added meanwhile: redo
                    if meta is not None:
                        delete_block_dir(Path(self.path) / meta.ulid)
                    meta = compact_blocks(Path(self.path), group)
                if meta is not None:
                    self.blocks.append(Block.open(os.path.join(self.path, meta.ulid), self.chunk_cache))
                    written.append(meta.ulid)
                self._drop_blocks(want)
        return written

    def _drop_blocks(self, ulids: set[str]) -> None:
        keep = []
        for b in self.blocks:
            if b.meta.ulid not in ulids:
                keep.append(b)
                continue
            # Unlinking is safe under open mmaps (Linux keeps the pages); closing is not,
            # so a block still being read is closed by the last querier's close().
            delete_block_dir(b.dir)
            if self._readers.get(b.meta.ulid, 0) > 0:
                self._doomed[b.meta.ulid] = b
            else:
                b.close()
        self.blocks = keep
        self._sort_blocks()

    def _apply_retention(self) -> None:
        o = self.options
        if not self.blocks or (o.retention_ms <= 0 and o.retention_bytes <= 0):
            return
        wal_bytes = _dir_size(os.path.join(self.path, "wal")) if o.retention_bytes > 0 else 0
        doomed = blocks_to_delete(
            [(b.meta, b.size_bytes()) for b in self.blocks],
            retention_ms=o.retention_ms,
            max_bytes=o.retention_bytes,
            head_bytes=wal_bytes,
        )
        if doomed:
            self._drop_blocks(set(doomed))

    def truncate_head(self, mint: int) -> None:
        """Drop head samples below ``mint`` and checkpoint the WAL so segments can go.

        Under the lock: truncate, rotate the WAL (all older state is in closed segments)
        and capture the head's state as bytes. Without it: write the checkpoint
        atomically, then delete what it covers. A crash anywhere leaves either the old
        checkpoint with every segment, or the new one with the segments after it.
        When called with the lock already held, the write waits for the outermost
        caller's lock to be released (see ``_finish_checkpoints``).
        """
        with self._lock:
            self.head.truncate(mint)
            if self.wal is None:
                return
            last = self.wal.current_segment
            self.wal.next_segment()
            self._pending_checkpoints.append((last, capture(self.head)))
        self._finish_checkpoints()

    def _finish_checkpoints(self) -> None:
        """Write captured checkpoints once no caller holds the DB lock any more."""
        if self._lock._is_owned() or self.wal is None:  # type: ignore[attr-defined]
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
        """All head series with samples in ``[mint, maxt]`` (label order), copied."""
        with self._lock:
            h = self.head
            return read_series(h, h.sort_by_labels(h.live_refs()), mint, maxt)

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


def _dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):  # a file removed while we walk
                total += os.path.getsize(os.path.join(root, f))
    return total


def open_db(path: str | os.PathLike[str], options: DBOptions | None = None, *, repair: bool = True) -> DB:
    """Open (creating if needed) the data folder ``path``: lock it, load blocks, replay the WAL.

    ``repair`` (default, as Prometheus) cuts a torn or corrupt WAL tail and goes on; with
    ``repair=False`` such damage raises CorruptionError naming the segment and offset.
    Raises LockedError when another DB holds the folder.
    """
    options = options or DBOptions()
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    lock = None if options.no_lockfile else DirLock(path)
    db = DB(path, options, lock)
    try:
        db._open(repair)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return db
