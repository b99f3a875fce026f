"""Counter and gauge change kernels: ``rate``, ``increase``, ``delta``, ``irate``, ``idelta``,
``changes`` and ``resets``.

They stand apart from the ``*_over_time`` family because they read a window as a
counter (or gauge) history rather than a bag of values: counter resets (by value, or by
start timestamp with ``st-storage``) are corrected before differencing, and rates are
extrapolated to the window edges (or, with ``anchored``/``smoothed``, interpolated
there) as Prometheus 3.x's ``extrapolatedRate`` does.
"""

from __future__ import annotations

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.promql.range_cells import Result, nonempty, pack, quiet
from signalfire.promql.values import RangeWindows
from signalfire.promql.windows import SparseColumn, add_sparse_in_order, int_prefix, sparse_window_sum

# ------------------------------------------------------------ counters


def _pairs_prefix(flags: Bool, offsets: I64) -> I64:
    """Exclusive prefix count of pair flags; ``flags[i]`` describes (i-1, i), never across series."""
    flags = flags.copy()
    flags[offsets[:-1][offsets[:-1] < len(flags)]] = False
    return int_prefix(flags)


def _prev(values: np.ndarray) -> np.ndarray:
    prev = np.empty_like(values)
    if len(values):
        prev[0] = values[0]
        prev[1:] = values[:-1]
    return prev


@quiet
def st_reset(prev_st: I64, prev_t: I64, cur_st: I64, cur_t: I64) -> Bool:
    """Whether a start timestamp (ST) marks a counter reset between two samples.

    0 means "no ST"; an ST at or after its own sample is unusable. An ST after the
    previous sample starts a new counter. An ST equal to the previous sample's time is a
    reset only for a delta series, i.e. when the previous sample had a usable ST of
    its own (a cumulative series with unknown start repeats its first timestamp). Rules
    and cases from Prometheus's ``start_timestamps.test``.
    """
    usable = (cur_st != 0) & (cur_st < cur_t) & (cur_st >= prev_t)
    prev_usable = (prev_st != 0) & (prev_st < prev_t)
    return np.asarray(usable & ((cur_st > prev_t) | prev_usable), np.bool_)


def st_overlaps(w: RangeWindows) -> Bool:
    """Per sample: its ST reaches back before the previous sample (and differs from the
    previous ST), which Prometheus warns about. Never true at a series start."""
    if w.st is None:
        return np.zeros(len(w.ts), np.bool_)
    st, pst = w.st, _prev(w.st)
    flags = (st != 0) & (st < _prev(w.ts)) & (st != pst)
    flags[w.offsets[:-1][w.offsets[:-1] < len(flags)]] = False
    return np.asarray(flags, np.bool_)


def _counting_kernel(w: RangeWindows, flags: Bool) -> Result:
    """Count flagged pairs inside each window (``changes``/``resets``)."""
    p = _pairs_prefix(flags, w.offsets)
    cells, lo, hi = nonempty(w)
    if w.anchored:
        # Anchored windows start with the last sample at or before the range start;
        # a window holding only that sample has nothing in range.
        start = w.eval_ts[cells % len(w.eval_ts)] - w.range_ms
        keep = w.ts[hi - 1] > start
        cells, lo, hi = cells[keep], lo[keep], hi[keep]
    return pack(w, cells, (p[hi] - p[lo + 1]).astype(np.float64))


@quiet
def changes(w: RangeWindows) -> Result:
    v = w.values
    pv = _prev(v)
    flags = (v != pv) & ~(np.isnan(v) & np.isnan(pv))
    return _counting_kernel(w, flags)


@quiet
def resets(w: RangeWindows) -> Result:
    v = w.values
    flags = v < _prev(v)
    if w.st is not None:
        flags |= st_reset(_prev(w.st), _prev(w.ts), w.st, w.ts)
    return _counting_kernel(w, flags)


