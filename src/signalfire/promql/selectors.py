"""Instant and range selectors, for every evaluation step at once.

An instant selector picks, for each series and step ``t``, the newest sample with
``t - lookback < ts <= t`` (3.x: left-open), unless that sample is a staleness marker.
A range selector gives the samples with ``t - range < ts <= t`` with stale markers
removed. ``offset`` shifts ``t`` back and ``@`` pins it; both are applied here.

Everything is one ``np.searchsorted`` over all series (util/ragged.py), never a loop
over samples or steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from signalfire._types import F64, I64, Bool, is_stale
from signalfire.labels import Matcher
from signalfire.promql import ast
from signalfire.promql.values import RangeWindows, StepMatrix
from signalfire.storage import SeriesSet
from signalfire.storage.interface import SelectHints
from signalfire.util import ragged
from signalfire.util.deadline import checkpoint

#: ``select(matchers, hints) -> SeriesSet``: how the evaluator reaches storage.
SelectFn = Callable[[Sequence[Matcher], SelectHints], SeriesSet]


def selector_times(
    base_ts: I64, offset_ms: int, at: ast.AtKind, at_ms: int, query_start: int, query_end: int
) -> I64:
    """The times a selector is evaluated at: ``(@ time or step time) - offset``."""
    if at is ast.AtKind.NONE:
        t = np.asarray(base_ts, np.int64)
    else:
        pinned = {ast.AtKind.START: query_start, ast.AtKind.END: query_end}.get(at, at_ms)
        t = np.full(len(base_ts), pinned, np.int64)
    return t - offset_ms


def keep_series(ss: SeriesSet, keep: Bool) -> SeriesSet:
    """The sub-SeriesSet of the series where ``keep`` (bool[S]) holds (copies the samples)."""
    if keep.all():
        return ss
    sample_keep = np.repeat(keep, np.diff(ss.offsets))
    offsets = ragged.compress(ss.offsets, sample_keep)
    labels = [ss.labels[i] for i in np.flatnonzero(keep).tolist()]
    st = None if ss.st is None else ss.st[sample_keep]
    kept_offsets = np.concatenate([[0], np.diff(offsets)[keep].cumsum()]).astype(np.int64)
    return SeriesSet(labels, kept_offsets, ss.ts[sample_keep], ss.values[sample_keep], ss.warnings, st)


def count_present(ss: SeriesSet, eval_ts: I64, lookback_ms: int) -> int:
    """How many cells :func:`instant_vector` will fill, found from the samples alone.

    Sample k of a series is the one picked at the steps ``t`` with ``ts[k] <= t <
    min(ts[k+1], ts[k] + lookback)``, unless it is a stale marker; counting those steps
    for every sample (two searches of the N samples among the T sorted times) gives the
    count without the ``[S, T]`` arrays, so a limit can refuse before they exist. Exact
    for plain selectors, an upper bound with ``@st`` (which drops more cells).
    """
    n = len(ss.ts)
    if n == 0 or len(eval_ts) == 0:
        return 0
    t = np.asarray(eval_ts, np.int64)
    # end[k] = min(ts[k] + lookback, ts[k+1]) inside each series, built in place.
    end = _plus(ss.ts, lookback_ms)
    last = ss.offsets[1:] - 1
    last = last[last >= 0]
    keep_last = end[last]
    np.minimum(end[:-1], ss.ts[1:], out=end[:-1])
    end[last] = keep_last
    counts = np.searchsorted(t, end, "left")
    del end
    counts -= np.searchsorted(t, ss.ts, "left")
    counts[is_stale(ss.values)] = 0
    np.maximum(counts, 0, out=counts)
    return int(counts.sum())


def count_in_windows(ss: SeriesSet, eval_ts: I64, range_ms: int) -> int:
    """How many samples the windows ``(t - range, t]`` of :func:`range_windows` will hold
    over all steps, from the samples alone: sample k is in the windows of the steps with
    ``ts[k] <= t < ts[k] + range``. Stale markers are left out, as range selectors do."""
    if len(ss.ts) == 0 or len(eval_ts) == 0:
        return 0
    t = np.asarray(eval_ts, np.int64)
    counts = np.searchsorted(t, _plus(ss.ts, range_ms), "left") - np.searchsorted(t, ss.ts, "left")
    counts[is_stale(ss.values)] = 0
    return int(counts.sum())


def _plus(ts: I64, d: int) -> I64:
    """``ts + d`` (``d >= 0``) saturating at the int64 maximum instead of wrapping."""
    out: I64 = np.minimum(ts, np.iinfo(np.int64).max - d)
    out += d
    return out


#: Cells picked per batch of series by :func:`instant_vector`: between batches the query's
#: deadline is checked, so a large selection stops soon after a timeout or a cancel.
BATCH_CELLS = 1 << 21


def instant_vector(
    ss: SeriesSet, eval_ts: I64, lookback_ms: int, use_st: bool = False, smoothed: bool = False
) -> StepMatrix:
    """The instant-vector view of ``ss`` at every time of ``eval_ts`` (int64[T]).

    Series with no sample at any step are left out. ``sample_ts`` records the picked
    sample's timestamp (for ``timestamp()``). With ``smoothed`` the value is interpolated
    linearly between the picked sample and the next one after ``t`` (within the lookback).
    Large selections are picked in batches of series written straight into the result.
    """
    S, T = len(ss.labels), len(eval_ts)
    if S == 0 or ss.num_samples == 0:
        return StepMatrix.empty(T)
    picked = np.empty((S, T), np.float64)
    picked_ts = np.empty((S, T), np.int64)
    present = np.empty((S, T), np.bool_)
    rows_per_batch = max(1, BATCH_CELLS // max(T, 1))
    for a in range(0, S, rows_per_batch):
        b = min(S, a + rows_per_batch)
        if b < S or a > 0:
            checkpoint()
        o0, o1 = int(ss.offsets[a]), int(ss.offsets[b])
        if o0 == o1:
            present[a:b] = False
            picked[a:b] = 0.0
            picked_ts[a:b] = 0
            continue
        if a == 0 and b == S:  # one batch (every small selection): the set itself
            sub = ss
        else:
            st = None if ss.st is None else ss.st[o0:o1]
            sub = SeriesSet(ss.labels[a:b], ss.offsets[a : b + 1] - o0, ss.ts[o0:o1], ss.values[o0:o1], st=st)
        _pick_into(sub, eval_ts, lookback_ms, use_st, smoothed, picked[a:b], picked_ts[a:b], present[a:b])
    rows = present.any(axis=1)
    if not rows.all():
        keep = np.flatnonzero(rows)
        labels = [ss.labels[i] for i in keep.tolist()]
        return StepMatrix(labels, picked[keep], present[keep], None, picked_ts[keep])
    return StepMatrix(list(ss.labels), picked, present, None, picked_ts)


def _pick_into(
    ss: SeriesSet,
    eval_ts: I64,
    lookback_ms: int,
    use_st: bool,
    smoothed: bool,
    picked: F64,
    picked_ts: I64,
    present: Bool,
) -> None:
    """:func:`instant_vector`'s work for series that have samples, into ``[S, T]`` views."""
    hi = ragged.searchsorted_ragged(ss.offsets, ss.ts, eval_ts, "right")
    idx = hi - 1
    has = idx >= ss.offsets[:-1, None]
    idx[~has] = 0
    np.take(ss.ts, idx, out=picked_ts)
    np.take(ss.values, idx, out=picked)
    np.greater(picked_ts, (eval_ts - lookback_ms)[None, :], out=present)
    present &= has
    present &= ~is_stale(picked)
    if smoothed:
        picked[...] = _interpolate_next(ss, eval_ts, lookback_ms, hi, picked_ts, picked, present)
    if use_st:
        st = ss.st if ss.st is not None else np.zeros(len(ss.ts), np.int64)
        picked_st = st[idx]
        present &= picked_st != 0
        np.divide(picked_st, 1000.0, out=picked)


