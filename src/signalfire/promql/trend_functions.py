"""Trend kernels: ``deriv`` and ``predict_linear`` (least-squares regression over each
window) and ``double_exponential_smoothing``.

Each is a sequential computation per window, run for all windows at once: a fast
closed form where its error bound allows, and a :class:`ColumnWalk` of compensated
sums (as Prometheus adds in order) elsewhere.
"""

from __future__ import annotations

import numpy as np

from signalfire._types import F64, I64
from signalfire.promql.range_cells import Result, nonempty, pack, quiet
from signalfire.promql.values import RangeWindows
from signalfire.promql.window_stats import fast_regression
from signalfire.promql.windows import ColumnWalk, kahan_inc

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


@quiet
def deriv(w: RangeWindows) -> Result:
    cells, lo, hi = nonempty(w, min_len=2)
    slope, _, ok = fast_regression(w.values, w.ts, w.offsets, lo, hi, w.ts[lo])
    redo = np.flatnonzero(~ok)
    if len(redo):
        slope[redo], _ = _linear_regression(w, lo[redo], hi[redo], w.ts[lo[redo]])
    return pack(w, cells, slope)


@quiet
def predict_linear(w: RangeWindows, step_ts: I64, duration_s: F64) -> Result:
    """Intercept at the step's evaluation time (not the ``@``/offset time), as Prometheus."""
    cells, lo, hi = nonempty(w, min_len=2)
    T = len(w.eval_ts)
    icpt = step_ts[cells % T]
    slope, intercept, ok = fast_regression(w.values, w.ts, w.offsets, lo, hi, icpt)
    redo = np.flatnonzero(~ok)
    if len(redo):
        slope[redo], intercept[redo] = _linear_regression(w, lo[redo], hi[redo], icpt[redo])
    return pack(w, cells, slope * duration_s[cells % T] + intercept)


@quiet
def double_exponential_smoothing(w: RangeWindows, sf_steps: F64, tf_steps: F64) -> Result:
    """Holt's linear smoothing; factors validated by the caller."""
    cells, lo, hi = nonempty(w, min_len=2)
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
    return pack(w, cells, walk.unsort(s1))
