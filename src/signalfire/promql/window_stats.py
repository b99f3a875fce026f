"""Two-pass fast paths for windowed variance and linear regression.

Prometheus computes ``stddev_over_time`` with Welford's update and ``deriv``/
``predict_linear`` with Kahan-compensated sums, sample by sample. Here the window
means come from prefix sums (:func:`fast_sums`, trusted to 2^-40), and the centred
sums ``Σ(y-ȳ)²`` and ``Σ(x-x̄)(y-ȳ)`` from one light column walk: a couple of numpy
operations per window position instead of four compensated additions. Centring keeps
the accuracy of the sequential algorithms (no ``Σy² - (Σy)²/n`` cancellation).

Windows with Inf/NaN, or whose prefix sums are not trusted, are reported ``ok=False``
and left to the exact sequential kernels, which reproduce Prometheus's NaN/Inf
semantics. Constant windows give exactly 0 variance and slope, as Prometheus does.
"""

from __future__ import annotations

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.promql.windows import ColumnWalk, exact_time_sums, fast_sums, series_index


def _series_first(arr: np.ndarray, offsets: I64) -> np.ndarray:
    """Each sample's series' first element."""
    if len(arr) == 0:
        return arr.copy()
    return arr[offsets[:-1][series_index(offsets)]]


def constant_windows(values: F64, lo: I64, hi: I64) -> Bool:
    """Windows whose samples are all equal (exact comparisons, as Prometheus's constY)."""
    if len(lo) == 0:
        return np.zeros(0, np.bool_)
    ext = np.append(values, 0.0)
    idx = np.empty(2 * len(lo), np.int64)
    idx[0::2], idx[1::2] = lo, hi
    return np.asarray(np.minimum.reduceat(ext, idx)[0::2] == np.maximum.reduceat(ext, idx)[0::2], np.bool_)


def fast_variance(values: F64, offsets: I64, lo: I64, hi: I64) -> tuple[F64, Bool]:
    """Population variance of each non-empty window ``[lo, hi)`` and where it is valid."""
    with np.errstate(all="ignore"):
        sums, ok = fast_sums(values, offsets, lo, hi)
        n = (hi - lo).astype(np.float64)
        mean = sums / n
        acc = np.zeros(len(lo))
        cells = np.flatnonzero(ok)
        walk = ColumnWalk(lo[cells], hi[cells])
        m = mean[cells][walk.order]
        sq = np.zeros(walk.C)
        for _, n_act, idx in walk:
            d = values[idx] - m[:n_act]
            sq[:n_act] += d * d
        acc[cells] = walk.unsort(sq)
        var = acc / n
        const = constant_windows(values, lo, hi) & np.isfinite(values[lo] if len(values) else n)
        return np.where(const, 0.0, var), ok | const


def fast_regression(
    values: F64, ts: I64, offsets: I64, lo: I64, hi: I64, intercept_t: I64
) -> tuple[F64, F64, Bool]:
    """Least-squares slope and intercept (at ``intercept_t``, ms) per window; x in seconds.

    Returns ``(slope, intercept, ok)``. The intercept is formed as Prometheus forms it,
    ``ȳ - slope·x̄`` from the window sums, so exactly representable inputs give the
    same bits.
    """
    with np.errstate(all="ignore"):
        t0 = _series_first(ts, offsets)
        u = (ts - t0).astype(np.float64) / 1e3
        su, ok_u = exact_time_sums(ts, t0, offsets, lo, hi)
        if not ok_u.any():
            su, ok_u = fast_sums(u, offsets, lo, hi)
        sy, ok = fast_sums(values, offsets, lo, hi)
        ok &= ok_u
        n = (hi - lo).astype(np.float64)
        u_mean, y_mean = su / n, sy / n
        cells = np.flatnonzero(ok)
        walk = ColumnWalk(lo[cells], hi[cells])
        um, ym = u_mean[cells][walk.order], y_mean[cells][walk.order]
        sxy, sxx = np.zeros(walk.C), np.zeros(walk.C)
        for _, n_act, idx in walk:
            dx = u[idx] - um[:n_act]
            sxy[:n_act] += dx * (values[idx] - ym[:n_act])
            sxx[:n_act] += dx * dx
        slope = np.zeros(len(lo))
        slope[cells] = walk.unsort(sxy / sxx)
        # Σx with x measured from the intercept time: Σu - n·d, d = (icpt - t0) s.
        d = (intercept_t - (t0[lo] if len(ts) else 0)).astype(np.float64) / 1e3
        sx = su - n * d
        intercept = sy / n - slope * sx / n
        const = constant_windows(values, lo, hi)
        first = values[lo] if len(values) else n
        const &= np.isfinite(first)
        slope = np.where(const, 0.0, slope)
        intercept = np.where(const, first, intercept)
        return slope, intercept, ok | const
