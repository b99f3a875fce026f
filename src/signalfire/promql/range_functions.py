"""The ``*_over_time`` family: reductions of each window to one number.

Counts, first/last values and their times, minimum and maximum, sums, means,
variances, quantiles and the median absolute deviation, over every (series, step)
window at once (:mod:`range_cells` says how results are shaped). Semantics follow
Prometheus 3.x ``promql/functions.go``; the comments name the rule each step implements.
Rate-like functions are in :mod:`counter_functions`, regression and smoothing in
:mod:`trend_functions`.

Summation-based kernels reproduce Prometheus's Kahan (Neumaier) summation: a
prefix-sum fast path is used where its error bound proves it agrees, and the exact
sequential algorithm (run for all cells at once, see :class:`ColumnWalk`) elsewhere.
"""

from __future__ import annotations

import numpy as np

from signalfire._types import F64, I64
from signalfire.promql.range_cells import Result, flat_bounds, nonempty, pack, pack_parts, quiet
from signalfire.promql.values import RangeWindows
from signalfire.promql.window_stats import fast_variance
from signalfire.promql.windows import ColumnWalk, fast_sums, kahan_inc, kahan_window_sum, sorted_windows

# ------------------------------------------------------------ simple reductions


@quiet
def count_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = nonempty(w)
    return pack(w, cells, (hi - lo).astype(np.float64))


@quiet
def present_over_time(w: RangeWindows) -> Result:
    cells, _, _ = nonempty(w)
    return pack(w, cells, np.ones(len(cells)))


@quiet
def last_over_time(w: RangeWindows) -> Result:
    cells, _, hi = nonempty(w)
    return pack(w, cells, w.values[hi - 1])


@quiet
def first_over_time(w: RangeWindows) -> Result:
    cells, lo, _ = nonempty(w)
    return pack(w, cells, w.values[lo])


@quiet
def ts_of_last_over_time(w: RangeWindows) -> Result:
    cells, _, hi = nonempty(w)
    return pack(w, cells, w.ts[hi - 1] / 1000.0)


@quiet
def ts_of_first_over_time(w: RangeWindows) -> Result:
    cells, lo, _ = nonempty(w)
    return pack(w, cells, w.ts[lo] / 1000.0)


def _reduceat(ufunc: np.ufunc, values: F64, lo: I64, hi: I64) -> F64:
    """``ufunc`` over each non-empty ``[lo, hi)``, in C via ``reduceat`` on (lo, hi) pairs."""
    if len(lo) == 0:
        return np.empty(0, np.float64)
    ext = np.append(values, 0.0)  # hi may equal N
    idx = np.empty(2 * len(lo), np.int64)
    idx[0::2] = lo
    idx[1::2] = hi
    return ufunc.reduceat(ext, idx)[0::2]


@quiet
def min_over_time(w: RangeWindows) -> Result:
    # Prometheus replaces a NaN running minimum by any later value, so the result is
    # NaN only when every sample is NaN: exactly np.fmin.
    cells, lo, hi = nonempty(w)
    return pack(w, cells, _reduceat(np.fmin, w.values, lo, hi))


@quiet
def max_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = nonempty(w)
    return pack(w, cells, _reduceat(np.fmax, w.values, lo, hi))


def _ts_of_extreme(w: RangeWindows, is_max: bool) -> Result:
    """Timestamp of the window's max (min) sample; among ties the last one wins
    (``>=``/``<=`` in Prometheus), NaN loses to any number, all-NaN gives the last.

    Each sample gets an integer key ``priority * N + index`` where priority is the
    value's dense rank (reversed for min, -1 for NaN); the largest key of a window,
    one ``np.maximum.reduceat``, is then the winning sample.
    """
    cells, lo, hi = nonempty(w)
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
    return pack(w, cells, w.ts[winner] / 1000.0)


def _reduceat_int(keys: I64, lo: I64, hi: I64) -> I64:
    """``np.maximum`` over each non-empty ``[lo, hi)`` of an int64 array."""
    if len(lo) == 0:
        return np.empty(0, np.int64)
    ext = np.append(keys, np.int64(0))
    idx = np.empty(2 * len(lo), np.int64)
    idx[0::2] = lo
    idx[1::2] = hi
    return np.maximum.reduceat(ext, idx)[0::2]


@quiet
def ts_of_max_over_time(w: RangeWindows) -> Result:
    return _ts_of_extreme(w, True)


@quiet
def ts_of_min_over_time(w: RangeWindows) -> Result:
    return _ts_of_extreme(w, False)


# ------------------------------------------------------------ sums and means


@quiet
def sum_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = nonempty(w)
    sums, ok = fast_sums(w.values, w.offsets, lo, hi)
    redo = np.flatnonzero(~ok)
    if len(redo):
        s, c = kahan_window_sum(w.values, lo[redo], hi[redo])
        sums[redo] = np.where(np.isinf(s), s, s + c)
    return pack(w, cells, sums)


@quiet
def avg_over_time(w: RangeWindows) -> Result:
    cells, lo, hi = nonempty(w)
    counts = (hi - lo).astype(np.float64)
    sums, ok = fast_sums(w.values, w.offsets, lo, hi)
    out = sums / counts
    redo = np.flatnonzero(~ok)
    if len(redo):
        out[redo] = _avg_exact(w.values, lo[redo], hi[redo])
    return pack(w, cells, out)


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
    cells, lo, hi = nonempty(w)
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


@quiet
def stdvar_over_time(w: RangeWindows) -> Result:
    cells, var = _variance(w)
    return pack(w, cells, var)


@quiet
def stddev_over_time(w: RangeWindows) -> Result:
    cells, var = _variance(w)
    return pack(w, cells, np.sqrt(var))


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


@quiet
def quantile_over_time(w: RangeWindows, q_steps: F64) -> Result:
    """``q_steps`` is φ per step (a scalar argument may change between steps)."""
    lo, hi = flat_bounds(w)
    q_cell = np.broadcast_to(q_steps[None, :], w.lo.shape).ravel()
    cells_all, vals_all = [], []
    for cells, rows, nan_counts in sorted_windows(w.values, lo, hi):
        lens = hi[cells] - lo[cells]
        cells_all.append(cells)
        vals_all.append(_quantile_rows(q_cell[cells], rows, lens, nan_counts))
    return pack_parts(w, cells_all, vals_all)


@quiet
def mad_over_time(w: RangeWindows) -> Result:
    """Median absolute deviation from the median, NaN-first ordering as in Prometheus."""
    lo, hi = flat_bounds(w)
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
    return pack_parts(w, cells_all, vals_all)
