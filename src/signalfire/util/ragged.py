"""Ragged-array primitives shared by the query engine and its kernels.

Many series' samples live in three flat arrays, as in a SeriesSet: ``offsets[S+1]``,
``ts[N]`` and ``values[N]`` (series i owns ``[offsets[i], offsets[i+1])``, timestamps
strictly increasing inside a series). The functions here answer, for all series and
all evaluation steps at once, "where does step j fall inside series i" and "what is
the sum / count / min of each window", without a Python loop over samples or steps.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from signalfire._types import F64, I64, MAX_TIME, Bool

#: Up to this many samples × searches, one evaluation time is searched by counting
#: (:func:`_search_one_time`): fewer array operations, but a pass over the samples per
#: search, where the shifted-key search shares one key array; past it that search wins.
ONE_TIME_MAX_WORK = 1 << 15

#: Above this many series × distinct times the shifted-key trick could overflow int64;
#: :func:`searchsorted_ragged` then falls back to one searchsorted per series.
_INT64_SAFE = 2**62


def lengths(offsets: I64) -> I64:
    """Samples per series: ``offsets[1:] - offsets[:-1]``."""
    return np.diff(offsets)


def segment_ids(counts: I64) -> I64:
    """For each element of a ragged array whose segments hold ``counts[k]`` elements, the
    segment ``k`` it belongs to (int64[sum(counts)]): ``repeat(arange(K), counts)``."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def series_index(offsets: I64) -> I64:
    """For each of the N samples, the series it belongs to (int64[N])."""
    return segment_ids(np.diff(offsets))


def searchsorted_ragged(offsets: I64, ts: I64, queries: I64, side: str = "right") -> I64:
    """``np.searchsorted`` of every query time in every series, as absolute indices.

    ``queries`` is int64[T] (the same times for all series) or int64[S, T]. The result
    is int64[S, T]: for series i and step j the index into ``ts`` where ``queries[j]``
    would be inserted inside series i's own slice (so it lies in
    ``[offsets[i], offsets[i+1]]``).
    """
    return searchsorted_ragged_many(offsets, ts, [(queries, side)])[0]


def searchsorted_ragged_many(offsets: I64, ts: I64, searches: Sequence[tuple[I64, str]]) -> list[I64]:
    """Several :func:`searchsorted_ragged` calls over the same samples, sharing one key array.

    One searchsorted over ``clip(ts) + series_idx * span`` does all series at once: the
    per-series shift keeps each series' slice sorted and separate. Sample times are first
    clipped to just outside the queried span, which keeps the shift small and does not
    change any comparison with a query. Falls back to one searchsorted per series when
    the shifted keys could overflow int64.
    """
    S = len(offsets) - 1
    qs = [np.asarray(q, dtype=np.int64) for q, _ in searches]
    T = qs[0].shape[-1] if qs else 0
    if S == 0 or T == 0:
        return [np.zeros((S, T), np.int64) for _ in qs]
    if T == 1 and len(ts) * len(qs) <= ONE_TIME_MAX_WORK and all(q.ndim == 1 for q in qs):
        return [_search_one_time(offsets, ts, int(q[0]), side) for q, (_, side) in zip(qs, searches)]
    steps = [_grid_step(q) for q in qs]
    if all(st is not None for st in steps):
        row_key = np.repeat(np.arange(0, S * (T + 1), T + 1, dtype=np.int64), np.diff(offsets))
        return [
            _grid_counts(offsets, ts, int(q[0]), st, T, side, row_key)
            for q, st, (_, side) in zip(qs, steps, searches)
            if st is not None
        ]
    lo_b = min(int(q.min()) for q in qs) - 1
    hi_b = max(int(q.max()) for q in qs) + 1
    span = hi_b - lo_b + 1
    if span * S >= _INT64_SAFE or lo_b < -(2**62) or hi_b > 2**62:
        return [_searchsorted_per_series(offsets, ts, q, side) for q, (_, side) in zip(qs, searches)]
    # keys = clip(ts) - lo_b + series_idx * span, built with in-place steps.
    keys = np.clip(ts, lo_b, hi_b)
    keys -= lo_b
    keys += np.repeat(np.arange(0, S * span, span, dtype=np.int64), np.diff(offsets))
    shift = np.arange(0, S * span, span, dtype=np.int64)[:, None]
    out = []
    for q, (_, side) in zip(qs, searches):
        qk = (q - lo_b)[None, :] + shift if q.ndim == 1 else (q - lo_b) + shift
        out.append(np.searchsorted(keys, qk, side=side).astype(np.int64, copy=False))  # type: ignore[call-overload]
    return out


