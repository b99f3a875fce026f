"""The head: recent samples in memory, in per-series slabs of one big pool.

Series registry: ``Labels -> ref`` (refs are dense ints, never reused while the DB is open,
and kept across restarts by the WAL), with an in-memory postings index for matchers.

Samples: every series owns a contiguous slab ``[start, start + cap)`` of three pooled
columns (``pool_ts``, ``pool_v`` and, once a start timestamp was seen, ``pool_st``);
``n[ref]`` says how many are filled. Slabs are always sorted by time. A batch is written
with one scatter (``np.argsort`` by ref, per-ref counts, fancy indexing); a series whose
slab is full moves to a slab twice as large at the end of the pool, and the pool is
repacked when abandoned slabs outweigh live ones. Out-of-order samples (admitted by the
out-of-order window) are appended too and the few series that received them are re-sorted.

Thread-safety: the owner (``DB``) holds ``Head.lock`` around every mutation and every read
that copies data out; the head itself takes no locks.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

import numpy as np

from signalfire._types import F64, I64, MAX_TIME, MIN_TIME, Bool
from signalfire.errors import BadDataError
from signalfire.labels import Labels, Matcher
from signalfire.storage import AppendStats
from signalfire.tsdb.index.postings import select_postings, union_sorted
from signalfire.tsdb.wal import records

_MIN_CAP = 16


def ragged_index(starts: I64, lens: I64) -> I64:
    """Concatenated ``arange(starts[i], starts[i] + lens[i])`` for all i (int64[sum(lens)])."""
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64)
    ends = np.cumsum(lens)
    return np.repeat(starts - (ends - lens), lens) + np.arange(total, dtype=np.int64)


def _round_cap(need: I64) -> I64:
    """Next power of two at or above ``need`` (at least _MIN_CAP): amortised O(1) growth."""
    x = np.maximum(need, _MIN_CAP).astype(np.float64)
    return np.left_shift(np.int64(1), np.ceil(np.log2(x)).astype(np.int64))


class HeadPostings:
    """Label name -> value -> refs for the head; a ``PostingsIndex`` for ``select_postings``.

    Refs are appended in increasing order, so every list stays sorted without sorting.
    Matchers are evaluated by the block index's ``select_postings``, so head and blocks
    share one implementation of Prometheus's matcher semantics.
    """

    def __init__(self) -> None:
        self._index: dict[str, dict[str, list[int]]] = {}
        self._sorted: dict[str, list[str]] = {}  # sorted values per name, rebuilt lazily
        self._live: Callable[[], I64] = lambda: np.empty(0, np.int64)

    def add(self, ref: int, labels: Labels) -> None:
        for name, value in labels:
            values = self._index.setdefault(name, {})
            if value not in values:
                values[value] = []
                self._sorted.pop(name, None)
            values[value].append(ref)

    def remove(self, dead: set[int], labels: Sequence[Labels]) -> None:
        """Drop ``dead`` refs; ``labels`` are their label sets (to visit only their lists)."""
        touched = {(n, v) for ls in labels for n, v in ls}
        for name, value in touched:
            values = self._index.get(name)
            if values is None or value not in values:
                continue
            kept = [r for r in values[value] if r not in dead]
            if kept:
                values[value] = kept
                continue
            del values[value]
            self._sorted.pop(name, None)
            if not values:
                del self._index[name]

    def label_names(self) -> list[str]:
        return sorted(self._index)

    def label_values(self, name: str) -> list[str]:
        return list(self.label_value_list(name))

    # PostingsIndex protocol (signalfire.tsdb.index.postings)

    def all_postings(self) -> I64:
        return self._live()

    def label_value_list(self, name: str) -> Sequence[str]:
        cached = self._sorted.get(name)
        if cached is None:
            cached = self._sorted[name] = sorted(self._index.get(name, ()))
        return cached

    def postings_union(self, name: str, value_idx: I64) -> I64:
        values = self._index.get(name, {})
        names = self.label_value_list(name)
        return union_sorted([np.asarray(values[names[int(i)]], np.int64) for i in value_idx])

    def select(self, matchers: Sequence[Matcher], live: Callable[[], I64]) -> I64:
        """Sorted live refs whose labels satisfy every matcher."""
        self._live = live
        return select_postings(self, matchers)


class Head:
    """Series registry plus sample slabs. See the module docstring for the layout."""

    def __init__(self, chunk_range: int, pool_size: int = 1 << 16) -> None:
        self.chunk_range = chunk_range
        self.lock = threading.RLock()
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
        return int(self.n[: len(self._labels)].sum())

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

    def _reserve_pool(self, extra: int) -> bool:
        """Make room for ``extra`` more pooled samples; True when it repacked (which
        moves and resizes slabs, so the caller must recompute what it needs)."""
        if self.pool_end + extra <= len(self.pool_ts):
            return False
        if self.wasted > self.pool_end // 2:
            self.repack()
            return True
        size = max(len(self.pool_ts) * 3 // 2, self.pool_end + extra)  # 1.5x: less idle memory
        for name in ("pool_ts", "pool_v", "pool_st"):
            arr = getattr(self, name)
            if arr is None:
                continue
            grown = np.zeros(size, arr.dtype) if name == "pool_st" else np.empty(size, arr.dtype)
            grown[: self.pool_end] = arr[: self.pool_end]
            setattr(self, name, grown)
        return False

    def _columns(self) -> list[np.ndarray]:
        return [a for a in (self.pool_ts, self.pool_v, self.pool_st) if a is not None]

    def repack(self) -> None:
        """Copy every live slab into a fresh, dense pool (drops abandoned slabs)."""
        refs = np.flatnonzero(self.cap[: len(self._labels)] > 0)
        caps = _round_cap(self.n[refs] + 1)
        caps[self.n[refs] == 0] = 0
        new_start = np.cumsum(caps) - caps
        src = ragged_index(self.start[refs], self.n[refs])
        dst = ragged_index(new_start, self.n[refs])
        size = max(int(caps.sum()) * 2, 1 << 16)
        for name in ("pool_ts", "pool_v", "pool_st"):
            arr = getattr(self, name)
            if arr is None:
                continue
            fresh = np.zeros(size, arr.dtype)
            fresh[dst] = arr[src]
            setattr(self, name, fresh)
        self.start[refs] = new_start
        self.cap[refs] = caps
        self.pool_end = int(caps.sum())
        self.wasted = 0

    def _ensure_room(self, refs: I64, counts: I64) -> None:
        """Give every series in ``refs`` (unique) room for ``counts`` more samples."""
        while True:
            need = self.n[refs] + counts
            grow = need > self.cap[refs]
            if not grow.any():
                return
            new_cap = _round_cap(need[grow])
            if not self._reserve_pool(int(new_cap.sum())):
                break  # a repack tightened slabs: judge again (at most once, waste is 0 now)
        g = refs[grow]
        new_start = self.pool_end + np.cumsum(new_cap) - new_cap
        old_n = self.n[g]
        if old_n.any():
            src = ragged_index(self.start[g], old_n)
            dst = ragged_index(new_start, old_n)
            for col in self._columns():
                col[dst] = col[src]
        self.wasted += int(self.cap[g].sum())
        self.start[g] = new_start
        self.cap[g] = new_cap
        self.pool_end += int(new_cap.sum())

    def apply(self, refs: I64, ts: I64, values: F64, st: I64 | None = None) -> None:
        """Store accepted samples (commit order) with one scatter; re-sort series that got
        out-of-order samples. Exact duplicates of stored timestamps keep the stored sample."""
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
        self.last_t[uref] = self.pool_ts[tail]
        self.last_v[uref] = self.pool_v[tail]
        tmin = int(t.min())
        if tmin < self.watch_below:
            self.watch_hit = True
        self.min_time = min(self.min_time, tmin)
        self.max_time = max(self.max_time, int(t.max()))

    def _resort(self, refs: I64) -> None:
        """Sort the slabs of ``refs`` by time and drop repeated timestamps (first one wins)."""
        lens = self.n[refs]
        idx = ragged_index(self.start[refs], lens)
        owner = np.repeat(np.arange(len(refs)), lens)
        t = self.pool_ts[idx]
        order = np.lexsort((t, owner))  # stable: stored samples precede new ones at equal t
        t, owner = t[order], owner[order]
        keep = np.ones(len(t), np.bool_)
        keep[1:] = (t[1:] != t[:-1]) | (owner[1:] != owner[:-1])
        new_lens = np.bincount(owner[keep], minlength=len(refs)).astype(np.int64)
        dst = ragged_index(self.start[refs], new_lens)
        for col in self._columns():
            col[dst] = col[idx[order[keep]]]
        self.n[refs] = new_lens

    def _rewrite(self, refs: I64, keep: Bool, idx: I64, lens: I64) -> None:
        """Keep only the samples ``keep`` of ``refs`` (gathered at ``idx``), compacting slabs."""
        owner = np.repeat(np.arange(len(refs)), lens)
        new_lens = np.bincount(owner[keep], minlength=len(refs)).astype(np.int64)
        dst = ragged_index(self.start[refs], new_lens)
        for col in self._columns():
            col[dst] = col[idx[keep]]
        self.n[refs] = new_lens
        self.generation += 1

    def delete(self, refs: I64, mint: int, maxt: int) -> int:
        """Remove samples in ``[mint, maxt]`` of ``refs``; returns how many were removed.

        Deletion is physical (the WAL's tombstone record replays it), and each series'
        newest sample is recomputed, so a sample appended later into the deleted range is
        stored and visible. Prometheus instead masks the range with head tombstones until
        the head is compacted, hiding such later samples too; see docs/storage.md.
        """
        refs = refs[self.n[refs] > 0]
        lens = self.n[refs]
        idx = ragged_index(self.start[refs], lens)
        t = self.pool_ts[idx]
        keep = (t < mint) | (t > maxt)
        removed = int(len(keep) - keep.sum())
        if removed:
            self._rewrite(refs, keep, idx, lens)
            self._refresh_last(refs)
            self._recompute_bounds()
        return removed

    def _refresh_last(self, refs: I64) -> None:
        has = self.n[refs] > 0
        tail = self.start[refs] + np.maximum(self.n[refs] - 1, 0)
        self.last_t[refs] = np.where(has, self.pool_ts[tail], MIN_TIME)
        self.last_v[refs] = np.where(has, self.pool_v[tail], 0.0)

    def truncate(self, mint: int) -> int:
        """Drop samples older than ``mint`` and garbage-collect series left empty.

        Returns the number of series removed. ``min_valid_time`` becomes ``mint``.
        """
        refs = np.flatnonzero(self.n[: len(self._labels)] > 0).astype(np.int64)
        lens = self.n[refs]
        idx = ragged_index(self.start[refs], lens)
        keep = self.pool_ts[idx] >= mint
        if not keep.all():
            self._rewrite(refs, keep, idx, lens)
        self.min_valid_time = max(self.min_valid_time, mint)
        # Empty series go, also ones an open appender created: its commit revives them.
        dead = np.flatnonzero(self.alive & (self.n == 0))
        if len(dead):
            dead_labels = [self.labels_of(r) for r in dead.tolist()]
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
        refs = np.flatnonzero(self.n[: len(self._labels)] > 0)
        if len(refs) == 0:
            self.min_time, self.max_time = MAX_TIME, MIN_TIME
            return
        self.min_time = int(self.pool_ts[self.start[refs]].min())
        self.max_time = int(self.pool_ts[self.start[refs] + self.n[refs] - 1].max())

    def slab_search(self, refs: I64, x: I64, right: bool = False) -> I64:
        """Per-element ``np.searchsorted(slab(refs[i]), x[i], side)``, vectorised over i.

        A binary search over all slabs at once: ~log2(longest slab) whole-array steps.
        """
        start = self.start[refs]
        lo = np.zeros(len(refs), np.int64)
        hi = self.n[refs].copy()
        while True:
            active = lo < hi
            if not active.any():
                return lo
            mid = (lo + hi) >> 1
            vals = self.pool_ts[np.where(active, start + mid, 0)]
            go = active & ((vals <= x) if right else (vals < x))
            lo = np.where(go, mid + 1, lo)
            hi = np.where(active & ~go, mid, hi)

    def appendable_min_valid_time(self) -> int:
        """Oldest in-order timestamp accepted (Prometheus ``appendableMinValidTime``):
        half a chunk range behind the newest sample, and never inside a persisted block."""
        if self.max_time == MIN_TIME:
            return self.min_valid_time
        return max(self.min_valid_time, self.max_time - self.chunk_range // 2)

    def memory_bytes(self) -> int:
        """Rough resident size: pooled columns, per-series arrays, and ~200 B per label set."""
        cols = sum(c.nbytes for c in self._columns())
        per_series = sum(
            a.nbytes
            for a in (self.alive, self.logged, self.start, self.cap, self.n, self.last_t, self.last_v)
        )
        return cols + per_series + 200 * self.num_series

    def stats(self) -> dict[str, int]:
        """Head figures for ``/api/v1/status/tsdb`` and self-metrics."""
        return {
            "num_series": self.num_series,
            "num_samples": self.num_samples,
            "min_time": self.min_time,
            "max_time": self.max_time,
            "memory_bytes": self.memory_bytes(),
        }
