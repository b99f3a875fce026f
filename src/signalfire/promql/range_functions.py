"""Range-vector kernels: ``rate``, ``increase``, ``delta``, ``*_over_time`` and friends.

Every kernel takes a :class:`RangeWindows` (all series × all steps) and returns
``(values, present)``, both ``[S, T]``. A cell is present when Prometheus would emit a
sample for that series at that step. Semantics follow Prometheus 3.x
``promql/functions.go``; the comments name the rule each step implements.

Summation-based kernels reproduce Prometheus's Kahan (Neumaier) summation: a
prefix-sum fast path is used where its error bound proves it agrees, and the exact
sequential algorithm (run for all cells at once, see :class:`ColumnWalk`) elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.promql.values import RangeWindows
from signalfire.promql.window_stats import fast_regression, fast_variance
from signalfire.promql.windows import (
    ColumnWalk,
    SparseColumn,
    add_sparse_in_order,
    fast_sums,
    int_prefix,
    kahan_inc,
    kahan_window_sum,
    sorted_windows,
    sparse_window_sum,
)

Result = tuple[F64, Bool]
_F = TypeVar("_F", bound=Callable[..., Any])


def _quiet(fn: _F) -> _F:
    """Run a kernel with floating-point warnings off: Inf and NaN are PromQL values."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _flat(w: RangeWindows) -> tuple[I64, I64]:
    return w.lo.ravel(), w.hi.ravel()


def _shape(w: RangeWindows) -> tuple[int, int]:
    return (w.num_series, len(w.eval_ts))


def _step_of_cell(w: RangeWindows) -> I64:
    S, T = _shape(w)
    return np.tile(np.arange(T, dtype=np.int64), S)


def _pack(w: RangeWindows, cells: I64, vals: F64, cells_sorted: bool = True) -> Result:
    """Scatter per-cell results for ``cells`` (unique flat positions) into ``[S, T]`` arrays."""
    S, T = _shape(w)
    if cells_sorted and len(cells) == S * T:
        # Every cell, in order: the values are the matrix already.
        return np.asarray(vals, np.float64).reshape(S, T), np.ones((S, T), np.bool_)
    out = np.zeros(S * T, np.float64)
    present = np.zeros(S * T, np.bool_)
    out[cells] = vals
    present[cells] = True
    return out.reshape(S, T), present.reshape(S, T)


def _nonempty(w: RangeWindows, min_len: int = 1) -> tuple[I64, I64, I64]:
    """Flat positions of the cells whose window holds at least ``min_len`` samples, and
    their bounds. Dense data (the usual case) skips the gathers."""
    lo, hi = _flat(w)
    long_enough = hi - lo >= min_len
    if long_enough.all():
        return np.arange(len(lo), dtype=np.int64), lo, hi
    cells = np.flatnonzero(long_enough)
    return cells, lo[cells], hi[cells]


# ------------------------------------------------------------ simple reductions


@_quiet
def count_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = _nonempty(w)
    return _pack(w, cells, (hi - lo).astype(np.float64))


@_quiet
def present_over_time(w: RangeWindows) -> Result:
    cells, _, _ = _nonempty(w)
    return _pack(w, cells, np.ones(len(cells)))


@_quiet
def last_over_time(w: RangeWindows) -> Result:
    cells, _, hi = _nonempty(w)
    return _pack(w, cells, w.values[hi - 1])


@_quiet
def first_over_time(w: RangeWindows) -> Result:
    cells, lo, _ = _nonempty(w)
    return _pack(w, cells, w.values[lo])


@_quiet
def ts_of_last_over_time(w: RangeWindows) -> Result:
    cells, _, hi = _nonempty(w)
    return _pack(w, cells, w.ts[hi - 1] / 1000.0)


@_quiet
def ts_of_first_over_time(w: RangeWindows) -> Result:
    cells, lo, _ = _nonempty(w)
    return _pack(w, cells, w.ts[lo] / 1000.0)