def _search_one_time(offsets: I64, ts: I64, t: int, side: str) -> I64:
    """:func:`searchsorted_ragged` of one time (a small instant query): each series'
    insertion point is its start plus how many of its samples sort before ``t``, from one
    comparison and one running count over the samples, a handful of array operations."""
    before = np.less_equal(ts, t) if side == "right" else np.less(ts, t)
    csum = np.zeros(len(ts) + 1, np.int64)
    np.cumsum(before, out=csum[1:])
    out: I64 = csum[offsets[1:]]
    out -= csum[offsets[:-1]]
    out += offsets[:-1]
    return out[:, None]


def _grid_step(q: I64) -> int | None:
    """The step of ``q`` when it is a regular grid of at least two times (a range
    query's steps), within a range where ``ts - q[0]`` cannot overflow; else None."""
    if q.ndim != 1 or len(q) < 2:
        return None
    step = int(q[1] - q[0])
    if step <= 0 or q[0] < -(2**61) or q[-1] > 2**61:
        return None
    if not np.array_equal(np.diff(q), np.full(len(q) - 1, step, np.int64)):
        return None
    return step


def _grid_counts(offsets: I64, ts: I64, q0: int, step: int, T: int, side: str, row_key: I64) -> I64:
    """:func:`searchsorted_ragged` for queries on a regular grid, by counting instead of
    searching: each sample is assigned the first step that counts it (a division), the
    per-(series, step) tallies come from one ``bincount`` and a running sum along the
    steps gives the insertion points. Work is linear in samples plus cells with
    sequential memory access, where binary search over millions of samples misses the
    cache at every probe."""
    S = len(offsets) - 1
    c = np.clip(ts, q0 - step, q0 + T * step)
    c -= q0
    if side == "right":
        # ts <= q0 + j*step  <=>  j >= ceil((ts - q0) / step)
        np.negative(c, out=c)
        c //= step
        np.negative(c, out=c)
    else:
        # ts < q0 + j*step  <=>  j >= floor((ts - q0) / step) + 1
        c //= step
        c += 1
    np.clip(c, 0, T, out=c)
    c += row_key
    counts = np.bincount(c, minlength=S * (T + 1)).reshape(S, T + 1)
    out = np.cumsum(counts[:, :T], axis=1)
    out += offsets[:-1, None]
    return out


def _searchsorted_per_series(offsets: I64, ts: I64, q: I64, side: str) -> I64:
    """Fallback of :func:`searchsorted_ragged` for extreme time spans: a loop over series,
    each iteration one vectorised searchsorted."""
    S = len(offsets) - 1
    out = np.empty((S, q.shape[-1]), np.int64)
    for i in range(S):
        a, b = int(offsets[i]), int(offsets[i + 1])
        qi = q if q.ndim == 1 else q[i]
        out[i] = np.searchsorted(ts[a:b], qi, side=side) + a  # type: ignore[call-overload]
    return out


