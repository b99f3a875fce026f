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


def series_slice(ss: SeriesSet, a: int, b: int) -> SeriesSet:
    """Series ``a:b`` of ``ss`` (views, no copies)."""
    o0, o1 = int(ss.offsets[a]), int(ss.offsets[b])
    st = None if ss.st is None else ss.st[o0:o1]
    return SeriesSet(
        ss.labels[a:b], ss.offsets[a : b + 1] - o0, ss.ts[o0:o1], ss.values[o0:o1], ss.warnings, st
    )


def instant_vector(
    ss: SeriesSet, eval_ts: I64, lookback_ms: int, use_st: bool = False, smoothed: bool = False
) -> StepMatrix:
    """The instant-vector view of ``ss`` at every time of ``eval_ts`` (int64[T]).

    Series with no sample at any step are left out. ``sample_ts`` records the picked
    sample's timestamp (for ``timestamp()``). With ``smoothed`` the value is interpolated
    linearly between the picked sample and the next one after ``t`` (within the lookback).
    """
    S, T = len(ss.labels), len(eval_ts)
    if S == 0 or ss.num_samples == 0:
        return StepMatrix.empty(T)
    hi = ragged.searchsorted_ragged(ss.offsets, ss.ts, eval_ts, "right")
    idx = hi - 1
    has = idx >= ss.offsets[:-1, None]
    idx = np.where(has, idx, 0)
    picked_ts = ss.ts[idx]
    picked = ss.values[idx]
    present = has & (picked_ts > (eval_ts - lookback_ms)[None, :]) & ~is_stale(picked)
    if smoothed:
        picked = _interpolate_next(ss, eval_ts, lookback_ms, hi, picked_ts, picked, present)
    if use_st:
        st = ss.st if ss.st is not None else np.zeros(len(ss.ts), np.int64)
        picked_st = st[idx]
        present &= picked_st != 0
        picked = picked_st.astype(np.float64) / 1000.0
    rows = present.any(axis=1)
    if not rows.all():
        keep = np.flatnonzero(rows)
        return StepMatrix(
            [ss.labels[i] for i in keep.tolist()],
            np.ascontiguousarray(picked[keep]),
            present[keep],
            None,
            picked_ts[keep],
        )
    return StepMatrix(list(ss.labels), np.ascontiguousarray(picked), present, None, picked_ts)


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
