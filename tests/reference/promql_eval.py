"""A slow, obviously correct PromQL evaluator for range functions, aggregations and
binary operators: plain Python loops, one step and one series at a time, written from
the definitions in the Prometheus documentation (3.x semantics: left-open windows,
5m lookback, stale markers end a series, ``__name__`` dropped by functions and arithmetic).

It is the twin that the vectorised engine is compared with in
``tests/property/test_engine_vs_reference.py``. Speed does not matter here; clarity does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reference.promql_exprs import Aggregate, Binary, Expr, Num, RangeCall, Selector
from signalfire._types import is_stale_value
from signalfire.labels import Labels

LOOKBACK_MS = 5 * 60_000

Vector = dict[Labels, float]  # one step's instant vector
Matrix = dict[Labels, dict[int, float]]  # series -> {timestamp ms: value}


class ReferenceError_(Exception):
    """The query is an error in PromQL (e.g. many-to-many matching)."""


@dataclass(frozen=True, slots=True)
class Series:
    labels: Labels
    ts: Sequence[int]
    values: Sequence[float]


def evaluate_range(expr: Expr, data: Sequence[Series], start: int, end: int, step: int) -> Matrix:
    """Evaluate ``expr`` at ``start, start+step, ... <= end`` (ms) as a range query does."""
    out: Matrix = {}
    t = start
    while t <= end:
        v = evaluate_at(expr, data, t)
        if isinstance(v, float):
            v = {Labels(()): v}
        for labels, value in v.items():
            out.setdefault(labels, {})[t] = value
        t += step
    return out


def evaluate_at(expr: Expr, data: Sequence[Series], t: int) -> Vector | float:
    """One evaluation step: a vector, or a float for a scalar expression."""
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Selector):
        return _instant_selector(expr, data, t)
    if isinstance(expr, RangeCall):
        return _range_call(expr, data, t)
    if isinstance(expr, Aggregate):
        inner = evaluate_at(expr.expr, data, t)
        assert isinstance(inner, dict), "aggregations take a vector"
        return _aggregate(expr, inner)
    return _binary(expr, evaluate_at(expr.lhs, data, t), evaluate_at(expr.rhs, data, t))


# ---------------------------------------------------------------- selectors


def _selected(sel: Selector, data: Sequence[Series]) -> list[Series]:
    want = dict(sel.matchers)
    return [
        s
        for s in data
        if s.labels.metric_name == sel.name and all(s.labels.get(k) == v for k, v in want.items())
    ]


def _instant_selector(sel: Selector, data: Sequence[Series], t: int) -> Vector:
    """The newest sample in (t - 5m, t]; a stale marker there means the series is absent."""
    out: Vector = {}
    t -= sel.offset_ms  # offset moves the evaluation time back (forward when negative)
    for s in _selected(sel, data):
        newest = None
        for ts, v in zip(s.ts, s.values):
            if t - LOOKBACK_MS < ts <= t:
                newest = v
        if newest is not None and not is_stale_value(newest):
            out[s.labels] = newest
    return out


def _window(s: Series, t: int, range_ms: int) -> list[tuple[int, float]]:
    """Samples in (t - range, t], stale markers left out."""
    return [(ts, v) for ts, v in zip(s.ts, s.values) if t - range_ms < ts <= t and not is_stale_value(v)]


# ---------------------------------------------------------------- range functions


def _range_call(call: RangeCall, data: Sequence[Series], t: int) -> Vector:
    out: Vector = {}
    t -= call.selector.offset_ms
    for s in _selected(call.selector, data):
        pts = _window(s, t, call.range_ms)
        if not pts:
            continue
        value = _range_value(call, pts, t)
        if value is None:
            continue
        keep_name = call.func == "last_over_time"
        out[s.labels if keep_name else s.labels.without_metric_name()] = value
    return out


def _range_value(call: RangeCall, pts: list[tuple[int, float]], t: int) -> float | None:
    f = call.func
    vals = [v for _, v in pts]
    if f in ("rate", "increase", "delta"):
        return _extrapolated_rate(pts, t, call.range_ms, is_counter=f != "delta", is_rate=f == "rate")
    if f in ("irate", "idelta"):
        if len(pts) < 2:
            return None
        (t0, v0), (t1, v1) = pts[-2], pts[-1]
        if f == "irate":
            diff = v1 if v1 < v0 else v1 - v0  # a counter reset: the new value is the increase
            return diff / ((t1 - t0) / 1000)
        return v1 - v0
    if f == "changes":
        return float(
            sum(1 for a, b in itertools.pairwise(vals) if not (a == b or (math.isnan(a) and math.isnan(b))))
        )
    if f == "resets":
        return float(sum(1 for a, b in itertools.pairwise(vals) if b < a))
    if f == "deriv":
        return _slope(pts) if len(pts) >= 2 else None
    if f == "sum_over_time":
        return _sum(vals)
    if f == "avg_over_time":
        return _sum(vals) / len(vals)
    if f == "min_over_time":
        return _min_max(vals, min)
    if f == "max_over_time":
        return _min_max(vals, max)
    if f == "count_over_time":
        return float(len(vals))
    if f == "last_over_time":
        return vals[-1]
    if f == "present_over_time":
        return 1.0
    if f == "stdvar_over_time":
        return _variance(vals)
    if f == "stddev_over_time":
        return math.sqrt(_variance(vals))
    if f == "quantile_over_time":
        assert call.param is not None
        return quantile(call.param, vals)
    raise AssertionError(f"reference: unknown range function {f}")


def _extrapolated_rate(
    pts: list[tuple[int, float]], t: int, range_ms: int, *, is_counter: bool, is_rate: bool
) -> float | None:
    """rate/increase/delta as documented: the increase between the first and last sample,
    corrected for counter resets, extrapolated towards the window edges (at most to the
    edge, to half a sample interval when the edge is far, and never below zero for counters)."""
    if len(pts) < 2:
        return None
    result = pts[-1][1] - pts[0][1]
    if is_counter:
        for (_, prev), (_, cur) in itertools.pairwise(pts):
            if cur < prev:
                result += prev
    first_t, first_v = pts[0]
    last_t = pts[-1][0]
    to_start = (first_t - (t - range_ms)) / 1000
    to_end = (t - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    avg_gap = sampled / (len(pts) - 1)
    threshold = avg_gap * 1.1
    if to_start >= threshold:
        to_start = avg_gap / 2
    if is_counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = avg_gap / 2
    factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


def _slope(pts: list[tuple[int, float]]) -> float:
    """Least-squares slope per second, x measured from the first sample."""
    ys = [v for _, v in pts]
    if all(y == ys[0] for y in ys):
        return 0.0
    xs = [(ts - pts[0][0]) / 1000 for ts, _ in pts]
    mx = sum(xs) / len(xs)
    my = _sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    var = sum((x - mx) ** 2 for x in xs)
    return cov / var


def _sum(vals: Sequence[float]) -> float:
    return math.fsum(vals) if all(math.isfinite(v) for v in vals) else sum(vals)


def _min_max(vals: Sequence[float], pick) -> float:  # type: ignore[no-untyped-def]
    """min/max that ignore NaN unless every value is NaN."""
    real = [v for v in vals if not math.isnan(v)]
    return pick(real) if real else math.nan


def _variance(vals: Sequence[float]) -> float:
    """Population variance; any Inf or NaN makes it NaN."""
    if any(not math.isfinite(v) for v in vals):
        return math.nan
    mean = math.fsum(vals) / len(vals)
    return math.fsum((v - mean) ** 2 for v in vals) / len(vals)


def quantile(q: float, vals: Sequence[float]) -> float:
    """The q-quantile with linear interpolation between closest ranks; NaNs sort first."""
    if not vals:
        return math.nan
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    s = sorted(vals, key=lambda v: (not math.isnan(v), 0.0 if math.isnan(v) else v))
    rank = q * (len(s) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(s) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return s[lower] * (1 - weight) + s[upper] * weight


# ---------------------------------------------------------------- aggregations


def _group_key(agg: Aggregate, labels: Labels) -> Labels:
    if agg.grouping is None:
        return Labels(())
    if agg.without:
        return labels.without("__name__", *agg.grouping)
    return labels.only(agg.grouping)


def _aggregate(agg: Aggregate, vec: Vector) -> Vector:
    groups: dict[Labels, list[tuple[Labels, float]]] = {}
    for labels in sorted(vec):
        groups.setdefault(_group_key(agg, labels), []).append((labels, vec[labels]))
    out: Vector = {}
    for key, members in groups.items():
        vals = [v for _, v in members]
        if agg.op in ("topk", "bottomk"):
            assert agg.param is not None
            for labels, v in _top(members, int(agg.param), largest=agg.op == "topk"):
                out[labels] = v
            continue
        out[key] = _aggregate_values(agg, vals)
    return out


def _aggregate_values(agg: Aggregate, vals: list[float]) -> float:
    op = agg.op
    if op == "sum":
        return _sum(vals)
    if op == "avg":
        return _sum(vals) / len(vals)
    if op == "min":
        return _min_max(vals, min)
    if op == "max":
        return _min_max(vals, max)
    if op == "count":
        return float(len(vals))
    if op == "group":
        return 1.0
    if op == "stdvar":
        return _variance(vals)
    if op == "stddev":
        return math.sqrt(_variance(vals))
    if op == "quantile":
        assert agg.param is not None
        return quantile(agg.param, vals)
    raise AssertionError(f"reference: unknown aggregation {op}")


def _top(members: list[tuple[Labels, float]], k: int, largest: bool) -> list[tuple[Labels, float]]:
    """The k largest (smallest) samples; NaN always ranks last. Ties are broken arbitrarily,
    so callers compare topk/bottomk results by their values, not their labels."""
    if k < 1:
        return []

    def rank(item: tuple[Labels, float]) -> tuple[int, float]:
        v = item[1]
        if math.isnan(v):
            return (1, 0.0)
        return (0, -v if largest else v)

    return sorted(members, key=rank)[:k]


# ---------------------------------------------------------------- binary operators


def apply_op(op: str, a: float, b: float) -> float:
    """IEEE arithmetic as Go does it (x/0 is ±Inf or NaN, % is fmod, ^ is pow)."""
    with np.errstate(all="ignore"):
        x, y = np.float64(a), np.float64(b)
        if op == "+":
            return float(x + y)
        if op == "-":
            return float(x - y)
        if op == "*":
            return float(x * y)
        if op == "/":
            return float(x / y)
        if op == "%":
            return float(np.fmod(x, y))
        if op == "^":
            return float(np.power(x, y))
    raise AssertionError(f"reference: unknown operator {op}")


def compare(op: str, a: float, b: float) -> bool:
    return {
        "==": a == b,
        "!=": a != b,
        ">": a > b,
        "<": a < b,
        ">=": a >= b,
        "<=": a <= b,
    }[op]


def _binary(b: Binary, lhs: Vector | float, rhs: Vector | float) -> Vector | float:
    comparison = b.op in ("==", "!=", ">", "<", ">=", "<=")
    if isinstance(lhs, float) and isinstance(rhs, float):
        if comparison:
            return float(compare(b.op, lhs, rhs))  # scalar comparisons always need bool
        return apply_op(b.op, lhs, rhs)
    if isinstance(lhs, float) or isinstance(rhs, float):
        return _vector_scalar(b, lhs, rhs, comparison)
    return _vector_vector(b, lhs, rhs, comparison)


def _vector_scalar(b: Binary, lhs: Vector | float, rhs: Vector | float, comparison: bool) -> Vector:
    out: Vector = {}
    vec = lhs if isinstance(lhs, dict) else rhs
    assert isinstance(vec, dict)
    for labels, v in vec.items():
        x, y = (v, rhs) if isinstance(lhs, dict) else (lhs, v)
        assert isinstance(x, float) and isinstance(y, float)
        if comparison:
            hit = compare(b.op, x, y)
            if b.return_bool:
                out[labels.without_metric_name()] = float(hit)
            elif hit:
                out[labels] = v  # a filter keeps the vector's sample as it is
        else:
            out[labels.without_metric_name()] = apply_op(b.op, x, y)
    return out


def _signature(b: Binary, labels: Labels) -> Labels:
    if b.on is not None:
        return labels.only(b.on)
    return labels.without("__name__", *(b.ignoring or ()))


def _vector_vector(b: Binary, lhs: Vector, rhs: Vector, comparison: bool) -> Vector:
    if not lhs or not rhs:
        return {}  # nothing can match, so not even duplicates on one side are an error
    right: dict[Labels, tuple[Labels, float]] = {}
    for labels, v in rhs.items():
        sig = _signature(b, labels)
        if sig in right:
            raise ReferenceError_(f"found duplicate series for the match group {sig} on the right hand-side")
        right[sig] = (labels, v)
    out: Vector = {}
    matched: set[Labels] = set()
    for labels, lv in sorted(lhs.items()):
        sig = _signature(b, labels)
        if sig not in right:
            continue
        if b.group_left is None:
            if sig in matched:
                raise ReferenceError_("multiple matches for labels: many-to-one matching must be explicit")
            matched.add(sig)
        r_labels, rv = right[sig]
        if comparison:
            hit = compare(b.op, lv, rv)
            if not b.return_bool and not hit:
                continue
            value = float(hit) if b.return_bool else lv
            result_labels = labels.without_metric_name() if b.return_bool else labels
        else:
            value = apply_op(b.op, lv, rv)
            result_labels = labels.without_metric_name()
        if b.group_left is None:
            # One-to-one results carry only the matching labels: on(...) keeps them,
            # ignoring(...) removes the ignored ones (Prometheus's resultMetric).
            if b.on is not None:
                result_labels = result_labels.only(b.on)
            elif b.ignoring is not None:
                result_labels = result_labels.without(*b.ignoring)
        else:
            for name in b.group_left:
                result_labels = result_labels.set(name, r_labels.get(name))
        if result_labels in out:
            raise ReferenceError_("multiple matches for labels: grouping labels must ensure unique matches")
        out[result_labels] = value
    return out
