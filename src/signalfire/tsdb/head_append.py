"""Appending to the head: classify a batch, log it to the WAL, scatter it into slabs.

Every sample of a batch gets one code, decided with whole-array operations and exactly the
rules of Prometheus's ``memSeries.appendable`` applied in batch order:

* ``t >= minValidTime`` and (a fresh series or ``t`` > the series' newest timestamp):
  appended in order;
* ``t`` equal to the newest timestamp: a bit-identical value is an accepted *duplicate*
  (stored once, counted in ``AppendStats.duplicate``), another value is a
  ``duplicate_conflict`` ("duplicate sample for timestamp");
* otherwise, with an out-of-order window ``w > 0``: admitted when ``t >= headMaxt - w``
  (checked against every stored timestamp for duplicates), else *too old*;
* otherwise: *out of bounds* when ``t < minValidTime``, else *out of order*.

"Newest timestamp" includes earlier samples of the same batch, so a batch behaves exactly
like the same samples appended one by one. ``minValidTime`` is
``Head.appendable_min_valid_time()``; ``headMaxt`` is the head's max time. Like Prometheus's
``headAppender``, an appender fixes both (and the window) when it is created, so a commit
re-judges its samples only against what other commits did to the same series.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from signalfire._types import F64, I64, MIN_TIME
from signalfire.errors import BadDataError
from signalfire.labels import Labels
from signalfire.storage import AppendStats
from signalfire.tsdb.head import Head, SampleBatch, join_batches
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.segment import WAL

APPEND, DUPLICATE, CONFLICT, OOO_OK, OUT_OF_ORDER, OUT_OF_BOUNDS, TOO_OLD = range(7)
ACCEPTED = (APPEND, OOO_OK)


def _group_prev_max(r: I64, t: I64, gstart_mask: np.ndarray) -> tuple[I64, np.ndarray]:
    """For samples grouped by ref (contiguous, batch order kept inside a group): index of the
    earliest earlier sample of the group holding the group's running max time, or -1."""
    n = len(t)
    idx = np.arange(n, dtype=np.int64)
    same = ~gstart_mask
    if not same.any() or np.all(t[1:][same[1:]] > t[:-1][same[1:]]):
        # Common case (each ref once, or increasing): the previous sample holds the max.
        prev = idx - 1
        prev[gstart_mask] = -1
        return prev, prev >= 0
    # Rank by (ref, t, -position): the running max of ranks inside a group points at the
    # largest earlier time, and among equal times at the earliest sample, the one that
    # was accepted (later equal ones were duplicates or conflicts).
    order = np.lexsort((-idx, t, r))
    rank = np.empty(n, np.int64)
    rank[order] = idx
    cm = np.maximum.accumulate(rank)
    prev_rank = np.empty(n, np.int64)
    prev_rank[0] = -1
    prev_rank[1:] = cm[:-1]
    prev_rank[gstart_mask] = -1
    has = prev_rank >= 0
    prev = np.where(has, order[np.maximum(prev_rank, 0)], -1)
    return prev, has


def classify(
    head: Head,
    refs: I64,
    ts: I64,
    values: F64,
    base_t: I64,
    base_v: F64,
    bounds: tuple[int, int, int],
) -> np.ndarray:
    """Codes (int8[n], batch order) for one batch. ``base_t``/``base_v`` are each sample's
    series newest time and value before the batch (``MIN_TIME`` for an empty series);
    ``bounds`` is ``(min_valid_time, head_max_time, ooo_window)`` (see :func:`bounds_of`)."""
    n = len(refs)
    codes = np.empty(n, np.int8)
    if n == 0:
        return codes
    order = np.argsort(refs, kind="stable")
    r, t, v = refs[order], ts[order], values[order]
    bt, bv = base_t[order], base_v[order]
    gstart = np.empty(n, np.bool_)
    gstart[0] = True
    np.not_equal(r[1:], r[:-1], out=gstart[1:])
    prev, has_prev = _group_prev_max(r, t, gstart)
    pt = np.where(has_prev, t[prev], MIN_TIME)
    eff_max = np.maximum(bt, pt)
    ref_v = np.where(has_prev & (pt > bt), v[prev], bv)
    fresh = (bt == MIN_TIME) & ~has_prev

    min_valid, head_maxt, ooo_window = bounds
    valid = t >= min_valid
    inorder = valid & (fresh | (t > eff_max))
    equal = valid & ~fresh & (t == eff_max)
    same_bits = v.view(np.uint64) == ref_v.view(np.uint64)
    c = np.full(n, OUT_OF_ORDER, np.int8)
    c[inorder] = APPEND
    c[equal & same_bits] = DUPLICATE
    c[equal & ~same_bits] = CONFLICT
    rest = ~(inorder | equal)
    if ooo_window > 0:
        floor = MIN_TIME if head_maxt == MIN_TIME else head_maxt - ooo_window
        c[rest & (t >= floor)] = OOO_OK
        c[rest & (t < floor)] = TOO_OLD
    else:
        c[rest & (t < min_valid)] = OUT_OF_BOUNDS
    if ooo_window > 0 and (c == OOO_OK).any():
        _ooo_duplicates(head, r, t, v, c)
    codes[order] = c
    return codes