def _reduceat(ufunc: np.ufunc, values: F64, lo: I64, hi: I64) -> F64:
    """``ufunc`` over each non-empty ``[lo, hi)``, in C via ``reduceat`` on (lo, hi) pairs."""
    if len(lo) == 0:
        return np.empty(0, np.float64)
    ext = np.append(values, 0.0)  # hi may equal N
    idx = np.empty(2 * len(lo), np.int64)
    idx[0::2] = lo
    idx[1::2] = hi
    return ufunc.reduceat(ext, idx)[0::2]


@_quiet
def min_over_time(w: RangeWindows) -> Result:
    # Prometheus replaces a NaN running minimum by any later value, so the result is
    # NaN only when every sample is NaN: exactly np.fmin.
    cells, lo, hi = _nonempty(w)
    return _pack(w, cells, _reduceat(np.fmin, w.values, lo, hi))


@_quiet
def max_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = _nonempty(w)
    return _pack(w, cells, _reduceat(np.fmax, w.values, lo, hi))


def _ts_of_extreme(w: RangeWindows, is_max: bool) -> Result:
    """Timestamp of the window's max (min) sample; among ties the last one wins
    (``>=``/``<=`` in Prometheus), NaN loses to any number, all-NaN gives the last.

    Each sample gets an integer key ``priority * N + index`` where priority is the
    value's dense rank (reversed for min, -1 for NaN); the largest key of a window,
    one ``np.maximum.reduceat``, is then the winning sample.
    """
    cells, lo, hi = _nonempty(w)
    v = w.values
    N = len(v)
    nan = np.isnan(v)
    uniq, rank = np.unique(np.where(nan, 0.0, v), return_inverse=True)
    rank = rank.reshape(-1).astype(np.int64)
    if not is_max:
        rank = len(uniq) - 1 - rank
    rank = np.where(nan, -1, rank)
    key = rank * N + np.arange(N, dtype=np.int64)
    best = _reduceat_int(key, lo, hi)
    winner = best - (best // N) * N
    return _pack(w, cells, w.ts[winner] / 1000.0)


def _reduceat_int(keys: I64, lo: I64, hi: I64) -> I64:
    """``np.maximum`` over each non-empty ``[lo, hi)`` of an int64 array."""
    if len(lo) == 0:
        return np.empty(0, np.int64)
    ext = np.append(keys, np.int64(0))
    idx = np.empty(2 * len(lo), np.int64)
    idx[0::2] = lo
    idx[1::2] = hi
    return np.maximum.reduceat(ext, idx)[0::2]


@_quiet
def ts_of_max_over_time(w: RangeWindows) -> Result:
    return _ts_of_extreme(w, True)


@_quiet
def ts_of_min_over_time(w: RangeWindows) -> Result:
    return _ts_of_extreme(w, False)


# ------------------------------------------------------------ sums and means


@_quiet
def sum_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = _nonempty(w)
    sums, ok = fast_sums(w.values, w.offsets, lo, hi)
    redo = np.flatnonzero(~ok)
    if len(redo):
        s, c = kahan_window_sum(w.values, lo[redo], hi[redo])
        sums[redo] = np.where(np.isinf(s), s, s + c)
    return _pack(w, cells, sums)


@_quiet
def avg_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = _nonempty(w)
    counts = (hi - lo).astype(np.float64)
    sums, ok = fast_sums(w.values, w.offsets, lo, hi)
    out = sums / counts
    redo = np.flatnonzero(~ok)
    if len(redo):
        out[redo] = _avg_exact(w.values, lo[redo], hi[redo])
    return _pack(w, cells, out)


def _avg_exact(values: F64, lo: I64, hi: I64) -> F64:
    """Prometheus's mean: Kahan sum while it stays finite, then incremental mean."""
    walk = ColumnWalk(lo, hi)
    C = walk.C
    s, c, mean = np.zeros(C), np.zeros(C), np.zeros(C)
    incr = np.zeros(C, np.bool_)
    for k, n, idx in walk:
        v = values[idx]
        if k == 0:
            s[:n] = v
            continue
        count = float(k + 1)
        direct = ~incr[:n]
        ns, nc = kahan_inc(v, s[:n], c[:n])
        keep = direct & ~np.isinf(ns)
        s[:n] = np.where(keep, ns, s[:n])
        c[:n] = np.where(keep, nc, c[:n])
        switch = direct & np.isinf(ns)
        mean[:n] = np.where(switch, s[:n] / (count - 1), mean[:n])
        c[:n] = np.where(switch, c[:n] / (count - 1), c[:n])
        incr[:n] |= switch
        q = (count - 1) / count
        m2, c2 = kahan_inc(v / count, q * mean[:n], q * c[:n])
        inc_now = incr[:n]
        mean[:n] = np.where(inc_now, m2, mean[:n])
        c[:n] = np.where(inc_now, c2, c[:n])
    counts = walk.lens.astype(np.float64)
    res = np.where(incr, mean + c, s / counts + c / counts)
    return walk.unsort(res)


def _variance(w: RangeWindows) -> tuple[I64, F64]:
    """Prefix-sum variance where its error bound allows, else Prometheus's sequence."""
    cells, lo, hi = _nonempty(w)
    var, ok = fast_variance(w.values, w.offsets, lo, hi)
    redo = np.flatnonzero(~ok)
    if len(redo):
        var[redo] = _welford(w.values, lo[redo], hi[redo])
    return cells, var


def _welford(values: F64, lo: I64, hi: I64) -> F64:
    """Welford's update with Kahan-compensated mean and sum of squares, as Prometheus."""
    w_values = values
    walk = ColumnWalk(lo, hi)
    C = walk.C
    mean, c_mean, aux, c_aux = np.zeros(C), np.zeros(C), np.zeros(C), np.zeros(C)
    for k, n, idx in walk:
        v = w_values[idx]
        count = float(k + 1)
        delta = v - (mean[:n] + c_mean[:n])
        mean[:n], c_mean[:n] = kahan_inc(delta / count, mean[:n], c_mean[:n])
        aux[:n], c_aux[:n] = kahan_inc(delta * (v - (mean[:n] + c_mean[:n])), aux[:n], c_aux[:n])
    var = (aux + c_aux) / walk.lens.astype(np.float64)
    return walk.unsort(var)


@_quiet
def stdvar_over_time(w: RangeWindows) -> Result:
    cells, var = _variance(w)
    return _pack(w, cells, var)


@_quiet
def stddev_over_time(w: RangeWindows) -> Result:
    cells, var = _variance(w)
    return _pack(w, cells, np.sqrt(var))


# ------------------------------------------------------------ order statistics


def _quantile_rows(q: F64, rows: F64, lens: I64, nan_counts: I64) -> F64:
    """Prometheus's ``quantile`` on Go-sorted rows: linear interpolation between ranks."""
    n = lens.astype(np.float64)
    rank = q * (n - 1)
    lower = np.maximum(0.0, np.floor(rank))
    upper = np.minimum(n - 1, lower + 1)
    weight = rank - np.floor(rank)
    r = np.arange(len(rows))
    li = np.clip(np.nan_to_num(lower), 0, rows.shape[1] - 1).astype(np.int64)
    ui = np.clip(np.nan_to_num(upper), 0, rows.shape[1] - 1).astype(np.int64)
    res = rows[r, li] * (1 - weight) + rows[r, ui] * weight
    res = np.where(q < 0, -np.inf, res)
    res = np.where(q > 1, np.inf, res)
    return np.where(np.isnan(q), np.nan, res)


@_quiet
def quantile_over_time(w: RangeWindows, q_steps: F64) -> Result:
    """``q_steps`` is φ per step (a scalar argument may change between steps)."""
    lo, hi = _flat(w)
    q_cell = np.broadcast_to(q_steps[None, :], w.lo.shape).ravel()
    cells_all, vals_all = [], []
    for cells, rows, nan_counts in sorted_windows(w.values, lo, hi):
        lens = hi[cells] - lo[cells]
        cells_all.append(cells)
        vals_all.append(_quantile_rows(q_cell[cells], rows, lens, nan_counts))
    return _pack_parts(w, cells_all, vals_all)


@_quiet
def mad_over_time(w: RangeWindows) -> Result:
    """Median absolute deviation from the median, NaN-first ordering as in Prometheus."""
    lo, hi = _flat(w)
    cells_all, vals_all = [], []
    for cells, rows, nan_counts in sorted_windows(w.values, lo, hi):
        lens = hi[cells] - lo[cells]
        half = np.full(len(cells), 0.5)
        median = _quantile_rows(half, rows, lens, nan_counts)
        col = np.arange(rows.shape[1])
        inside = col[None, :] < lens[:, None]
        dev = np.where(inside, np.abs(rows - median[:, None]), np.inf)
        isnan = np.isnan(dev)
        nan2 = isnan.sum(axis=1)
        dev = np.where(isnan, -np.inf, dev)
        dev.sort(axis=1)
        dev[col[None, :] < nan2[:, None]] = np.nan
        cells_all.append(cells)
        # A NaN sample makes the result NaN instead of being sorted to the front.
        vals_all.append(np.where(nan_counts > 0, np.nan, _quantile_rows(half, dev, lens, nan2)))
    return _pack_parts(w, cells_all, vals_all)


def _pack_parts(w: RangeWindows, cells: list[I64], vals: list[F64]) -> Result:
    if not cells:
        return _pack(w, np.empty(0, np.int64), np.empty(0))
    return _pack(w, np.concatenate(cells), np.concatenate(vals), cells_sorted=False)


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


@_quiet
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
    cells, lo, hi = _nonempty(w)
    if w.anchored:
        # Anchored windows start with the last sample at or before the range start;
        # a window holding only that sample has nothing in range.
        start = w.eval_ts[cells % len(w.eval_ts)] - w.range_ms
        keep = w.ts[hi - 1] > start
        cells, lo, hi = cells[keep], lo[keep], hi[keep]
    return _pack(w, cells, (p[hi] - p[lo + 1]).astype(np.float64))


@_quiet
def changes(w: RangeWindows) -> Result:
    v = w.values
    pv = _prev(v)
    flags = (v != pv) & ~(np.isnan(v) & np.isnan(pv))
    return _counting_kernel(w, flags)


@_quiet
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


@_quiet
def extrapolated_rate(w: RangeWindows, is_counter: bool, is_rate: bool) -> Result:
    """``rate``/``increase``/``delta`` with Prometheus's extrapolation to the window edges."""
    if w.anchored or w.smoothed:
        return extended_rate(w, is_counter, is_rate)
    # With start timestamps one sample can be enough (the ST zero point below).
    cells, lo, hi = _nonempty(w, min_len=1 if (is_counter and w.st is not None) else 2)
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
        return _pack(w, cells, result)
    return _pack(w, cells[keep], result[keep])


def _interpolate(w: RangeWindows, i1: I64, i2: I64, t: I64, is_counter: bool) -> F64:
    y1, y2 = w.values[i1], w.values[i2]
    if is_counter:
        y1 = np.where(y2 < y1, 0.0, y1)
    dt = (w.ts[i2] - w.ts[i1]).astype(np.float64)
    return y1 + (y2 - y1) * (t - w.ts[i1]).astype(np.float64) / np.where(dt == 0, 1.0, dt)


@_quiet
def extended_rate(w: RangeWindows, is_counter: bool, is_rate: bool) -> Result:
    """``anchored``/``smoothed`` rate, increase and delta (experimental selector modifiers).

    Window contract: with ``anchored`` or ``smoothed`` the engine starts the window at
    the last sample at or before ``t - range`` when there is one (within the lookback
    delta); with ``smoothed`` it also ends it after the first sample after ``t`` when
    there is one. Anchored takes the boundary sample as is; smoothed interpolates the
    value linearly at ``t - range`` and ``t``. No extrapolation happens.
    """
    cells, lo, hi = _nonempty(w)
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
    return _pack(w, cells, result)


@_quiet
def instant_value(w: RangeWindows, is_rate: bool) -> Result:
    """``irate``/``idelta``: the last two samples of each window."""
    cells, _, hi = _nonempty(w, min_len=2)
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
    return _pack(w, cells, res)


# ------------------------------------------------------------ regression, smoothing


def _linear_regression(w: RangeWindows, lo: I64, hi: I64, intercept_t: I64) -> tuple[F64, F64]:
    """Least squares over each window with x in seconds from ``intercept_t`` (Kahan sums)."""
    walk = ColumnWalk(lo, hi)
    C = walk.C
    icpt = intercept_t[walk.order]
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (np.zeros(C) for _ in range(8))
    init_y = np.zeros(C)
    const_y = np.ones(C, np.bool_)
    for k, n, idx in walk:
        y = w.values[idx]
        if k == 0:
            init_y[:n] = y
        else:
            const_y[:n] &= y == init_y[:n]
        x = (w.ts[idx] - icpt[:n]).astype(np.float64) / 1e3
        sx[:n], cx[:n] = kahan_inc(x, sx[:n], cx[:n])
        sy[:n], cy[:n] = kahan_inc(y, sy[:n], cy[:n])
        sxy[:n], cxy[:n] = kahan_inc(x * y, sxy[:n], cxy[:n])
        sx2[:n], cx2[:n] = kahan_inc(x * x, sx2[:n], cx2[:n])
    n_f = walk.lens.astype(np.float64)
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    cov = sxy - sx * sy / n_f
    var = sx2 - sx * sx / n_f
    slope = cov / var
    intercept = sy / n_f - slope * sx / n_f
    # A constant series has slope 0 (NaN when the constant is infinite).
    inf_const = const_y & np.isinf(init_y)
    slope = np.where(const_y, np.where(inf_const, np.nan, 0.0), slope)
    intercept = np.where(const_y, np.where(inf_const, np.nan, init_y), intercept)
    return walk.unsort(slope), walk.unsort(intercept)


@_quiet
def deriv(w: RangeWindows) -> Result:
    cells, lo, hi = _nonempty(w, min_len=2)
    slope, _, ok = fast_regression(w.values, w.ts, w.offsets, lo, hi, w.ts[lo])
    redo = np.flatnonzero(~ok)
    if len(redo):
        slope[redo], _ = _linear_regression(w, lo[redo], hi[redo], w.ts[lo[redo]])
    return _pack(w, cells, slope)


@_quiet
def predict_linear(w: RangeWindows, step_ts: I64, duration_s: F64) -> Result:
    """Intercept at the step's evaluation time (not the ``@``/offset time), as Prometheus."""
    cells, lo, hi = _nonempty(w, min_len=2)
    T = len(w.eval_ts)
    icpt = step_ts[cells % T]
    slope, intercept, ok = fast_regression(w.values, w.ts, w.offsets, lo, hi, icpt)
    redo = np.flatnonzero(~ok)
    if len(redo):
        slope[redo], intercept[redo] = _linear_regression(w, lo[redo], hi[redo], icpt[redo])
    return _pack(w, cells, slope * duration_s[cells % T] + intercept)


@_quiet
def double_exponential_smoothing(w: RangeWindows, sf_steps: F64, tf_steps: F64) -> Result:
    """Holt's linear smoothing; factors validated by the caller."""
    cells, lo, hi = _nonempty(w, min_len=2)
    T = len(w.eval_ts)
    walk = ColumnWalk(lo, hi)
    sf = sf_steps[cells % T][walk.order]
    tf = tf_steps[cells % T][walk.order]
    C = walk.C
    s0, s1, b = np.zeros(C), np.zeros(C), np.zeros(C)
    for k, n, idx in walk:
        v = w.values[idx]
        if k == 0:
            s1[:n] = v
            continue
        if k == 1:
            b[:n] = v - s1[:n]
        else:
            b[:n] = tf[:n] * (s1[:n] - s0[:n]) + (1 - tf[:n]) * b[:n]
        x = sf[:n] * v
        y = (1 - sf[:n]) * (s1[:n] + b[:n])
        s0[:n] = s1[:n]
        s1[:n] = x + y
    return _pack(w, cells, walk.unsort(s1))