def _reset_corrections(w: RangeWindows, use_st: bool = True) -> SparseColumn:
    """Per sample i: the value to add back for a counter reset between i-1 and i, kept
    only where it is non-zero (resets are rare, so no dense float column is built).

    A reset is a decrease, or (``use_st``) a start timestamp that says the counter
    restarted. A series' first sample has no pair."""
    v = w.values
    if len(v) < 2:
        return SparseColumn(np.empty(0, np.int64), np.empty(0, np.float64))
    reset = v[1:] < v[:-1]
    if use_st and w.st is not None:
        reset |= st_reset(w.st[:-1], w.ts[:-1], w.st[1:], w.ts[1:])
    pos = np.flatnonzero(reset) + 1
    starts = w.offsets[1:-1]
    at = np.minimum(np.searchsorted(starts, pos), max(len(starts) - 1, 0))
    if len(starts):
        pos = pos[starts[at] != pos]
    vals = v[pos - 1]
    keep = vals != 0
    return SparseColumn(pos[keep], vals[keep])


@quiet
def extrapolated_rate(w: RangeWindows, is_counter: bool, is_rate: bool) -> Result:
    """``rate``/``increase``/``delta`` with Prometheus's extrapolation to the window edges."""
    if w.anchored or w.smoothed:
        return extended_rate(w, is_counter, is_rate)
    # With start timestamps one sample can be enough (the ST zero point below).
    cells, lo, hi = nonempty(w, min_len=1 if (is_counter and w.st is not None) else 2)
    T = len(w.eval_ts)
    end_t = w.eval_ts[cells % T]
    start_t = end_t - w.range_ms
    last = hi - 1
    first_v, last_v = w.values[lo], w.values[last]
    first_t, last_t = w.ts[lo], w.ts[last]
    n = hi - lo
    result = last_v - first_v
    if is_counter:
        # Corrections of pairs (lo, lo+1) .. (hi-2, hi-1): samples lo+1 .. hi-1.
        result = add_sparse_in_order(result, _reset_corrections(w), lo + 1, hi)
    dur_start = (first_t - start_t).astype(np.float64) / 1000
    dur_end = (end_t - last_t).astype(np.float64) / 1000
    sampled = (last_t - first_t).astype(np.float64) / 1000
    avg_gap = sampled / np.maximum(n - 1, 1).astype(np.float64)
    threshold = avg_gap * 1.1
    dur_start = np.where(dur_start >= threshold, avg_gap / 2, dur_start)
    if is_counter:
        # A counter cannot go below zero: do not extrapolate past its zero point.
        can_zero = (result > 0) & (first_v >= 0)
        dur_zero = np.where(can_zero, sampled * (first_v / np.where(can_zero, result, 1.0)), dur_start)
        dur_start = np.where(dur_zero < dur_start, dur_zero, dur_start)
    dur_end = np.where(dur_end >= threshold, avg_gap / 2, dur_end)
    keep = n >= 2
    if is_counter and w.st is not None:
        # The first sample's ST inside the range stands for a zero-valued sample there:
        # count from 0 and do not extrapolate to the left of it.
        st0 = w.st[lo]
        zero = (st0 != 0) & (st0 < first_t) & (st0 > start_t)
        result = np.where(zero, result + first_v, result)
        sampled = np.where(zero, (last_t - st0).astype(np.float64) / 1000, sampled)
        dur_start = np.where(zero, 0.0, dur_start)
        dur_end = np.where(zero & (n < 2), 0.0, dur_end)
        keep |= zero
    factor = (sampled + dur_start + dur_end) / sampled
    if is_rate:
        factor = factor / (w.range_ms / 1000.0)
    result *= factor
    if keep.all():
        return pack(w, cells, result)
    return pack(w, cells[keep], result[keep])


def _interpolate(w: RangeWindows, i1: I64, i2: I64, t: I64, is_counter: bool) -> F64:
    y1, y2 = w.values[i1], w.values[i2]
    if is_counter:
        y1 = np.where(y2 < y1, 0.0, y1)
    dt = (w.ts[i2] - w.ts[i1]).astype(np.float64)
    return y1 + (y2 - y1) * (t - w.ts[i1]).astype(np.float64) / np.where(dt == 0, 1.0, dt)


