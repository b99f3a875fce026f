"""Step-invariant subtrees: evaluate once, repeat for every step.

An expression whose selectors all carry ``@`` (and that calls no time-dependent
function) has the same value at every step of a range query. Prometheus wraps such
subtrees in a ``StepInvariantExpr`` and evaluates them once at the query start; we do
the same, then repeat the one column T times. Values are identical either way; only
the cost changes (a ``rate(x[5m] @ end())`` over 11,000 steps runs its kernel once).
"""

from __future__ import annotations

import numpy as np

from signalfire.promql import ast
from signalfire.promql.function_table import AT_MODIFIER_UNSAFE
from signalfire.promql.values import RangeWindows, ScalarSeries, StepMatrix, StringValue, Value


def invariant_nodes(root: ast.Expr) -> set[int]:
    """``id()`` of every node whose value does not depend on the step time.

    Literals count as invariant (so that their parents can be), but are not worth
    wrapping on their own; callers skip them.
    """
    out: set[int] = set()
    _walk(root, out)
    return out


def _walk(node: ast.Expr, out: set[int]) -> bool:
    inv: bool
    if isinstance(node, ast.NumberLiteral | ast.StringLiteral | ast.DurationExpr):
        inv = True
    elif isinstance(node, ast.VectorSelector):
        inv = node.at is not ast.AtKind.NONE
    elif isinstance(node, ast.MatrixSelector):
        inv = node.vector.at is not ast.AtKind.NONE
    elif isinstance(node, ast.SubqueryExpr):
        _walk(node.expr, out)
        inv = node.at is not ast.AtKind.NONE
    elif isinstance(node, ast.ParenExpr | ast.UnaryExpr):
        inv = _walk(node.expr, out)
    elif isinstance(node, ast.BinaryExpr):
        left = _walk(node.lhs, out)
        right = _walk(node.rhs, out)
        inv = left and right
    elif isinstance(node, ast.AggregateExpr):
        param = _walk(node.param, out) if node.param is not None else True
        inv = _walk(node.expr, out) and param
    elif isinstance(node, ast.Call):
        args = [_walk(a, out) for a in node.args]
        inv = node.func not in AT_MODIFIER_UNSAFE and all(args)
    else:
        inv = False
    if inv:
        out.add(id(node))
    return inv


def worth_wrapping(node: ast.Expr) -> bool:
    """Literals and parentheses are cheap; wrap only nodes that do real work."""
    return not isinstance(node, ast.NumberLiteral | ast.StringLiteral | ast.DurationExpr | ast.ParenExpr)


def repeat_steps(value: Value, T: int, ts: np.ndarray) -> Value:
    """The one-step ``value`` repeated for T steps at times ``ts``."""
    if isinstance(value, StringValue):
        return value
    if isinstance(value, ScalarSeries):
        return ScalarSeries(np.repeat(value.values[:1], T))
    if isinstance(value, StepMatrix):
        sample_ts = None if value.sample_ts is None else np.repeat(value.sample_ts[:, :1], T, axis=1)
        return StepMatrix(
            value.labels,
            np.repeat(value.values[:, :1], T, axis=1),
            np.repeat(value.present[:, :1], T, axis=1),
            value.drop_name,
            sample_ts,
        )
    assert isinstance(value, RangeWindows)
    return RangeWindows(
        value.labels,
        value.offsets,
        value.ts,
        value.values,
        np.repeat(value.lo[:, :1], T, axis=1),
        np.repeat(value.hi[:, :1], T, axis=1),
        np.repeat(value.eval_ts[:1], T),
        value.range_ms,
        value.st,
        value.anchored,
        value.smoothed,
        value.drop_name,
    )
