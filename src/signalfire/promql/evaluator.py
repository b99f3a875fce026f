"""Node dispatch: evaluate a PromQL syntax tree at all steps of a query at once.

Each node returns a value for every evaluation time in ``ctx.ts``: a
:class:`StepMatrix` for instant vectors, a :class:`ScalarSeries` for scalars, a
:class:`RangeWindows` for range vectors (matrix selectors and subqueries) and a
:class:`StringValue` for strings. Subqueries evaluate their inner expression with a
context of their own times (see subquery.py); everything else shares ``ctx``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from signalfire.errors import PromQLParseError, QueryError
from signalfire.labels import EMPTY_LABELS, Matcher
from signalfire.promql import aggregations, ast, binops, selectors
from signalfire.promql import subquery as subq
from signalfire.promql.limits import QueryLimits
from signalfire.promql.names import settle_names
from signalfire.promql.stats import QueryStats
from signalfire.promql.step_invariant import invariant_nodes, repeat_steps, worth_wrapping
from signalfire.promql.values import (
    EvalContext,
    EvalSettings,
    RangeWindows,
    ScalarSeries,
    StepMatrix,
    StringValue,
    Value,
)
from signalfire.storage import SeriesSet
from signalfire.storage.interface import SelectHints

#: An evaluator's settings until :meth:`Evaluator.evaluate` takes the query's.
_NO_SETTINGS = EvalSettings()

#: ``(matchers, hints) -> SeriesSet`` over the query's storage.
SelectFn = Callable[[Sequence[Matcher], SelectHints], SeriesSet]


class Evaluator:
    """Evaluates one query. Not thread-safe; one per query."""

    def __init__(self, select: SelectFn, limits: QueryLimits, stats: QueryStats):
        self.select_fn = select
        self.settings = _NO_SETTINGS
        self.limits = limits
        self.stats = stats
        self._top_ts: np.ndarray | None = None
        #: Name of the closest enclosing function or aggregation (Prometheus's hints.Func);
        #: "" under a binary operator.
        self._func = ""
        self._root: ast.Expr | None = None
        #: The step-invariant nodes of the tree, found on first need: only a node evaluated
        #: at more than one step asks, so an instant query without subqueries never walks it.
        self._invariant: set[int] | None = None

    # ------------------------------------------------------------ entry points

    def evaluate(self, node: ast.Expr, ctx: EvalContext) -> Value:
        """Evaluate the root node; numpy floating warnings are expected (1/0, NaN) and silenced."""
        self._top_ts = ctx.ts
        self.settings = ctx.settings
        self._root, self._invariant = node, None
        ctx.select = self._select_range
        with np.errstate(all="ignore"):
            return self.eval(node, ctx)

    def eval(self, node: ast.Expr, ctx: EvalContext) -> Value:
        self.limits.check_deadline()
        if len(ctx.ts) > 1 and self._is_invariant(node) and worth_wrapping(node):
            return self._eval_once(node, ctx)
        method = _DISPATCH.get(type(node))
        if method is None:
            raise QueryError(f"unhandled expression of type {type(node).__name__}")
        return method(self, node, ctx)

    def _is_invariant(self, node: ast.Expr) -> bool:
        if self._invariant is None:
            self._invariant = invariant_nodes(self._root) if self._root is not None else set()
        return id(node) in self._invariant

    def _eval_once(self, node: ast.Expr, ctx: EvalContext) -> Value:
        """A step-invariant subtree: evaluate at the first step only, then repeat the column.

        The context keeps the query's start/end/step, which ``start()``/``end()`` read.
        """
        one = ctx.with_steps(ctx.ts[:1], ctx.start, ctx.end, ctx.step)
        method = _DISPATCH[type(node)]
        return repeat_steps(method(self, node, one), ctx.T, ctx.ts)

    # ------------------------------------------------------------ helpers

    def duration(self, d: ast.Duration | None) -> int:
        if d is None:
            return 0
        s = self.settings
        try:
            return ast.eval_duration(d, s.step, s.end - s.start)
        except ast.DurationRangeError as err:  # step() or range() made it so
            raise QueryError(f"{err} for the query's step and range") from None

    def _offset(self, d: ast.Duration, node: ast.Node) -> int:
        off = self.duration(d)
        if off < 0 and not self.settings.enable_negative_offset:
            raise PromQLParseError("negative offset is disabled", offset=node.pos)
        return off

    def _check_at(self, at: ast.AtKind, node: ast.Node) -> None:
        if at is not ast.AtKind.NONE and not self.settings.enable_at_modifier:
            raise PromQLParseError("@ modifier is disabled", offset=node.pos)

    def _times(self, ctx: EvalContext, offset_ms: int, at: ast.AtKind, at_ms: int) -> np.ndarray:
        s = self.settings
        return selectors.selector_times(ctx.ts, offset_ms, at, at_ms, s.start, s.end)

    def _select(
        self, matchers: Sequence[Matcher], mint: int, maxt: int, rng: int = 0, func: str = ""
    ) -> SeriesSet:
        hints = SelectHints(start=mint, end=maxt, step=self.settings.step, range=rng, func=func or self._func)
        return self.select_fn(matchers, hints)

    def _select_range(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> SeriesSet:
        return self._select(matchers, mint, maxt)

    def _instant_vector(
        self, ss: SeriesSet, t: np.ndarray, ctx: EvalContext, node: ast.VectorSelector
    ) -> StepMatrix:
        """:func:`selectors.instant_vector` once the limits allow what it will hold: the
        dense cells, then (when they could go over) the exact count of picked samples."""
        S, T = len(ss.labels), len(t)
        self.limits.check_cells(S, T)
        if self.limits.max_samples > 0 and self.limits.current + S * T > self.limits.max_samples:
            self.limits.reserve(selectors.count_present(ss, t, self.settings.lookback_ms))
        self.limits.check_deadline()
        return selectors.instant_vector(ss, t, self.settings.lookback_ms, node.start_timestamp, node.smoothed)

    def _account(self, per_step: np.ndarray, ctx: EvalContext) -> None:
        """Count loaded samples against the limit and, at the top level, per step."""
        total = int(per_step.sum())
        self.limits.add_samples(total)
        if self._top_ts is not None and ctx.ts is self._top_ts:
            self.stats.add_step_samples(per_step.astype(np.int64))
        else:
            self.stats.other_samples += total

    # ------------------------------------------------------------ leaves

    def _number(self, node: ast.NumberLiteral, ctx: EvalContext) -> Value:
        return ScalarSeries(np.full(ctx.T, float(node.value)))

    def _string(self, node: ast.StringLiteral, ctx: EvalContext) -> Value:
        return StringValue(node.value)

    def _duration_expr(self, node: ast.DurationExpr, ctx: EvalContext) -> Value:
        return ScalarSeries(np.full(ctx.T, self.duration(node.duration) / 1000.0))

    def _paren(self, node: ast.ParenExpr, ctx: EvalContext) -> Value:
        return self.eval(node.expr, ctx)

    def _vector_selector(self, node: ast.VectorSelector, ctx: EvalContext) -> Value:
        self._check_at(node.at, node)
        t = self._times(ctx, self._offset(node.offset, node), node.at, node.at_ms)
        if ctx.T == 0:
            return StepMatrix.empty(0)
        maxt = int(t.max()) + (self.settings.lookback_ms if node.smoothed else 0)
        ss = self._select(node.matchers, int(t.min()) - self.settings.lookback_ms + 1, maxt)
        ctx.annotations.merge(ss.warnings)
        sm = self._instant_vector(ss, t, ctx, node)
        self._account(sm.present.sum(axis=0), ctx)
        return sm

    def _matrix_selector(self, node: ast.MatrixSelector, ctx: EvalContext) -> Value:
        vs = node.vector
        self._check_at(vs.at, vs)
        range_ms = self.duration(node.range)
        if range_ms <= 0:
            raise QueryError(f"range selector duration must be positive, got {range_ms}ms")
        t = self._times(ctx, self._offset(vs.offset, vs), vs.at, vs.at_ms)
        extend = vs.anchored or vs.smoothed
        if ctx.T == 0:
            t = np.zeros(1, np.int64)  # no steps: select nothing useful, keep shapes valid
        mint = int(t.min()) - range_ms + 1 - (self.settings.lookback_ms if extend else 0)
        maxt = int(t.max()) + (self.settings.lookback_ms if vs.smoothed else 0)
        ss = self._select(vs.matchers, mint, maxt, range_ms)
        self.limits.check_cells(len(ss.labels), ctx.T)
        extra = 2 * len(ss.labels) * ctx.T if extend else 0  # one sample past each edge
        if (
            self.limits.max_samples > 0
            and self.limits.current + ss.num_samples * ctx.T + extra > self.limits.max_samples
        ):
            self.limits.reserve(selectors.count_in_windows(ss, t[: ctx.T], range_ms) + extra)
        self.limits.check_deadline()
        ctx.annotations.merge(ss.warnings)
        rw = selectors.range_windows(
            ss, t[: ctx.T], range_ms, self.settings.lookback_ms, vs.anchored, vs.smoothed
        )
        self._account((rw.hi - rw.lo).sum(axis=0), ctx)
        return rw

    def _subquery(self, node: ast.SubqueryExpr, ctx: EvalContext) -> Value:
        self._check_at(node.at, node)
        range_ms = self.duration(node.range)
        step_ms = self.duration(node.step) if node.step is not None else self.settings.default_step_ms
        if step_ms <= 0:
            step_ms = self.settings.default_step_ms
        ends = self._times(ctx, self._offset(node.offset, node), node.at, node.at_ms)
        inner_ts = subq.inner_times(ends, range_ms, step_ms, self.limits)
        first, last = (int(inner_ts[0]), int(inner_ts[-1])) if len(inner_ts) else (0, 0)
        inner_ctx = ctx.with_steps(inner_ts, first, last, step_ms)
        inner = self.eval(node.expr, inner_ctx)
        if isinstance(inner, ScalarSeries):
            inner = StepMatrix([EMPTY_LABELS], inner.values[None, :], np.ones((1, len(inner_ts)), np.bool_))
        if not isinstance(inner, StepMatrix):
            raise QueryError("subquery is only allowed on instant vector")
        self.limits.check_cells(inner.num_series, len(ends))
        self.limits.check_deadline()
        return subq.windows_from_inner(inner, inner_ts, ends, range_ms)

    # ------------------------------------------------------------ operators

    def _unary(self, node: ast.UnaryExpr, ctx: EvalContext) -> Value:
        val = self.eval(node.expr, ctx)
        if node.op == "+":
            return val
        if isinstance(val, ScalarSeries):
            return ScalarSeries(-val.values)
        if isinstance(val, StepMatrix):
            return settle_names(binops.unary_minus(val), self.settings.delayed_name_removal)
        raise QueryError("unary expression only allowed on expressions of type scalar or instant vector")

    def _binary(self, node: ast.BinaryExpr, ctx: EvalContext) -> Value:
        outer, self._func = self._func, ""
        try:
            lhs = self.eval(node.lhs, ctx)
            rhs = self.eval(node.rhs, ctx)
        finally:
            self._func = outer
        op = node.op
        delayed = self.settings.delayed_name_removal
        if isinstance(lhs, ScalarSeries) and isinstance(rhs, ScalarSeries):
            return binops.scalar_scalar(op, lhs, rhs)
        if op in binops.SET_OPS:
            if not (isinstance(lhs, StepMatrix) and isinstance(rhs, StepMatrix)):
                raise QueryError(f"set operator {op!r} not allowed in binary scalar expression")
            m = node.matching or ast.VectorMatching(card=ast.Cardinality.MANY_TO_MANY)
            return binops.set_operation(op, lhs, rhs, m)
        if op not in binops.ARITHMETIC and op not in binops.COMPARISON:
            raise QueryError(f"operator {op!r} is not supported for float samples")
        if isinstance(lhs, StepMatrix) and isinstance(rhs, ScalarSeries):
            out = binops.vector_scalar(op, lhs, rhs, False, node.return_bool)
        elif isinstance(lhs, ScalarSeries) and isinstance(rhs, StepMatrix):
            out = binops.vector_scalar(op, rhs, lhs, True, node.return_bool)
        elif isinstance(lhs, StepMatrix) and isinstance(rhs, StepMatrix):
            m = node.matching or ast.VectorMatching()
            out = binops.vector_vector(op, lhs, rhs, m, node.return_bool, delayed)
        else:
            raise QueryError("binary expression must contain only scalar and instant vector types")
        return settle_names(out, delayed)

    def _aggregate(self, node: ast.AggregateExpr, ctx: EvalContext) -> Value:
        param: Any = None
        outer, self._func = self._func, node.op
        try:
            if node.param is not None:
                param = self.eval(node.param, ctx)
            vec = self.eval(node.expr, ctx)
        finally:
            self._func = outer
        if not isinstance(vec, StepMatrix):
            raise QueryError(
                f"expected type instant vector in aggregation expression, got {type(vec).__name__}"
            )
        out = aggregations.aggregate(node, vec, param, ctx)
        return settle_names(out, self.settings.delayed_name_removal)

    def _call(self, node: ast.Call, ctx: EvalContext) -> Value:
        from signalfire.promql.functions import call_function

        _check_modifier_use(node)
        outer, self._func = self._func, node.func
        try:
            args = [self.eval(a, ctx) for a in node.args]
        finally:
            self._func = outer
        out = call_function(node, args, ctx)
        if isinstance(out, StepMatrix):
            return settle_names(out, self.settings.delayed_name_removal)
        return out


_SMOOTHED_OK = ("delta", "increase", "rate")
_ANCHORED_OK = ("changes", "delta", "increase", "rate", "resets")


def _check_modifier_use(node: ast.Call) -> None:
    """``smoothed``/``anchored`` range selectors only make sense for a few functions."""
    for arg in node.args:
        while isinstance(arg, ast.ParenExpr):
            arg = arg.expr
        if not isinstance(arg, ast.MatrixSelector):
            continue
        vs = arg.vector
        for flag, name, allowed in (
            (vs.smoothed, "smoothed", _SMOOTHED_OK),
            (vs.anchored, "anchored", _ANCHORED_OK),
        ):
            if flag and node.func not in allowed:
                raise QueryError(
                    f"{name} modifier can only be used with: {', '.join(allowed)} - not with {node.func}"
                )


_DISPATCH: dict[type, Callable[[Evaluator, Any, EvalContext], Value]] = {
    ast.NumberLiteral: Evaluator._number,
    ast.StringLiteral: Evaluator._string,
    ast.DurationExpr: Evaluator._duration_expr,
    ast.ParenExpr: Evaluator._paren,
    ast.VectorSelector: Evaluator._vector_selector,
    ast.MatrixSelector: Evaluator._matrix_selector,
    ast.SubqueryExpr: Evaluator._subquery,
    ast.UnaryExpr: Evaluator._unary,
    ast.BinaryExpr: Evaluator._binary,
    ast.AggregateExpr: Evaluator._aggregate,
    ast.Call: Evaluator._call,
}


__all__ = ["Evaluator", "RangeWindows", "SelectFn"]
