"""Two-pass fast paths for windowed variance and linear regression.

Prometheus computes ``stddev_over_time`` with Welford's update and ``deriv``/
``predict_linear`` with Kahan-compensated sums, sample by sample. Here the window
means come from prefix sums (:func:`fast_sums`, trusted to 2^-40), and the centred
sums ``Σ(y-ȳ)²`` and ``Σ(x-x̄)(y-ȳ)`` from one light column walk: a couple of numpy
operations per window position instead of four compensated additions. Centring keeps
the accuracy of the sequential algorithms (no ``Σy² - (Σy)²/n`` cancellation).

The regression's centred sums first try :func:`blocked_cross_sums`: prefix sums that
restart every ``L`` samples (``L`` = the longest window) with x and y measured from each
block's first sample, so no window spans more than two blocks and the sums stay small;
its cells with a loose error bound, and the variance, take the column walk.

Windows with Inf/NaN, or whose prefix sums are not trusted, are reported ``ok=False``
and left to the exact sequential kernels, which reproduce Prometheus's NaN/Inf
semantics. Constant windows give exactly 0 variance and slope, as Prometheus does.
"""

from __future__ import annotations

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.promql.windows import TRUST, ColumnWalk, exact_time_sums, fast_sums
from signalfire.util.ragged import ragged_arange, segment_ids, series_index

_EPS = float(np.finfo(np.float64).eps)


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
        slope = np.zeros(len(lo))
        cells = np.flatnonzero(ok)
        b_xy, b_xx, b_ok = blocked_cross_sums(values, ts, offsets, lo[cells], hi[cells])
        slope[cells] = b_xy / b_xx
        cells = cells[~b_ok]
        walk = ColumnWalk(lo[cells], hi[cells])
        um, ym = u_mean[cells][walk.order], y_mean[cells][walk.order]
        sxy, sxx = np.zeros(walk.C), np.zeros(walk.C)
        for _, n_act, idx in walk:
            dx = u[idx] - um[:n_act]
            sxy[:n_act] += dx * (values[idx] - ym[:n_act])
            sxx[:n_act] += dx * dx
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


def blocked_cross_sums(values: F64, ts: I64, offsets: I64, lo: I64, hi: I64) -> tuple[F64, F64, Bool]:
    """Centred ``Σ(x-x̄)(y-ȳ)`` and ``Σ(x-x̄)²`` (x in seconds) per window ``[lo, hi)`` of
    finite values, by prefix sums, with the cells whose error bound is under ``TRUST``.

    Prefix sums over a whole series grow with its length and time span (a disk's free
    bytes, 1e11, times a day of seconds), so one window's small covariance would be the
    difference of two huge numbers. Here every series is cut into blocks of ``B``
    samples (the longest window) and x (in ms), y are measured from each block's first
    sample; a window then covers the tail of its first block and maybe the head of the
    next, whose sums are moved to the first block's origin as ``Σ(x+a)(y+c)`` expands.
    Sums of integers (timestamps always, values when they are whole numbers, as bytes
    and counts are) are added in int64 when they cannot overflow, so they are exact;
    float sums carry the bound of a prefix difference (eps times the running sums it
    spans). Cells whose bound exceeds ``TRUST`` go to the column walk.
    """
    with np.errstate(all="ignore"):  # Inf/NaN elsewhere in a block make its cells untrusted
        return _blocked_cross_sums(values, ts, offsets, lo, hi)