def ragged_arange(starts: I64, lens: I64) -> I64:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lens)])`` without the loop."""
    lens = np.asarray(lens, np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64)
    shift = np.asarray(starts, np.int64) - (np.cumsum(lens) - lens)
    out: I64 = np.repeat(shift, lens)
    out += np.arange(total, dtype=np.int64)
    return out


def bisect_runs(ts: I64, starts: I64, lens: I64, targets: int | I64, side: str = "left") -> I64:
    """For each sorted run ``ts[starts[k]:starts[k] + lens[k]]``, the absolute index where
    ``targets`` (one, or one per run) would be inserted (``side`` as in ``np.searchsorted``).

    A binary search of all runs in lockstep: log2(longest run) numpy steps over the runs,
    touching only the probed samples, so picking a few series out of a large column
    costs nothing in the column's size. (A first guess by interpolation, tried, settles
    most scrape-like runs but costs more array operations than it saves.)"""
    lo = np.asarray(starts, np.int64)
    n = np.asarray(lens, np.int64)
    if len(lo) == 0 or len(ts) == 0:
        return lo.copy()
    tgt = np.asarray(targets, np.int64)
    # "Right of t" compares with <= (not "left of t + 1", which overflows at MAX_TIME).
    before = np.less if side == "left" else np.less_equal
    last = len(ts) - 1
    for _ in range(int(n.max()).bit_length()):
        half = n >> 1
        mid = lo + half
        go = before(ts[np.minimum(mid, last)], tgt) & (n > 0)
        lo = np.where(go, mid + 1, lo)
        n = np.where(go, n - half - 1, half)
    return lo


#: Up to this many runs a Python loop of ``np.searchsorted`` on slices beats the lockstep search.
_FEW_RUNS = 16


def clip_runs(ts: I64, starts: I64, lens: I64, mint: int, maxt: int) -> tuple[I64, I64]:
    """Sub-runs ``[lo, hi)`` of sorted runs holding only the samples in ``[mint, maxt]``."""
    if len(starts) <= _FEW_RUNS:
        lo = np.empty(len(starts), np.int64)
        hi = np.empty(len(starts), np.int64)
        for k, (a, n) in enumerate(zip(np.asarray(starts).tolist(), np.asarray(lens).tolist())):
            run = ts[a : a + n]
            lo[k] = a + int(np.searchsorted(run, mint, "left"))
            hi[k] = a + int(np.searchsorted(run, maxt, "right"))
        return lo, hi
    if maxt >= MAX_TIME:  # every sample is at or before it; maxt + 1 would not fit int64
        return bisect_runs(ts, starts, lens, mint), np.asarray(starts, np.int64) + lens
    both = bisect_runs(
        ts,
        np.concatenate([starts, starts]),
        np.concatenate([lens, lens]),
        np.concatenate([np.full(len(starts), mint, np.int64), np.full(len(starts), maxt + 1, np.int64)]),
    )
    return both[: len(starts)], both[len(starts) :]


def window_bounds(offsets: I64, ts: I64, eval_ts: I64, range_ms: int) -> tuple[I64, I64]:
    """Left-open windows ``(t - range, t]`` for every series and step.

    Returns ``lo, hi`` int64[S, T]: the window of series i at step j is
    ``ts[lo[i, j]:hi[i, j]]`` (empty when ``lo == hi``).
    """
    t = np.asarray(eval_ts, np.int64)
    step = _grid_step(t)
    T = len(t)
    if step is not None and range_ms % step == 0 and range_ms // step <= 4 * T + 64:
        # The range is a whole number k of steps (5m at 15 s, 20 s or 1 m; 1h likewise):
        # a window starts where the window k steps earlier ends, so one count over the
        # grid extended k steps to the left gives both bounds.
        k = range_ms // step
        S = len(offsets) - 1
        row_key = np.repeat(np.arange(0, S * (T + k + 1), T + k + 1, dtype=np.int64), np.diff(offsets))
        ext = _grid_counts(offsets, ts, int(t[0]) - k * step, step, T + k, "right", row_key)
        return np.ascontiguousarray(ext[:, :T]), np.ascontiguousarray(ext[:, k:])
    lo, hi = searchsorted_ragged_many(offsets, ts, [(t - range_ms, "right"), (t, "right")])
    return lo, hi


def occurrence(keys: I64) -> I64:
    """How many times each key appeared before it in ``keys`` (0 at its first)."""
    n = len(keys)
    order = np.argsort(keys, kind="stable")
    at = np.arange(n, dtype=np.int64)
    first = np.ones(n, np.bool_)
    first[1:] = keys[order[1:]] != keys[order[:-1]]
    out = np.empty(n, np.int64)
    out[order] = at - np.maximum.accumulate(np.where(first, at, 0))
    return out


def compress(offsets: I64, keep: Bool) -> I64:
    """New offsets after keeping only the samples where ``keep`` (bool[N]) is True."""
    csum = np.zeros(len(keep) + 1, np.int64)
    np.cumsum(keep, out=csum[1:])
    return csum[offsets]


def prefix_sum(values: F64) -> F64:
    """``[0, v0, v0+v1, ...]`` (float64[N+1]) for window sums ``p[hi] - p[lo]``.

    Only exact for finite values; use :func:`window_reduce` when NaN/Inf may occur.
    """
    p = np.zeros(len(values) + 1, np.float64)
    np.cumsum(values, out=p[1:])
    return p


def window_count(lo: I64, hi: I64) -> I64:
    """Samples per window."""
    return hi - lo


def window_reduce(ufunc: np.ufunc, values: F64, lo: I64, hi: I64, empty: float = np.nan) -> F64:
    """``ufunc.reduce(values[lo:hi])`` for every window (any shape of ``lo``/``hi``).

    Uses ``ufunc.reduceat`` over interleaved ``[lo0, hi0, lo1, hi1, ...]`` indices: the even
    results are the windows, the odd ones are discarded. Empty windows (``lo == hi``) give
    ``empty``. Exact for NaN and Inf, unlike prefix sums.
    """
    shape = np.shape(lo)
    lo_f = np.ravel(lo)
    hi_f = np.ravel(hi)
    out = np.full(lo_f.shape, empty, np.float64)
    nonempty = hi_f > lo_f
    if not nonempty.any():
        return out.reshape(shape)
    padded = np.append(np.asarray(values, np.float64), 0.0)
    idx = np.empty(2 * int(nonempty.sum()), np.int64)
    idx[0::2] = lo_f[nonempty]
    idx[1::2] = hi_f[nonempty]
    red = ufunc.reduceat(padded, idx)
    out[nonempty] = red[0::2]
    return out.reshape(shape)


def group_ids(keys: Sequence[Hashable]) -> tuple[I64, list[Any]]:
    """Dense ids for hashable keys in order of first appearance.

    Returns ``ids`` int64[len(keys)] and the list of distinct keys (``uniq[ids[i]] == keys[i]``).
    A dict over the keys (series, never samples), so it is a short Python loop.
    """
    index: dict[Hashable, int] = {}
    ids = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
    return ids, list(index)


def group_reduce(ufunc: np.ufunc, ids: I64, G: int, rows: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """``ufunc`` over the rows of each group: ``rows[S, T]`` → ``[G, T]``.

    Rows are sorted by group once and reduced with ``ufunc.reduceat`` along the series axis
    (contiguous, about twice as fast as ``ufunc.at``). Groups without rows get ``fill``.
    """
    S = len(ids)
    T = rows.shape[1]
    if S == 0:
        return np.full((G, T), fill, dtype=rows.dtype)
    if G == 1:  # one group (no grouping labels): all rows, in order, as the sort would give
        return np.asarray(ufunc.reduceat(rows, _FIRST_ROW, axis=0), dtype=rows.dtype)
    if S < 2 or bool((ids[1:] >= ids[:-1]).all()):
        sorted_ids, in_order = ids, rows  # already grouped: no sort, no copy of the rows
    else:
        order = np.argsort(ids, kind="stable")
        sorted_ids, in_order = ids[order], rows[order]
    starts = np.searchsorted(sorted_ids, np.arange(G))
    has = starts < S
    has[has] &= sorted_ids[starts[has]] == np.flatnonzero(has)
    out = np.full((G, T), fill, dtype=rows.dtype)
    if has.any():
        out[has] = ufunc.reduceat(in_order, starts[has], axis=0)
    return out


_FIRST_ROW = np.zeros(1, np.intp)


def group_reduce_sum(ids: I64, G: int, values: F64, mask: Bool) -> F64:
    """Per-group sums over the series axis: ``values[S, T]`` → float64[G, T], masked cells skipped."""
    return group_reduce(np.add, ids, G, np.where(mask, values, 0.0))


def group_count(ids: I64, G: int, mask: Bool) -> I64:
    """Per-group number of present cells: ``mask[S, T]`` → int64[G, T]."""
    return group_reduce(np.add, ids, G, mask.astype(np.int64), 0)


def first_true(mask: Bool, axis: int = 0) -> I64:
    """Index of the first True along ``axis`` (``-1`` where none)."""
    any_ = mask.any(axis=axis)
    idx = np.argmax(mask, axis=axis).astype(np.int64)
    return np.where(any_, idx, -1)
