"""The PromQL function kernels, attached by name to :mod:`function_table`, and :func:`call_function`.

Everything else about a function (argument types, arity, flags) is its entry in
:data:`signalfire.promql.function_table.FUNCTIONS`, the one list of functions;
:data:`KERNELS` only says how to *evaluate* each of those names, and a test keeps the
two on exactly the same names. The engine evaluates the arguments first:
range arguments arrive as :class:`RangeWindows`, instant vectors as
:class:`StepMatrix`, scalars as :class:`ScalarSeries` (one value per step) and string
literals as :class:`StringValue`. Results mark rows ``drop_name`` where Prometheus
drops ``__name__``; the evaluator removes names (now, or at the end with delayed name
removal) and merges rows that end up equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from signalfire._types import F64, Bool
from signalfire.errors import QueryError
from signalfire.labels import Labels
from signalfire.labels.labels import METRIC_NAME
from signalfire.promql import ast
from signalfire.promql import counter_functions as counters
from signalfire.promql import histograms as hist
from signalfire.promql import instant_functions as inst
from signalfire.promql import range_functions as rf
from signalfire.promql import trend_functions as trend
from signalfire.promql.values import EvalContext, RangeWindows, ScalarSeries, StepMatrix, StringValue, Value
from signalfire.util.gofmt import format_go_g
from signalfire.util.gofmt import format_om_float as format_openmetrics_float

Impl = Callable[[ast.Call, list[Value], EvalContext], Value]


def call_function(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    """Evaluate ``node`` (a call) with its already evaluated ``args``."""
    kernel = KERNELS.get(node.func)
    if kernel is None:
        raise QueryError(f"unknown function: {node.func}")
    with np.errstate(all="ignore"):
        return kernel(node, args, ctx)


# ------------------------------------------------------------ helpers


def _scalar(v: Value, T: int) -> F64:
    if isinstance(v, ScalarSeries):
        return v.values
    raise QueryError(f"expected scalar argument, got {type(v).__name__}")


def _string(v: Value) -> str:
    if isinstance(v, StringValue):
        return v.value
    raise QueryError(f"expected string argument, got {type(v).__name__}")


def _matrix(v: Value) -> StepMatrix:
    if isinstance(v, StepMatrix):
        return v
    raise QueryError(f"expected instant vector argument, got {type(v).__name__}")


def _windows(v: Value) -> RangeWindows:
    if isinstance(v, RangeWindows):
        return v
    raise QueryError(f"expected range vector argument, got {type(v).__name__}")


def _from_windows(w: RangeWindows, vals: F64, present: Bool, keep_name: bool) -> StepMatrix:
    """Rows of ``w`` that have a value at some step; names dropped unless ``keep_name``."""
    rows = np.flatnonzero(present.any(axis=1))
    labels = [w.labels[i] for i in rows.tolist()]
    if keep_name:
        drop = None if w.drop_name is None else w.drop_name[rows]
    else:
        drop = np.ones(len(rows), np.bool_)
    return StepMatrix(labels, vals[rows], present[rows], drop)


# ------------------------------------------------------------ range functions

RangeKernel = Callable[[RangeWindows], tuple[F64, Bool]]
_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def _range(kernel: RangeKernel, keep_name: bool = False) -> Impl:
    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        w = _windows(args[0])
        vals, present = kernel(w)
        return _from_windows(w, vals, present, keep_name)

    return impl


def _counter_rate(is_rate: bool) -> Impl:
    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        w = _windows(args[0])
        vals, present = counters.extrapolated_rate(w, True, is_rate)
        out = _from_windows(w, vals, present, False)
        _warn_not_counter(w, present, ctx, node.args[0])
        _warn_st_overlap(w, present, ctx, node.args[0])
        return out

    return impl


def _warn_not_counter(w: RangeWindows, present: Bool, ctx: EvalContext, arg: ast.Node) -> None:
    """Info for each metric name that does not look like a counter (type labels off)."""
    dropped = w.drop_name
    seen: set[str] = set()
    for i in np.flatnonzero(present.any(axis=1)).tolist():
        if dropped is not None and dropped[i]:
            continue
        ls = w.labels[i]
        # Labels sort "__name__" first unless a label name sorts before it.
        name = ls[0][1] if ls and ls[0][0] == METRIC_NAME else ls.get(METRIC_NAME)
        if name in seen:
            continue
        seen.add(name)
        if name and not name.endswith(_COUNTER_SUFFIXES):
            ctx.info(
                f'metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "{name}"',
                arg,
            )


def _warn_st_overlap(w: RangeWindows, present: Bool, ctx: EvalContext, arg: ast.Node) -> None:
    """Warn once per metric name whose windows hold a start time overlapping the sample before."""
    if w.st is None:
        return
    flags = counters.st_overlaps(w)
    if not flags.any():
        return
    p = np.zeros(len(flags) + 1, np.int64)
    np.cumsum(flags, out=p[1:])
    # Pairs inside a window are samples lo+1 .. hi-1.
    lo1 = np.minimum(w.lo + 1, w.hi)
    hit = ((p[w.hi] - p[lo1]) > 0) & present
    for i in np.flatnonzero(hit.any(axis=1)).tolist():
        name = w.labels[i].get(METRIC_NAME)
        ctx.warn(
            f'sample has start time that overlaps with previous sample timestamp for metric "{name}"', arg
        )


def _irate(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    w = _windows(args[0])
    vals, present = counters.instant_value(w, True)
    _warn_st_overlap(w, present, ctx, node.args[0])
    return _from_windows(w, vals, present, False)


def _delta(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    w = _windows(args[0])
    vals, present = counters.extrapolated_rate(w, False, False)
    return _from_windows(w, vals, present, False)


def _quantile_over_time(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    w = _windows(args[1])
    q = _scalar(args[0], ctx.T)
    vals, present = rf.quantile_over_time(w, q)
    _warn_quantile(q, np.asarray(present.any(axis=0), np.bool_), ctx, node.args[0])
    return _from_windows(w, vals, present, False)


def _warn_quantile(q: F64, used: Bool, ctx: EvalContext, arg: ast.Node) -> None:
    bad = used & (np.isnan(q) | (q < 0) | (q > 1))
    if bad.any():
        ctx.warn(f"quantile value should be between 0 and 1, got {format_go_g(float(q[bad][0]))}", arg)


def _predict_linear(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    w = _windows(args[0])
    vals, present = trend.predict_linear(w, ctx.ts, _scalar(args[1], ctx.T))
    return _from_windows(w, vals, present, False)


def _double_exp(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    w = _windows(args[0])
    sf, tf = _scalar(args[1], ctx.T), _scalar(args[2], ctx.T)
    if w.num_series:
        # Go's ``sf <= 0 || sf >= 1``: NaN passes the check (and yields NaN).
        bad_sf = (sf <= 0) | (sf >= 1)
        if bad_sf.any():
            raise QueryError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf[bad_sf][0]:f}")
        bad_tf = (tf <= 0) | (tf >= 1)
        if bad_tf.any():
            raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf[bad_tf][0]:f}")
    vals, present = trend.double_exponential_smoothing(w, sf, tf)
    return _from_windows(w, vals, present, False)


def _absent_over_time(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    w = _windows(args[0])
    any_present = (w.hi > w.lo).any(axis=0) if w.num_series else np.zeros(len(w.eval_ts), np.bool_)
    arg = node.args[0]
    matchers = arg.vector.matchers if isinstance(arg, ast.MatrixSelector) else None
    return inst.absent_at(np.asarray(any_present, np.bool_), inst.absent_labels(matchers))


# ------------------------------------------------------------ instant functions


def _math(name: str) -> Impl:
    fn = inst.MATH[name]

    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        return inst.apply_elementwise(_matrix(args[0]), fn)

    return impl


def _round(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    to_nearest = _scalar(args[1], ctx.T) if len(args) > 1 else None
    return inst.round_(_matrix(args[0]), to_nearest)


def _clamp(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    return inst.clamp(_matrix(args[0]), _scalar(args[1], ctx.T), _scalar(args[2], ctx.T))


def _clamp_min(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    return inst.clamp(_matrix(args[0]), _scalar(args[1], ctx.T), np.full(ctx.T, np.inf))


def _clamp_max(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    return inst.clamp(_matrix(args[0]), np.full(ctx.T, -np.inf), _scalar(args[1], ctx.T))


def _date(name: str) -> Impl:
    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        return inst.date_function(name, _matrix(args[0]) if args else None, ctx)

    return impl


def _timestamp(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    return inst.timestamp(_matrix(args[0]), ctx)


def _vector(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    return inst.vector(ScalarSeries(_scalar(args[0], ctx.T)))


def _scalar_fn(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    return inst.scalar(_matrix(args[0]), ctx.T)


def _time(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    return ScalarSeries(ctx.ts / 1000.0)


def _const(fn: Callable[[EvalContext], float]) -> Impl:
    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        return ScalarSeries(np.full(ctx.T, fn(ctx)))

    return impl


def _min_max_of(use_min: bool) -> Impl:
    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        vals = [_scalar(a, ctx.T) for a in args]
        out = vals[0]
        for v in vals[1:]:
            out = np.minimum(out, v) if use_min else np.maximum(out, v)
        return ScalarSeries(np.asarray(out, np.float64))

    return impl


def _warn_sort_in_range(node: ast.Call, ctx: EvalContext) -> None:
    if ctx.start != ctx.end:
        ctx.warn("sort is ineffective for range queries since results are always ordered by labels", node)


def _sort(descending: bool) -> Impl:
    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        _warn_sort_in_range(node, ctx)
        return inst.sort_by_value(_matrix(args[0]), descending)

    return impl


def _sort_by_label(descending: bool) -> Impl:
    def impl(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
        _warn_sort_in_range(node, ctx)
        names = [_string(a) for a in args[1:]]
        return inst.sort_by_label(_matrix(args[0]), names, descending)

    return impl


def _merge(sm: StepMatrix) -> StepMatrix:
    from signalfire.promql.names import merge_same_labels

    return merge_same_labels(sm)


def _label_replace(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    dst, repl, src, regex = (_string(a) for a in args[1:5])
    return _merge(inst.label_replace(_matrix(args[0]), dst, repl, src, regex))


def _label_join(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    dst, sep = _string(args[1]), _string(args[2])
    srcs = [_string(a) for a in args[3:]]
    return _merge(inst.label_join(_matrix(args[0]), dst, sep, srcs))


def _absent(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    sm = _matrix(args[0])
    any_present = sm.present.any(axis=0) if sm.num_series else np.zeros(ctx.T, np.bool_)
    # Prometheus looks at the argument node as written: parentheses hide the matchers.
    arg = node.args[0]
    matchers = arg.matchers if isinstance(arg, ast.VectorSelector) else None
    return inst.absent_at(np.asarray(any_present, np.bool_), inst.absent_labels(matchers))


def _info(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    from signalfire.promql.info import info

    return info(node, _matrix(args[0]), ctx)


def _start_timestamp(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    from signalfire.promql.info import start_timestamp

    return start_timestamp(node, ctx)


def _native_only(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    """histogram_count/sum/avg/stddev/stdvar: they read native histograms only, and
    signalfire stores floats, so there is nothing to return."""
    return StepMatrix.empty(ctx.T)


# ------------------------------------------------------------ classic histograms


def _histogram_quantile(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    q = _scalar(args[0], ctx.T)
    _warn_quantile(q, np.ones(ctx.T, np.bool_), ctx, node.args[0])
    block = hist.bucket_block(_matrix(args[1]), ctx, node.args[1])
    return _quantiles_out(block, [q], None, ctx, node.args[1])


def _histogram_quantiles(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    label = _string(args[1])
    qs = [_scalar(a, ctx.T) for a in args[2:]]
    for q, n in zip(qs, node.args[2:]):
        _warn_quantile(q, np.ones(ctx.T, np.bool_), ctx, n)
    block = hist.bucket_block(_matrix(args[0]), ctx, node.args[0])
    return _quantiles_out(block, qs, label, ctx, node.args[0])


def _quantiles_out(
    block: hist.BucketBlock, qs: list[F64], label: str | None, ctx: EvalContext, arg: ast.Node
) -> StepMatrix:
    G = len(block.labels)
    if G == 0:
        return StepMatrix.empty(ctx.T)
    fb = hist.fix_monotonic(block)
    labels: list[Labels] = []
    vals, pres = [], []
    for q in qs:
        res, present, forced = hist.bucket_quantile(q, block, fb)
        for g in np.flatnonzero((forced & present).any(axis=1)).tolist():
            name = f'"{block.names[g]}"' if ctx.settings.delayed_name_removal else '""'
            ctx.info(hist.MONOTONICITY_INFO.format(name=name), arg)
        if label is None:
            labels.extend(block.labels)
        else:
            # One label value per query; a q that changes between steps keeps its first value.
            qv = format_openmetrics_float(float(q[0])) if len(q) else ""
            labels.extend(ls.set(label, qv) for ls in block.labels)
        vals.append(res)
        pres.append(present)
    values = np.concatenate(vals)
    present_all = np.concatenate(pres)
    if label is not None and len(set(labels)) != len(labels):
        raise QueryError("vector cannot contain metrics with the same labelset")
    return StepMatrix(labels, values, present_all, np.ones(len(labels), np.bool_))


def _histogram_fraction(node: ast.Call, args: list[Value], ctx: EvalContext) -> Value:
    lower, upper = _scalar(args[0], ctx.T), _scalar(args[1], ctx.T)
    block = hist.bucket_block(_matrix(args[2]), ctx, node.args[2])
    if not block.labels:
        return StepMatrix.empty(ctx.T)
    res, present = hist.bucket_fraction(lower, upper, block)
    return StepMatrix(list(block.labels), res, present, np.ones(len(block.labels), np.bool_))


# ------------------------------------------------------------ the table


def _kernels() -> dict[str, Impl]:
    t: dict[str, Impl] = {}

    def add(name: str, impl: Impl) -> None:
        t[name] = impl

    simple_range: dict[str, RangeKernel] = {
        "avg_over_time": rf.avg_over_time,
        "changes": counters.changes,
        "count_over_time": rf.count_over_time,
        "deriv": trend.deriv,
        "idelta": lambda w: counters.instant_value(w, False),
        "mad_over_time": rf.mad_over_time,
        "max_over_time": rf.max_over_time,
        "min_over_time": rf.min_over_time,
        "present_over_time": rf.present_over_time,
        "resets": counters.resets,
        "stddev_over_time": rf.stddev_over_time,
        "stdvar_over_time": rf.stdvar_over_time,
        "sum_over_time": rf.sum_over_time,
        "ts_of_first_over_time": rf.ts_of_first_over_time,
        "ts_of_last_over_time": rf.ts_of_last_over_time,
        "ts_of_max_over_time": rf.ts_of_max_over_time,
        "ts_of_min_over_time": rf.ts_of_min_over_time,
    }
    for name, kernel in simple_range.items():
        add(name, _range(kernel))
    add("first_over_time", _range(rf.first_over_time, keep_name=True))
    add("last_over_time", _range(rf.last_over_time, keep_name=True))
    add("rate", _counter_rate(True))
    add("increase", _counter_rate(False))
    add("delta", _delta)
    add("irate", _irate)
    add("quantile_over_time", _quantile_over_time)
    add("predict_linear", _predict_linear)
    add("double_exponential_smoothing", _double_exp)
    add("absent_over_time", _absent_over_time)
    for name in inst.MATH:
        add(name, _math(name))
    add("round", _round)
    add("clamp", _clamp)
    add("clamp_min", _clamp_min)
    add("clamp_max", _clamp_max)
    for name in inst.DATE_FUNCTIONS:
        add(name, _date(name))
    add("timestamp", _timestamp)
    add("vector", _vector)
    add("scalar", _scalar_fn)
    add("time", _time)
    add("pi", _const(lambda ctx: math.pi))
    add("start", _const(lambda ctx: ctx.start / 1000.0))
    add("end", _const(lambda ctx: ctx.end / 1000.0))
    add("min_of", _min_max_of(True))
    add("max_of", _min_max_of(False))
    add("sort", _sort(False))
    add("sort_desc", _sort(True))
    add("sort_by_label", _sort_by_label(False))
    add("sort_by_label_desc", _sort_by_label(True))
    add("label_replace", _label_replace)
    add("label_join", _label_join)
    add("absent", _absent)
    add("info", _info)
    add("start_timestamp", _start_timestamp)
    for name in ("histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar"):
        add(name, _native_only)
    add("histogram_quantile", _histogram_quantile)
    add("histogram_quantiles", _histogram_quantiles)
    add("histogram_fraction", _histogram_fraction)
    return t


#: The kernel of every function of :data:`~signalfire.promql.function_table.FUNCTIONS`, by name.
KERNELS: dict[str, Impl] = _kernels()