def bounds_of(head: Head, ooo_window: int) -> tuple[int, int, int]:
    """The limits an appender judges by: (appendable minimum, head max time, window)."""
    return head.appendable_min_valid_time(), head.max_time, ooo_window


def _ooo_duplicates(head: Head, r: I64, t: I64, v: F64, c: np.ndarray) -> None:
    """Turn admitted out-of-order samples that hit an existing timestamp into duplicates
    (same bits) or conflicts: first against the head (slabs and cut chunks), then against earlier
    accepted samples of the batch."""
    cand = np.flatnonzero(c == OOO_OK)
    found, stored = head.lookup(r[cand], t[cand])
    if found.any():
        hit = cand[found]
        same = v[hit].view(np.uint64) == stored[found].view(np.uint64)
        c[hit[same]] = DUPLICATE
        c[hit[~same]] = CONFLICT
    acc = np.flatnonzero((c == APPEND) | (c == OOO_OK))
    o = np.lexsort((acc, t[acc], r[acc]))
    a = acc[o]
    rep = np.zeros(len(a), np.bool_)
    rep[1:] = (r[a[1:]] == r[a[:-1]]) & (t[a[1:]] == t[a[:-1]])
    if rep.any():
        first = a[np.maximum.accumulate(np.where(rep, 0, np.arange(len(a))))]
        later, orig = a[rep], first[rep]
        same = v[later].view(np.uint64) == v[orig].view(np.uint64)
        c[later[same]] = DUPLICATE
        c[later[~same]] = CONFLICT


def count(codes: np.ndarray) -> AppendStats:
    bc = np.bincount(codes.astype(np.int64), minlength=7)
    return AppendStats(
        appended=int(bc[APPEND] + bc[OOO_OK]),
        out_of_order=int(bc[OUT_OF_ORDER]),
        out_of_bounds=int(bc[OUT_OF_BOUNDS]),
        too_old=int(bc[TOO_OLD]),
        duplicate=int(bc[DUPLICATE]),
        duplicate_conflict=int(bc[CONFLICT]),
    )


class _Staged(NamedTuple):
    """A batch staged by :meth:`HeadAppender.append_batch`, with its judgement."""

    samples: SampleBatch
    #: Per sample: APPEND, OOO_OK or the reason it is rejected (see :func:`classify`).
    codes: np.ndarray