@quiet
def extended_rate(w: RangeWindows, is_counter: bool, is_rate: bool) -> Result:
    """``anchored``/``smoothed`` rate, increase and delta (experimental selector modifiers).

    Window contract: with ``anchored`` or ``smoothed`` the engine starts the window at
    the last sample at or before ``t - range`` when there is one (within the lookback
    delta); with ``smoothed`` it also ends it after the first sample after ``t`` when
    there is one. Anchored takes the boundary sample as is; smoothed interpolates the
    value linearly at ``t - range`` and ``t``. No extrapolation happens.
    """
    cells, lo, hi = nonempty(w)
    T = len(w.eval_ts)
    end_t = w.eval_ts[cells % T]
    start_t = end_t - w.range_ms
    first = lo.copy()
    last = hi - 1
    if w.smoothed:
        # The right boundary is the first sample at or after t (searching all but the
        # final sample), else the final sample.
        has_two = hi - lo >= 2
        at_end = has_two & (w.ts[np.maximum(hi - 2, lo)] >= end_t)
        last = np.where(at_end, hi - 2, last)
    keep = w.ts[last] > start_t
    cells, lo, hi, first, last, end_t, start_t = (
        a[keep] for a in (cells, lo, hi, first, last, end_t, start_t)
    )
    left = w.values[first]
    right = w.values[last]
    if w.smoothed:
        li = w.ts[first] < start_t
        nxt = np.minimum(first + 1, hi - 1)
        left = np.where(li, _interpolate(w, first, nxt, start_t, is_counter), left)
        ri = (last > lo) & (w.ts[last] > end_t)
        prv = np.maximum(last - 1, lo)
        right = np.where(ri, _interpolate(w, prv, last, end_t, is_counter), right)
    result = right - left
    if is_counter:
        # Resets strictly inside the range; boundary pairs compare with the
        # (possibly interpolated) left and right values.
        fi = np.where(w.ts[first] <= start_t, first + 1, first)
        la = np.where(w.ts[last] >= end_t, last - 1, last)
        # Start timestamps play no part here, only values (Prometheus correctForCounterResets).
        corr = _reset_corrections(w, use_st=False)
        has_pts = fi <= la
        fi_c = np.minimum(fi, len(w.values) - 1)
        la_c = np.maximum(la, 0)
        # Pairs (fi, fi+1) .. (la-1, la): corrections of samples fi+1 .. la.
        inner = np.where(has_pts, sparse_window_sum(corr, fi_c + 1, np.maximum(la_c + 1, fi_c + 1)), 0.0)
        v_fi, v_la = w.values[fi_c], w.values[la_c]
        edge = np.where(has_pts, np.where(v_fi < left, left, 0.0) + np.where(right < v_la, v_la, 0.0), 0.0)
        edge = np.where(~has_pts & (right < left), left, edge)
        result = result + inner + edge
    if is_rate:
        result = result / (w.range_ms / 1000.0)
    return pack(w, cells, result)


@quiet
def instant_value(w: RangeWindows, is_rate: bool) -> Result:
    """``irate``/``idelta``: the last two samples of each window."""
    cells, _, hi = nonempty(w, min_len=2)
    last, prev = hi - 1, hi - 2
    interval = w.ts[last] - w.ts[prev]
    keep = interval != 0
    cells, last, prev, interval = cells[keep], last[keep], prev[keep], interval[keep]
    lv, pv = w.values[last], w.values[prev]
    if is_rate:
        reset = lv < pv
        if w.st is not None:
            reset |= st_reset(w.st[prev], w.ts[prev], w.st[last], w.ts[last])
        res = np.where(reset, lv, lv - pv) / (interval.astype(np.float64) / 1000)
    else:
        res = lv - pv
    return pack(w, cells, res)