def _blocked_cross_sums(values: F64, ts: I64, offsets: I64, lo: I64, hi: I64) -> tuple[F64, F64, Bool]:
    C = len(lo)
    if C == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.bool_)
    B = max(int((hi - lo).max()), 1)
    lens = np.diff(offsets)
    per_series = -(-lens // B)
    within = ragged_arange(np.zeros(len(lens), np.int64), per_series)
    starts = np.repeat(offsets[:-1], per_series) + within * B
    rows = len(starts)
    block = segment_ids(np.diff(np.append(starts, offsets[-1])))
    origin = starts[block]
    # Position of every sample in a padded [blocks, B] matrix, where cumsum restarts per row.
    cell = block * B + (np.arange(len(ts), dtype=np.int64) - origin)
    dx = ts - ts[origin]
    dy = values - values[origin]
    # Each window: [lo, cut) in its first block b0, [cut, hi) at the head of block b0 + 1.
    b0 = block[lo]
    cut = np.minimum(hi, np.append(starts, offsets[-1])[b0 + 1])
    m2 = (hi - cut).astype(np.float64)
    two = m2 > 0
    nxt = np.minimum(cut, len(ts) - 1)
    o0 = starts[b0]
    da = np.where(two, (ts[nxt] - ts[o0]).astype(np.float64), 0.0)
    dc = np.where(two, values[nxt] - values[o0], 0.0)
    first = lo == o0
    end1, end2, before1 = cell[cut - 1], cell[np.maximum(hi - 1, 0)], cell[lo] - 1

    def piece_sums(mat: np.ndarray) -> tuple[F64, F64]:
        """Sums over the two pieces from a row-wise inclusive prefix matrix (flat)."""
        s1 = mat[end1] - np.where(first, 0, mat[np.maximum(before1, 0)])
        return s1.astype(np.float64), np.where(two, mat[end2], 0).astype(np.float64)

    def prefix(q: np.ndarray) -> np.ndarray:
        mat = np.zeros(rows * B, q.dtype)
        mat[cell] = q
        np.cumsum(mat.reshape(rows, B), axis=1, out=mat.reshape(rows, B))
        return mat

    def pieces(q: np.ndarray) -> tuple[F64, F64, F64, F64, F64]:
        """Both pieces' sums of ``q``, their error bound and both pieces' sums of ``|q|``.

        int64 sums are exact (one rounding to float). A float prefix difference over
        ``[a, b)`` carries the roundings of the running sums at a..b-1 (those before
        ``a`` cancel): at most eps times their absolute sum.
        """
        incl = prefix(q)
        s1, s2 = piece_sums(incl)
        a1, a2 = piece_sums(prefix(np.abs(q)))
        if q.dtype == np.int64:
            return s1, s2, _EPS * (np.abs(s1) + np.abs(s2)), a1, a2
        spread = np.abs(incl)
        np.cumsum(spread.reshape(rows, B), axis=1, out=spread.reshape(rows, B))
        p1, p2 = piece_sums(spread)
        return s1, s2, _EPS * (p1 + p2 + np.abs(s1) + np.abs(s2)), a1, a2

    # Timestamps are integers; values often are. Keep int64 wherever B terms cannot overflow.
    big_x = float(np.abs(dx).max(initial=0))
    # Values below 2^53 that are whole numbers give exact whole differences.
    int_y = float(np.abs(values).max(initial=0)) < 2.0**53 and bool(np.all(values == np.rint(values)))
    int_y = int_y and float(np.abs(dy).max(initial=0)) * B < 2.0**62
    big_y = float(np.abs(dy).max(initial=0))
    q_y: np.ndarray = dy.astype(np.int64) if int_y else dy
    q_xx = dx * dx if big_x * big_x * B < 2.0**62 else dx.astype(np.float64) ** 2
    q_xy = dx * q_y if int_y and big_x * big_y * B < 2.0**62 else dx.astype(np.float64) * dy
    x1, x2, ex, ax1, ax2 = pieces(dx)
    y1, y2, ey, ay1, ay2 = pieces(q_y)
    xy1, xy2, exy, axy1, axy2 = pieces(q_xy)
    xx1, xx2, exx, axx1, axx2 = pieces(q_xx)
    n = (hi - lo).astype(np.float64)
    sx = x1 + x2 + m2 * da
    sy = y1 + y2 + m2 * dc
    sxy = xy1 + xy2 + da * y2 + dc * x2 + m2 * da * dc
    sxx = xx1 + xx2 + 2 * da * x2 + m2 * da * da
    # Error bounds: the sums', then 8 roundings per term (forming dy and the products,
    # the shifts, the additions) on the absolute terms.
    adc, ada = np.abs(dc), np.abs(da)
    e_x = ex + 8 * _EPS * (ax1 + ax2 + m2 * ada)
    e_y = ey + 8 * _EPS * (ay1 + ay2 + m2 * adc)
    e_xy = exy + ada * ey + adc * ex + 8 * _EPS * (axy1 + axy2 + ada * ay2 + adc * ax2 + m2 * ada * adc)
    e_xx = exx + 2 * ada * ex + 8 * _EPS * (axx1 + axx2 + 2 * ada * ax2 + m2 * ada * ada)
    cov = sxy - sx * sy / n
    var = sxx - sx * sx / n
    e_cov = e_xy + (np.abs(sx) * e_y + np.abs(sy) * e_x) / n + 4 * _EPS * (np.abs(sxy) + np.abs(sx * sy) / n)
    e_var = e_xx + 2 * np.abs(sx) * e_x / n + 4 * _EPS * (np.abs(sxx) + sx * sx / n)
    ok = np.isfinite(cov) & np.isfinite(var) & (e_cov <= np.abs(cov) * TRUST) & (e_var <= np.abs(var) * TRUST)
    return cov / 1e3, var / 1e6, ok