def _interpolate_next(
    ss: SeriesSet, eval_ts: I64, lookback_ms: int, hi: I64, picked_ts: I64, picked: F64, present: Bool
) -> F64:
    """Values interpolated at ``t`` between the picked sample and the next real sample."""
    nxt_ok = hi < ss.offsets[1:, None]
    nxt = np.where(nxt_ok, hi, 0)
    nxt_ts = ss.ts[nxt]
    nxt_v = ss.values[nxt]
    t = eval_ts[None, :]
    use = present & nxt_ok & (nxt_ts <= t + lookback_ms) & ~is_stale(nxt_v) & (picked_ts < t)
    if not use.any():
        return picked
    dt = np.where(use, nxt_ts - picked_ts, 1).astype(np.float64)
    frac = (t - picked_ts).astype(np.float64) / dt
    return np.where(use, picked + (nxt_v - picked) * frac, picked)


def range_windows(
    ss: SeriesSet,
    eval_ts: I64,
    range_ms: int,
    lookback_ms: int,
    anchored: bool = False,
    smoothed: bool = False,
) -> RangeWindows:
    """The range-vector view of ``ss``: windows ``(t - range, t]`` for every step.

    Stale markers are removed first (range selectors never return them). Series whose
    windows are all empty are left out. With ``anchored`` or ``smoothed`` the window also
    takes the newest sample at or before its left edge (within the lookback); with
    ``smoothed`` also the oldest sample after its right edge (within the lookback), so
    kernels can interpolate at both edges.
    """
    keep = ~is_stale(ss.values)
    if not keep.all():
        offsets = ragged.compress(ss.offsets, keep)
        ss = SeriesSet(
            ss.labels,
            offsets,
            ss.ts[keep],
            ss.values[keep],
            ss.warnings,
            None if ss.st is None else ss.st[keep],
        )
    lo, hi = ragged.window_bounds(ss.offsets, ss.ts, eval_ts, range_ms)
    if anchored or smoothed:
        lo, hi = _extend_windows(ss, eval_ts, range_ms, lookback_ms, lo, hi, smoothed)
    rows: Bool = np.asarray((hi > lo).any(axis=1)) if lo.size else np.zeros(len(ss.labels), np.bool_)
    if not rows.all():
        # Re-slice to the kept series: shift every index by what was removed before it.
        sub = keep_series(ss, rows)
        start_old = ss.offsets[:-1][rows]
        shift = (sub.offsets[:-1] - start_old)[:, None]
        lo = lo[rows] + shift
        hi = hi[rows] + shift
        ss = sub
    return RangeWindows(
        list(ss.labels),
        ss.offsets,
        ss.ts,
        ss.values,
        lo,
        hi,
        np.asarray(eval_ts, np.int64),
        range_ms,
        st=ss.st,
        anchored=anchored,
        smoothed=smoothed,
    )


def _extend_windows(
    ss: SeriesSet, eval_ts: I64, range_ms: int, lookback_ms: int, lo: I64, hi: I64, smoothed: bool
) -> tuple[I64, I64]:
    """Reach one sample past each window edge for the ``anchored``/``smoothed`` modifiers."""
    starts = ss.offsets[:-1, None]
    ends = ss.offsets[1:, None]
    left_edge = (eval_ts - range_ms)[None, :]
    prev = lo - 1
    ok = prev >= starts
    prev_ts = ss.ts[np.where(ok, prev, 0)] if len(ss.ts) else np.zeros_like(prev)
    ok &= prev_ts > left_edge - lookback_ms
    lo = np.where(ok, prev, lo)
    if smoothed:
        nxt_ok = hi < ends
        nxt_ts = ss.ts[np.where(nxt_ok, hi, 0)] if len(ss.ts) else np.zeros_like(hi)
        nxt_ok &= nxt_ts <= eval_ts[None, :] + lookback_ms
        # Data only after the range gives no result: reach right only when the window
        # has samples in range or a sample before it.
        nxt_ok &= (hi > lo) | ok
        hi = np.where(nxt_ok, hi + 1, hi)
    return lo, hi