class HeadAppender:
    """Stages batches for the head; ``commit`` logs them to the WAL, then applies them.

    Not thread-safe; use once. ``append_batch`` judges samples against the head as it is
    plus this appender's earlier batches; ``commit`` judges again under the head's locks
    (other appenders may have committed meanwhile) and only what passes is logged and
    stored. ``Head.counters`` adds up the final outcome of every committed sample.
    """

    def __init__(self, head: Head, wal: WAL | None, ooo_window: Callable[[], int]) -> None:
        self._head = head
        self._wal = wal
        with head.lock:
            self._bounds = bounds_of(head, ooo_window())
        self._batches: list[_Staged] = []
        self._generation = -1
        self._ov_refs = np.empty(0, np.int64)  # newest staged in-order sample per ref
        self._ov_t = np.empty(0, np.int64)
        self._ov_v = np.empty(0, np.float64)
        self._ov_batches = 0  # staged batches folded into the overlay so far (lazily)
        self._done = False

    def refs(self, series: Sequence[Labels]) -> I64:
        """Refs for ``series``, creating new series in the head (slow path, per series)."""
        with self._head.lock:
            return self._head.get_or_create(series)

    def _check(self, refs: I64, ts: I64 | int, values: F64, st: I64 | None) -> SampleBatch:
        if self._done:
            raise BadDataError("append to an appender that was already committed or rolled back")
        refs = np.asarray(refs, np.int64)
        values = np.asarray(values, np.float64)
        ts_arr = np.full(len(refs), ts, np.int64) if np.ndim(ts) == 0 else np.asarray(ts, np.int64)
        if refs.ndim != 1 or len(ts_arr) != len(refs) or len(values) != len(refs):
            raise BadDataError(
                f"append_batch: refs, ts and values must be equal-length 1-D arrays "
                f"(got {len(refs)}, {len(ts_arr)}, {len(values)})"
            )
        if st is not None:
            st = np.asarray(st, np.int64)
            if len(st) != len(refs):
                raise BadDataError(f"append_batch: st has {len(st)} entries, want {len(refs)}")
        if len(refs) and (refs.min() < 0 or refs.max() >= len(self._head._labels)):
            bad = int(np.flatnonzero((refs < 0) | (refs >= len(self._head._labels)))[0])
            raise BadDataError(f"append_batch: sample {bad}: unknown series ref {int(refs[bad])}")
        return SampleBatch(refs, ts_arr, values, st)

    def append_batch(self, refs: I64, ts: I64 | int, values: F64, st: I64 | None = None) -> AppendStats:
        refs, ts_arr, values, st = self._check(refs, ts, values, st)
        head = self._head
        with head.lock:
            self._generation = head.generation
            base_t = head.last_t[refs]
            base_v = head.last_v[refs]
            while self._ov_batches < len(self._batches):  # only when a batch follows another
                b = self._batches[self._ov_batches]
                self._update_overlay(b.samples.refs, b.samples.ts, b.samples.values, b.codes)
                self._ov_batches += 1
            if len(self._ov_refs):
                i = np.minimum(np.searchsorted(self._ov_refs, refs), len(self._ov_refs) - 1)
                hit = (self._ov_refs[i] == refs) & (self._ov_t[i] > base_t)
                base_t = np.where(hit, self._ov_t[i], base_t)
                base_v = np.where(hit, self._ov_v[i], base_v)
            codes = classify(head, refs, ts_arr, values, base_t, base_v, self._bounds)
        self._batches.append(_Staged(SampleBatch(refs, ts_arr, values, st), codes))
        return count(codes)

    def _update_overlay(self, refs: I64, ts: I64, values: F64, codes: np.ndarray) -> None:
        ok = codes == APPEND
        r = np.concatenate([self._ov_refs, refs[ok]])
        t = np.concatenate([self._ov_t, ts[ok]])
        v = np.concatenate([self._ov_v, values[ok]])
        o = np.lexsort((t, r))
        r, t, v = r[o], t[o], v[o]
        last = np.ones(len(r), np.bool_)
        last[:-1] = r[1:] != r[:-1]
        self._ov_refs, self._ov_t, self._ov_v = r[last], t[last], v[last]

    def _staged(self) -> _Staged:
        b = self._batches
        if len(b) == 1:
            return b[0]
        return _Staged(join_batches([x.samples for x in b]), np.concatenate([x.codes for x in b]))

    def commit(self) -> None:
        """Log accepted samples (and series first seen in them) as one WAL record, then
        apply them. When this returns, a process crash cannot lose the batch.

        Under ``head.write_lock`` (writers one at a time, so WAL order is head order):
        judge under ``head.lock``, release it, encode and write (and fsync) the record,
        take it again to scatter. Readers pick between the two sections and see the head
        as of the previous commit; nothing a judgement read can change meanwhile, since
        every other mutation of samples or series liveness is a writer too."""
        if self._done:
            return
        self._done = True
        if not self._batches:
            return
        staged = self._staged()
        (refs, ts, values, st), codes = staged.samples, staged.codes
        head = self._head
        with head.write_lock:
            with head.lock:
                revived = head.revive(refs)
                stale = self._generation != head.generation or len(self._batches) > 1 or revived is not refs
                refs = revived
                if stale:
                    codes = classify(
                        head, refs, ts, values, head.last_t[refs], head.last_v[refs], self._bounds
                    )
                head.counters.add(count(codes))
                acc = (codes == APPEND) | (codes == OOO_OK)
                if not acc.all():
                    refs, ts, values = refs[acc], ts[acc], values[acc]
                    st = st[acc] if st is not None else None
                if len(refs) == 0:
                    return
                new = np.unique(refs[~head.logged[refs]])
                entries = head.series_entries(new) if self._wal is not None and len(new) else []
            if self._wal is not None:
                series = records.encode_series_entries(entries) if entries else b""
                payload = records.encode_commit(series, records.encode_samples(refs, ts, values, st))
                self._wal.log(records.REC_COMMIT, payload)
            with head.lock:
                head.logged[new] = True
                head.apply(refs, ts, values, st)
        self._batches = []

    def rollback(self) -> None:
        """Drop the staged batches; their rejections still count (as in Prometheus)."""
        if not self._done and self._batches:
            rejected = count(self._staged().codes)
            rejected.appended = rejected.duplicate = 0
            with self._head.lock:
                self._head.counters.add(rejected)
        self._done = True
        self._batches = []

    def __enter__(self) -> HeadAppender:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
