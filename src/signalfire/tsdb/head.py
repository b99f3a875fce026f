"""The head: recent samples in memory, in per-series slabs of one big pool plus
compressed chunks cut from full slabs.

Series registry: ``Labels -> ref`` (refs are dense ints, never reused while the DB is open,
and kept across restarts by the WAL), with an in-memory postings index for matchers.

Open samples: every series owns a contiguous slab ``[start, start + cap)`` of three pooled
columns (``pool_ts``, ``pool_v`` and, once a start timestamp was seen, ``pool_st``);
``n[ref]`` says how many are filled. Slabs are always sorted by time. A batch is written
with one scatter (``np.argsort`` by ref, per-ref counts, fancy indexing); a series whose
slab is full moves to a slab twice as large at the end of the pool, and the pool is
repacked when abandoned slabs outweigh live ones (the slab operations are in
``head_slabs``). Out-of-order samples (admitted by the out-of-order window) are appended
too and the few series that received them are re-sorted.

Cut samples: once a series holds ``chunk_samples + keep_samples`` samples in its slab, the
batch that filled it cuts its oldest samples, together with every other series it filled,
into compressed groups (``head_chunks``; ``nc[ref]`` counts a series' cut samples) and
keeps the newest ``keep_samples`` in the slab; small cuts are merged into ~120-sample
chunks later. Reads (:meth:`Head.samples`) decode the groups a query needs and append the
slab; an out-of-order sample older than a cut chunk stays in the slab, and reads sort such
series.

Recent samples: because a cut keeps the newest ``keep_samples`` (32 by default: 8 minutes of
15 s scrapes) raw, the window an instant query, a rule's lookback or a short range reads is
in the slabs, and ``cut_maxt[ref]`` (the newest cut sample of each series, an upper
bound) tells so without looking at the groups: such a read is a gather from the pool,
with no plan, no decoding and no merge (Prometheus keeps its open head chunk for the same
reason). Wider reads take the general path.

Thread-safety: the head itself takes no locks; its users hold two it carries
(docs/storage.md, "Locks and concurrency"). ``Head.lock`` is held around every mutation and
around every read's picking (slab copies, chunk plans, labels), never around decoding.
``Head.write_lock`` is held by every writer (commit, delete, truncation) from its judgement
to its last mutation, WAL write included, so writers take effect one at a time in WAL order.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from signalfire._types import F64, I64, MAX_TIME, MIN_TIME
from signalfire.errors import BadDataError
from signalfire.labels import Labels, Matcher
from signalfire.storage import AppendStats
from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.head_chunks import HeadChunks
from signalfire.tsdb.head_pieces import Piece, Samples, decode_plan, merge_pieces
from signalfire.tsdb.head_postings import HeadPostings
from signalfire.tsdb.head_slabs import SlabPool, round_cap
from signalfire.tsdb.wal import records
from signalfire.util.ragged import ragged_arange, segment_ids

__all__ = ["Head", "HeadPostings", "SampleBatch", "Samples", "join_batches"]


class SampleBatch(NamedTuple):
    """Samples of any series, one ref each (an append batch, a WAL record's samples)."""

    refs: I64
    ts: I64
    values: F64
    st: I64 | None


def join_batches(batches: Sequence[SampleBatch]) -> SampleBatch:
    """The batches one after another; start timestamps are 0 where a batch had none."""
    if len(batches) == 1:
        return batches[0]
    st = None
    if any(b.st is not None for b in batches):
        st = np.concatenate([b.st if b.st is not None else np.zeros(len(b.refs), np.int64) for b in batches])
    return SampleBatch(
        np.concatenate([b.refs for b in batches]),
        np.concatenate([b.ts for b in batches]),
        np.concatenate([b.values for b in batches]),
        st,
    )


#: Samples a cut compresses. Slabs are raw (16 B/sample), so a small slab keeps an active
#: series' open memory small (1 KB with the kept samples); the cut groups are merged later
#: into ~120-sample chunks (``head_chunks.MERGE_SAMPLES``) that compress like Prometheus's.
CHUNK_SAMPLES = 32

#: A cut leaves the newest ``keep_samples`` raw in the slab (by default as many as it
#: compresses), so a read of the last few minutes is a gather, not a decode: 32 cover a
#: 5-minute lookback at scrape intervals down to 10 s, for 512 B more per active series.
#: A read served from the slabs alone gathers every slab sample of its series and masks
#: them by time while the longest slab holds at most this many; beyond, binary searches.
_GATHER_MAX = 256


class Head(SlabPool):
    """Series registry plus sample slabs. See the module docstring for the layout."""

    def __init__(
        self,
        chunk_range: int,
        pool_size: int = 1 << 16,
        chunk_samples: int = CHUNK_SAMPLES,
        cache: ChunkCache | None = None,
        keep_samples: int | None = None,
    ) -> None:
        self.chunk_range = chunk_range
        self.chunk_samples = self.keep_samples = self._slab_cap = 0
        self.set_chunk_samples(chunk_samples, keep_samples)
        self.chunks = HeadChunks(cache)
        self._registry_bytes = 0  # estimate for labels, postings, maps (see memory_bytes)
        #: Short sections: every mutation, and every read's picking.
        self.lock = threading.RLock()
        #: Orders writers: taken before ``lock``, held across the WAL write (not reentrant).
        self.write_lock = threading.Lock()
        self.postings = HeadPostings()
        self._by_labels: dict[Labels, int] = {}
        self._labels: list[Labels | None] = []  # by ref; kept after GC so stale refs revive
        self._entries: list[bytes] = []  # by ref: the series' WAL encoding, built once
        # Live refs in label order, kept incrementally: new refs wait in _unsorted and are
        # merged in (binary search + one np.insert) by the next read that needs the order.
        self._sorted_refs: I64 = np.empty(0, np.int64)
        self._unsorted: list[int] = []
        self._rank: I64 | None = None
        cap = 1024
        self.alive = np.zeros(cap, np.bool_)
        self.logged = np.zeros(cap, np.bool_)  # series record is in the WAL
        self.start = np.zeros(cap, np.int64)
        self.cap = np.zeros(cap, np.int64)
        self.n = np.zeros(cap, np.int64)
        self.nc = np.zeros(cap, np.int64)  # samples in cut chunks
        self.cut_maxt = np.full(cap, MIN_TIME, np.int64)  # newest cut sample (upper bound)
        self.last_t = np.full(cap, MIN_TIME, np.int64)
        self.last_v = np.zeros(cap, np.float64)
        self.pool_ts = np.empty(pool_size, np.int64)
        self.pool_v = np.empty(pool_size, np.float64)
        self.pool_st: I64 | None = None
        self.pool_end = 0
        self.wasted = 0
        self.min_time = MAX_TIME
        self.max_time = MIN_TIME
        #: No sample below this is appendable in order (the end of the newest block).
        self.min_valid_time = MIN_TIME
        #: Outcome of every committed (or rolled back) sample, for self-metrics.
        self.counters = AppendStats()
        #: Set while a block of everything below ``watch_below`` is written without the
        #: lock: an append below it sets ``watch_hit`` so the DB rewrites that block.
        self.watch_below = MIN_TIME
        self.watch_hit = False
        #: Bumped by every mutation, so an appender knows whether its checks are stale.
        self.generation = 0

    # ---------------------------------------------------------------- registry

    @property
    def num_series(self) -> int:
        return len(self._by_labels)

    @property
    def num_samples(self) -> int:
        return int(self.n[: len(self._labels)].sum()) + self.chunks.num_samples

    def has_samples(self, refs: I64) -> np.ndarray:
        """Whether each of ``refs`` holds any sample (open or cut)."""
        out: np.ndarray = (self.n[refs] + self.nc[refs]) > 0
        return out

    def labels_of(self, ref: int) -> Labels:
        ls = self._labels[ref]
        if ls is None:
            raise AssertionError(f"BUG: unknown series ref {ref}")
        return ls

    def series_entries(self, refs: I64) -> list[bytes]:
        """Cached WAL encodings of ``refs`` (see ``records.series_entry``)."""
        entries = self._entries
        return [entries[r] for r in refs.tolist()]

    def live_refs(self) -> I64:
        return np.flatnonzero(self.alive[: len(self._labels)]).astype(np.int64)

    def _grow_series(self, need: int) -> None:
        old = len(self.alive)
        if need <= old:
            return
        new = max(need, old * 2)
        for name, fill in (
            ("alive", False),
            ("logged", False),
            ("start", 0),
            ("cap", 0),
            ("n", 0),
            ("nc", 0),
            ("cut_maxt", MIN_TIME),
            ("last_t", MIN_TIME),
            ("last_v", 0.0),
        ):
            arr = getattr(self, name)
            grown = np.full(new, fill, arr.dtype)
            grown[:old] = arr
            setattr(self, name, grown)

    def _register(self, ref: int, labels: Labels) -> None:
        if ref >= len(self._labels):
            self._grow_series(ref + 1)
            self._labels.extend([None] * (ref + 1 - len(self._labels)))
            self._entries.extend([b""] * (ref + 1 - len(self._entries)))
        self._labels[ref] = labels
        self._entries[ref] = records.series_entry(ref, labels)
        self._registry_bytes += _registry_estimate(labels, self._entries[ref])
        self._by_labels[labels] = ref
        self.alive[ref] = True
        self.postings.add(ref, labels)
        self._unsorted.append(ref)
        self._rank = None

    def get_or_create(self, series: Sequence[Labels]) -> I64:
        """Refs for ``series``, creating the missing ones (not yet logged to the WAL)."""
        out = np.empty(len(series), np.int64)
        by_labels = self._by_labels
        for i, ls in enumerate(series):
            ref = by_labels.get(ls)
            if ref is None:
                if not ls:
                    raise BadDataError(f"series {i}: empty label set")
                ref = len(self._labels)
                self._register(ref, ls)
            out[i] = ref
        return out

    def set_series(self, refs: Sequence[int], labels: Sequence[Labels]) -> dict[int, int]:
        """Recreate series with their WAL refs (replay); a ref already alive is left alone.

        Returns aliases ``{ref: live_ref}`` for records that define a label set already
        alive under another ref (a series garbage-collected and created again before the
        next checkpoint); the caller maps the samples of ``ref`` to ``live_ref``.
        """
        aliases: dict[int, int] = {}
        for ref, ls in zip(refs, labels):
            if ref < len(self._labels) and self._labels[ref] is not None and self.alive[ref]:
                continue
            other = self._by_labels.get(ls)
            if other is not None and other != ref:
                aliases[ref] = other
                continue
            self._register(ref, ls)
            self.logged[ref] = True
        return aliases

    def revive(self, refs: I64) -> I64:
        """Map refs of series removed by GC back to live refs (re-registering if needed).

        A Python step per distinct dead ref (a dict lookup), then one vectorised remap.
        """
        dead = ~self.alive[refs]
        if not dead.any():
            return refs
        old = np.unique(refs[dead])
        new = np.empty(len(old), np.int64)
        for i, ref in enumerate(old.tolist()):
            ls = self.labels_of(ref)
            now = self._by_labels.get(ls)
            if now is None:
                self._register(ref, ls)
                self.logged[ref] = False
                now = ref
            new[i] = now
        out: I64 = refs.copy()
        out[dead] = new[np.searchsorted(old, refs[dead])]
        return out

    def sort_by_labels(self, refs: I64) -> I64:
        """``refs`` ordered by their label sets, via a cached rank of every live series."""
        if self._unsorted:
            self._merge_unsorted()
        if self._rank is None:
            self._rank = np.zeros(len(self._labels), np.int64)
            self._rank[self._sorted_refs] = np.arange(len(self._sorted_refs))
        out: I64 = refs[np.argsort(self._rank[refs], kind="stable")]
        return out

    def _merge_unsorted(self) -> None:
        """Insert the refs registered since the last read into the label order: a Python
        sort of the new series only, a binary search each, one ``np.insert``."""
        key = self.labels_of
        new = sorted({r for r in self._unsorted if self.alive[r]}, key=key)
        self._unsorted = []
        order = self._sorted_refs.tolist()
        pos = [bisect.bisect_left(order, key(r), key=key) for r in new]
        self._sorted_refs = np.insert(self._sorted_refs, pos, new).astype(np.int64)

    def select_refs(self, matchers: Sequence[Matcher]) -> I64:
        return self.postings.select(matchers, self.live_refs)

    # ---------------------------------------------------------------- slabs

    def apply(self, refs: I64, ts: I64, values: F64, st: I64 | None = None) -> None:
        """Store accepted samples (commit order) with one scatter; re-sort series that got
        out-of-order samples. Exact duplicates of stored timestamps keep the stored sample."""
        if self.chunks.num_samples and len(refs):
            refs, ts, values, st = self._drop_cut_duplicates(refs, ts, values, st)
        n = len(refs)
        if n == 0:
            return
        self.generation += 1
        order = np.argsort(refs, kind="stable")
        r, t, v = refs[order], ts[order], values[order]
        first = np.empty(n, np.bool_)
        first[0] = True
        np.not_equal(r[1:], r[:-1], out=first[1:])
        gstart = np.flatnonzero(first)
        uref = r[gstart]
        counts = np.diff(np.append(gstart, n))
        prev = np.empty(n, np.int64)
        prev[1:] = t[:-1]
        prev[gstart] = self.last_t[uref]
        unsorted = t <= prev
        self._ensure_room(uref, counts)
        if st is not None and self.pool_st is None:
            self.pool_st = np.zeros(len(self.pool_ts), np.int64)
        pos = np.repeat(self.start[uref] + self.n[uref] - gstart, counts) + np.arange(n, dtype=np.int64)
        self.pool_ts[pos] = t
        self.pool_v[pos] = v
        if self.pool_st is not None:
            self.pool_st[pos] = st[order] if st is not None else 0
        self.n[uref] += counts
        if unsorted.any():
            self._resort(np.unique(r[unsorted]))
        tail = self.start[uref] + self.n[uref] - 1
        newer = self.pool_ts[tail] >= self.last_t[uref]  # else the newest sample is cut
        self.last_t[uref[newer]] = self.pool_ts[tail[newer]]
        self.last_v[uref[newer]] = self.pool_v[tail[newer]]
        full = uref[self.n[uref] >= self.chunk_samples + self.keep_samples]
        if len(full):
            self._cut(full)
        tmin = int(t.min())
        if tmin < self.watch_below:
            self.watch_hit = True
        self.min_time = min(self.min_time, tmin)
        self.max_time = max(self.max_time, int(t.max()))

    def _drop_cut_duplicates(self, refs: I64, ts: I64, values: F64, st: I64 | None) -> SampleBatch:
        """Drop samples whose timestamp a cut chunk (or the slab) already holds: the slab
        re-sort keeps the first of equal timestamps only within the slab. Appenders never
        send such samples (they are duplicates or conflicts); a replay might."""
        maybe = (ts <= self.last_t[refs]) & (self.nc[refs] > 0)
        if not maybe.any():
            return SampleBatch(refs, ts, values, st)
        idx = np.flatnonzero(maybe)
        found, _ = self.lookup(refs[idx], ts[idx])
        if not found.any():
            return SampleBatch(refs, ts, values, st)
        keep = np.ones(len(refs), np.bool_)
        keep[idx[found]] = False
        return SampleBatch(refs[keep], ts[keep], values[keep], None if st is None else st[keep])

    def _cut(self, refs: I64) -> None:
        """Compress the slabs of ``refs`` (sorted, unique) into head chunks, many series
        at a time, all but their newest ``keep_samples``, which move to the slab's front.
        Slabs grown beyond the usual size shrink back to it (the rest is abandoned)."""
        keep = self.keep_samples
        start = self.start[refs]
        lens = self.n[refs] - keep
        idx = ragged_arange(start, lens)
        st = self.pool_st[idx] if self.pool_st is not None else None
        self.chunks.add(refs, lens, self.pool_ts[idx], self.pool_v[idx], st)
        self.nc[refs] += lens
        self.cut_maxt[refs] = np.maximum(self.cut_maxt[refs], self.pool_ts[start + lens - 1])
        if keep:
            src = ragged_arange(start + lens, np.full(len(refs), keep, np.int64))
            dst = src - np.repeat(lens, keep)
            for col in self._columns():
                col[dst] = col[src]  # the right side is a copy: overlapping runs are safe
        self.n[refs] = keep
        big = refs[self.cap[refs] > self._slab_cap]
        if len(big):
            small = self._slab_cap if keep else 0  # a slab holding kept samples stays
            self.wasted += int(self.cap[big].sum()) - small * len(big)
            self.cap[big] = small
        if self.wasted > self.pool_end // 4:  # cheap now: the slabs just cut are small
            self.repack()

    def set_chunk_samples(self, n: int, keep: int | None = None) -> None:
        """Change how many samples a cut compresses and how many newest ones it leaves in
        the slab (``keep``, by default as many as a cut takes; tuning, benches, tests)."""
        self.chunk_samples = max(1, int(n))
        self.keep_samples = self.chunk_samples if keep is None else max(0, int(keep))
        total = np.array([self.chunk_samples + self.keep_samples], np.int64)
        self._slab_cap = int(round_cap(total)[0])

    def samples(self, refs: I64, mint: int, maxt: int) -> Samples:
        """Samples of ``refs`` (any order, unique) in ``[mint, maxt]``, copied, as ragged
        ``(offsets, ts, values, st)`` in the order of ``refs``: the cut chunks that hold
        them (decoded a group at a time) followed by the slabs."""
        return self.samples_later(refs, mint, maxt)()

    def samples_later(self, refs: I64, mint: int, maxt: int) -> Callable[[], Samples]:
        """:meth:`samples` in two steps: this call (under the lock) copies the slabs and
        picks the chunk groups; the function it returns decodes and merges them, and may
        run after the lock is released (groups are immutable), so checkpoints and block
        cuts do not hold appends up while they decode.

        When no series has a cut sample at or after ``mint`` (``cut_maxt``), as for the
        recent window of an instant query, the samples are gathered from the slabs at
        once, in the order of ``refs``: no plan, no decoding, no merge."""
        if len(refs) and int(self.cut_maxt[refs].max()) < mint:
            out = self._slab_samples(refs, mint, maxt)
            return lambda: out
        order = np.argsort(refs, kind="stable")
        sorted_refs = refs[order]
        rank = order.astype(np.int64)
        plan = self.chunks.plan(sorted_refs, mint, maxt)
        slab: list[Piece] = []
        offsets, ts, v, st = self._slab_samples(sorted_refs, mint, maxt)
        if len(ts):
            lens = np.diff(offsets)
            pos = np.flatnonzero(lens)
            slab.append(Piece(pos, lens[pos], ts, v, st))
        pool_st = self.pool_st is not None

        def finish() -> Samples:
            pieces = decode_plan(plan, mint, maxt, self.chunks.decoded) + slab
            with_st = pool_st or any(p.st is not None for p in pieces)
            return merge_pieces(sorted_refs, rank, pieces, with_st)

        return finish

    def _slab_samples(self, refs: I64, mint: int, maxt: int) -> Samples:
        """Copies of the slab samples of ``refs`` in ``[mint, maxt]``, in the order of
        ``refs``: short slabs are gathered whole and masked by time (a few array calls),
        long ones (a large batch or a tuned cut size) cut by binary search."""
        n = self.n[refs]
        start = self.start[refs]
        if len(n) and int(n.max()) > _GATHER_MAX:
            lo = self.slab_search(refs, np.full(len(refs), mint, np.int64))
            lens = self.slab_search(refs, np.full(len(refs), maxt, np.int64), right=True) - lo
            idx = ragged_arange(start + lo, lens)
            ts = self.pool_ts[idx]
        else:
            idx = ragged_arange(start, n)
            ts = self.pool_ts[idx]
            inside = ts >= mint
            inside &= ts <= maxt
            lens = n
            if not inside.all():
                idx, ts = idx[inside], ts[inside]
                lens = np.bincount(segment_ids(n)[inside], minlength=len(refs)).astype(np.int64)
        offsets = np.zeros(len(refs) + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        st = self.pool_st[idx] if self.pool_st is not None else None
        return Samples(offsets, ts, self.pool_v[idx], st)

    def in_range(self, refs: I64, mint: int, maxt: int) -> np.ndarray:
        """Whether each of ``refs`` (unique) has a sample in ``[mint, maxt]``, decoding as
        little as possible (for label queries over a time range)."""
        return self.in_range_later(refs, mint, maxt)()

    def in_range_later(self, refs: I64, mint: int, maxt: int) -> Callable[[], np.ndarray]:
        """:meth:`in_range` in two steps, like :meth:`samples_later`: this call (under the
        lock) searches the slabs and picks the chunk groups; the function returned decodes
        the timestamps of groups straddling an end, and may run without the lock."""
        order = np.argsort(refs, kind="stable")
        sorted_refs = refs[order]
        chunked = self.chunks.series_in_range_later(sorted_refs, mint, maxt)
        in_slab = np.zeros(len(refs), np.bool_)
        has = self.n[sorted_refs] > 0
        if has.any():
            o = sorted_refs[has]
            lo = self.slab_search(o, np.full(len(o), mint, np.int64))
            hi = self.slab_search(o, np.full(len(o), maxt, np.int64), right=True)
            in_slab[np.flatnonzero(has)[hi > lo]] = True

        def finish() -> np.ndarray:
            out = np.empty(len(refs), np.bool_)
            out[order] = chunked() | in_slab
            return out

        return finish

    def lookup(self, refs: I64, t: I64) -> tuple[np.ndarray, F64]:
        """Whether a sample at ``(refs[i], t[i])`` is stored, and its value where it is."""
        found = np.zeros(len(refs), np.bool_)
        value = np.zeros(len(refs), np.float64)
        if len(refs) == 0:
            return found, value
        u = np.unique(refs)
        offsets, ts, vals, _ = self.samples(u, int(t.min()), int(t.max()))
        k = np.searchsorted(u, refs)
        lo, hi = offsets[k].copy(), offsets[k + 1].copy()
        while True:  # one binary search per element, vectorised
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) >> 1
            go = active & (ts[np.where(active, mid, 0)] < t)
            lo = np.where(go, mid + 1, lo)
            hi = np.where(active & ~go, mid, hi)
        found = lo < offsets[k + 1]
        found[found] = ts[lo[found]] == t[found]
        value[found] = vals[lo[found]]
        return found, value

    def delete(self, refs: I64, mint: int, maxt: int) -> int:
        """Remove samples in ``[mint, maxt]`` of ``refs``; returns how many were removed.

        Deletion is physical (the WAL's tombstone record replays it), and each series'
        newest sample is recomputed, so a sample appended later into the deleted range is
        stored and visible. Prometheus instead masks the range with head tombstones until
        the head is compacted, hiding such later samples too; see docs/storage.md.
        """
        refs = np.unique(refs[self.has_samples(refs)])
        lens = self.n[refs]
        idx = ragged_arange(self.start[refs], lens)
        t = self.pool_ts[idx]
        keep = (t < mint) | (t > maxt)
        removed = int(len(keep) - keep.sum())
        if removed:
            self._rewrite(refs, keep, idx, lens)
        gone = self.chunks.remove(refs[self.nc[refs] > 0], mint, maxt)
        if len(gone):
            self._uncount(gone)
            removed += len(gone)
        if removed:
            self._refresh_last(refs)
            self._recompute_bounds()
            self.generation += 1
        return removed

    def _uncount(self, gone: I64) -> None:
        """Take removed cut samples (one ref each) off ``nc``."""
        u, c = np.unique(gone, return_counts=True)
        self.nc[u] -= c
        self.cut_maxt[u[self.nc[u] == 0]] = MIN_TIME

    def _refresh_last(self, refs: I64) -> None:
        """Recompute the newest sample of ``refs`` (sorted, unique) from slabs and chunks."""
        offsets, ts, vals, _ = self.samples(refs, MIN_TIME, MAX_TIME)
        has = offsets[1:] > offsets[:-1]
        tail = np.maximum(offsets[1:] - 1, 0)
        self.last_t[refs] = np.where(has, ts[tail] if len(ts) else MIN_TIME, MIN_TIME)
        self.last_v[refs] = np.where(has, vals[tail] if len(ts) else 0.0, 0.0)

    def truncate(self, mint: int) -> int:
        """Drop samples older than ``mint`` and garbage-collect series left empty.

        Returns the number of series removed. ``min_valid_time`` becomes ``mint``.
        """
        refs = np.flatnonzero(self.n[: len(self._labels)] > 0).astype(np.int64)
        lens = self.n[refs]
        idx = ragged_arange(self.start[refs], lens)
        keep = self.pool_ts[idx] >= mint
        if not keep.all():
            self._rewrite(refs, keep, idx, lens)
        if mint > MIN_TIME:
            gone = self.chunks.remove(None, MIN_TIME, mint - 1)
            if len(gone):
                self._uncount(gone)
        self.min_valid_time = max(self.min_valid_time, mint)
        # Empty series go, also ones an open appender created: its commit revives them.
        dead = np.flatnonzero(self.alive & (self.n == 0) & (self.nc == 0))
        if len(dead):
            dead_labels = [self.labels_of(r) for r in dead.tolist()]
            self._registry_bytes -= sum(
                _registry_estimate(ls, self._entries[r]) for ls, r in zip(dead_labels, dead.tolist())
            )
            self.postings.remove(set(dead.tolist()), dead_labels)
            for ls in dead_labels:
                del self._by_labels[ls]
            self.alive[dead] = False
            self.logged[dead] = False
            self.wasted += int(self.cap[dead].sum())
            self.cap[dead] = 0
            self.last_t[dead] = MIN_TIME
            self._sorted_refs = self._sorted_refs[self.alive[self._sorted_refs]]
            self._rank = None
        if self.wasted > self.pool_end // 2:
            self.repack()
        self._recompute_bounds()
        self.generation += 1
        return len(dead)

    def _recompute_bounds(self) -> None:
        self.min_time, self.max_time = self.chunks.time_range()
        refs = np.flatnonzero(self.n[: len(self._labels)] > 0)
        if len(refs):
            self.min_time = min(self.min_time, int(self.pool_ts[self.start[refs]].min()))
            self.max_time = max(self.max_time, int(self.pool_ts[self.start[refs] + self.n[refs] - 1].max()))

    def appendable_min_valid_time(self) -> int:
        """Oldest in-order timestamp accepted (Prometheus ``appendableMinValidTime``):
        half a chunk range behind the newest sample, and never inside a persisted block."""
        if self.max_time == MIN_TIME:
            return self.min_valid_time
        return max(self.min_valid_time, self.max_time - self.chunk_range // 2)

    def memory_bytes(self) -> int:
        """Resident size estimate: the allocated pool columns (free space included), the
        per-series arrays, the compressed chunks, and the registry (labels, postings, maps;
        see ``_registry_estimate``, calibrated with tracemalloc by bench/head_memory.py)."""
        cols = sum(c.nbytes for c in self._columns())
        per_series = sum(
            a.nbytes
            for a in (
                self.alive,
                self.logged,
                self.start,
                self.cap,
                self.n,
                self.nc,
                self.cut_maxt,
                self.last_t,
                self.last_v,
            )
        )
        sorted_refs = self._sorted_refs.nbytes + (0 if self._rank is None else self._rank.nbytes)
        return cols + per_series + sorted_refs + self.chunks.nbytes + self._registry_bytes

    def stats(self) -> dict[str, int]:
        """Head figures for ``/api/v1/status/tsdb`` and self-metrics."""
        return {
            "num_series": self.num_series,
            "num_samples": self.num_samples,
            "min_time": self.min_time,
            "max_time": self.max_time,
            "memory_bytes": self.memory_bytes(),
            "slab_bytes": sum(c.nbytes for c in self._columns()),
            "chunk_bytes": self.chunks.nbytes,
            "chunk_samples": self.chunks.num_samples,
            "chunk_groups": len(self.chunks.groups),
            "num_chunks": self.chunks.num_series_chunks + int(np.count_nonzero(self.n[: len(self._labels)])),
        }


def _registry_estimate(labels: Labels, entry: bytes) -> int:
    """Bytes a series costs in the registry: its ``Labels`` (strings and tuples), the
    label-set map and the ref lists, the postings entries, and its cached WAL entry.
    A model, calibrated against tracemalloc (bench/head_memory.py): ~90 B of object
    overhead per label pair plus the characters, ~400 B per series for the maps."""
    chars = sum(len(n) + len(v) for n, v in labels)
    return 400 + 90 * len(labels) + chars + len(entry) + 33
