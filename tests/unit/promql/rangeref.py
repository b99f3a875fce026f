"""Slow, obviously correct twins of the range kernels, and a RangeWindows builder.

Each reference takes one window as a list of ``(t_ms, value)`` pairs (plus the
window's end time and range) and follows Prometheus's Go code line by line. Used by
``test_range_functions.py`` with hypothesis.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from signalfire.labels import Labels
from signalfire.promql.values import RangeWindows

Sample = tuple[int, float]


def build_windows(
    series: Sequence[Sequence[Sample]],
    eval_ts: Sequence[int],
    range_ms: int,
    anchored: bool = False,
    smoothed: bool = False,
    lookback_ms: int = 300_000,
) -> RangeWindows:
    """Windows ``(t - range, t]`` by brute force; anchored/smoothed add the boundary samples."""
    offsets = np.zeros(len(series) + 1, np.int64)
    ts: list[int] = []
    vals: list[float] = []
    S, T = len(series), len(eval_ts)
    lo = np.zeros((S, T), np.int64)
    hi = np.zeros((S, T), np.int64)
    for i, ser in enumerate(series):
        base = len(ts)
        for t, v in ser:
            ts.append(t)
            vals.append(v)
        offsets[i + 1] = len(ts)
        for j, e in enumerate(eval_ts):
            n_le_end = sum(1 for t, _ in ser if t <= e)
            first_in = sum(1 for t, _ in ser if t <= e - range_ms)
            a, b = first_in, n_le_end
            if (anchored or smoothed) and first_in > 0 and ser[first_in - 1][0] > e - range_ms - lookback_ms:
                a = first_in - 1
            if smoothed and n_le_end < len(ser) and ser[n_le_end][0] <= e + lookback_ms:
                b = n_le_end + 1
            lo[i, j], hi[i, j] = base + a, base + b
    labels = [Labels.from_dict({"__name__": f"m{i}", "i": str(i)}) for i in range(S)]
    return RangeWindows(
        labels,
        offsets,
        np.asarray(ts, np.int64),
        np.asarray(vals, np.float64),
        lo,
        hi,
        np.asarray(eval_ts, np.int64),
        range_ms,
        anchored=anchored,
        smoothed=smoothed,
    )


def kahan_inc(inc: float, s: float, c: float) -> tuple[float, float]:
    t = s + inc
    if math.isinf(t):
        c = 0.0
    elif abs(s) >= abs(inc):
        c += (s - t) + inc
    else:
        c += (inc - t) + s
    return t, c


def ref_sum(w: list[Sample]) -> float:
    s = c = 0.0
    for _, v in w:
        s, c = kahan_inc(v, s, c)
    return s if math.isinf(s) else s + c


def ref_avg(w: list[Sample]) -> float:
    s, count = w[0][1], 1.0
    mean = c = 0.0
    incr = False
    for i, (_, v) in enumerate(w[1:]):
        count = float(i + 2)
        if not incr:
            ns, nc = kahan_inc(v, s, c)
            if not math.isinf(ns):
                s, c = ns, nc
                continue
            incr = True
            mean = s / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = kahan_inc(v / count, q * mean, q * c)
    if incr:
        return mean + c
    return s / count + c / count


def ref_variance(w: list[Sample]) -> float:
    count = mean = cm = aux = ca = 0.0
    for _, v in w:
        count += 1
        delta = v - (mean + cm)
        mean, cm = kahan_inc(delta / count, mean, cm)
        aux, ca = kahan_inc(delta * (v - (mean + cm)), aux, ca)
    return (aux + ca) / count


def ref_min(w: list[Sample], is_max: bool) -> float:
    best = w[0][1]
    for _, v in w:
        if (v > best if is_max else v < best) or math.isnan(best):
            best = v
    return best


def ref_ts_of(w: list[Sample], is_max: bool) -> float:
    best, bt = w[0][1], w[0][0]
    for t, v in w:
        if (v >= best if is_max else v <= best) or math.isnan(best):
            best, bt = v, t
    return bt / 1000


def go_sorted(vals: list[float]) -> list[float]:
    nans = [v for v in vals if math.isnan(v)]
    return nans + sorted(v for v in vals if not math.isnan(v))


def ref_quantile(q: float, vals: list[float]) -> float:
    if not vals or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    s = go_sorted(vals)
    n = float(len(s))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return s[int(lower)] * (1 - weight) + s[int(upper)] * weight


def ref_mad(w: list[Sample]) -> float:
    vals = [v for _, v in w]
    if any(math.isnan(v) for v in vals):
        return math.nan
    med = ref_quantile(0.5, vals)
    return ref_quantile(0.5, [abs(v - med) for v in vals])


def ref_changes(w: list[Sample]) -> float:
    n = 0
    for (_, a), (_, b) in itertools.pairwise(w):
        if b != a and not (math.isnan(a) and math.isnan(b)):
            n += 1
    return float(n)


def ref_resets(w: list[Sample]) -> float:
    return float(sum(1 for (_, a), (_, b) in itertools.pairwise(w) if b < a))


def ref_extrapolated_rate(
    w: list[Sample], end: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    if len(w) < 2:
        return None
    start = end - range_ms
    result = w[-1][1] - w[0][1]
    if is_counter:
        for (_, a), (_, b) in itertools.pairwise(w):
            if b < a:
                result += a
    first_t, last_t = w[0][0], w[-1][0]
    d_start = (first_t - start) / 1000
    d_end = (end - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    avg = sampled / (len(w) - 1)
    thr = avg * 1.1
    if d_start >= thr:
        d_start = avg / 2
    if is_counter and result > 0 and w[0][1] >= 0:
        d_zero = sampled * (w[0][1] / result)
        if d_zero < d_start:
            d_start = d_zero
    if d_end >= thr:
        d_end = avg / 2
    factor = (sampled + d_start + d_end) / sampled
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


def ref_instant(w: list[Sample], is_rate: bool) -> float | None:
    if len(w) < 2:
        return None
    (t0, v0), (t1, v1) = w[-2], w[-1]
    if t1 == t0:
        return None
    if is_rate:
        res = v1 if v1 < v0 else v1 - v0
        return res / ((t1 - t0) / 1000)
    return v1 - v0


def ref_regression(w: list[Sample], icpt: int) -> tuple[float, float]:
    n = sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    init_y = w[0][1]
    const_y = True
    for i, (t, y) in enumerate(w):
        if const_y and i > 0 and y != init_y:
            const_y = False
        n += 1
        x = (t - icpt) / 1e3
        sx, cx = kahan_inc(x, sx, cx)
        sy, cy = kahan_inc(y, sy, cy)
        sxy, cxy = kahan_inc(x * y, sxy, cxy)
        sx2, cx2 = kahan_inc(x * x, sx2, cx2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sx += cx
    sy += cy
    sxy += cxy
    sx2 += cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = cov / var if var != 0 else (math.nan if cov == 0 else math.copysign(math.inf, cov))
    return slope, sy / n - slope * sx / n


def ref_holt(w: list[Sample], sf: float, tf: float) -> float | None:
    if len(w) < 2:
        return None
    s0, s1 = 0.0, w[0][1]
    b = w[1][1] - w[0][1]
    for i in range(1, len(w)):
        x = sf * w[i][1]
        if i - 1 != 0:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


def ref_extended_rate(
    w: list[Sample], end: int, range_ms: int, smoothed: bool, is_counter: bool, is_rate: bool
) -> float | None:
    """Prometheus's extendedRate (anchored/smoothed), line by line, on the window the
    engine hands over (boundary samples included)."""
    if not w:
        return None
    start = end - range_ms
    last = len(w) - 1
    # sort.Search(last, T > start) - 1, clamped at 0.
    first = max(0, next((i for i in range(last) if w[i][0] > start), last) - 1)
    if smoothed:
        last = next((i for i in range(last) if w[i][0] >= end), last)
    if w[last][0] <= start:
        return None

    def interp(p1: Sample, p2: Sample, t: int) -> float:
        y1, y2 = p1[1], p2[1]
        if is_counter and y2 < y1:
            y1 = 0.0
        return y1 + (y2 - y1) * (t - p1[0]) / (p2[0] - p1[0])

    left = interp(w[first], w[first + 1], start) if smoothed and w[first][0] < start else w[first][1]
    right = interp(w[last - 1], w[last], end) if smoothed and last > 0 and w[last][0] > end else w[last][1]
    result = right - left
    if is_counter:
        fi, la = first, last
        if w[fi][0] <= start:
            fi += 1
        if w[la][0] >= end:
            la -= 1
        corr, prev = 0.0, left
        for _, v in w[fi : la + 1]:
            if v < prev:
                corr += prev
            prev = v
        if right < prev:
            corr += prev
        result += corr
    if is_rate:
        result /= range_ms / 1000
    return result
