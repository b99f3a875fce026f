"""A tiny PromQL expression tree for the reference evaluator, printable as PromQL text.

The reference does not parse: property tests build these trees (with hypothesis), print
them with :func:`render` for the real engine, and evaluate the tree itself with
``promql_eval.evaluate``. That way a parser bug cannot hide an evaluator bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RANGE_FUNCS = (
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "changes",
    "resets",
    "deriv",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
)
AGGREGATIONS = (
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "quantile",
    "topk",
    "bottomk",
    "group",
)
ARITHMETIC = ("+", "-", "*", "/", "%", "^")
COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Selector:
    """``name{label="value", ...} offset d`` (equality matchers only; ``offset_ms`` may be < 0)."""

    name: str
    matchers: tuple[tuple[str, str], ...] = ()
    offset_ms: int = 0


@dataclass(frozen=True)
class RangeCall:
    """``func(selector[range])``, or ``quantile_over_time(param, selector[range])``."""

    func: str
    selector: Selector
    range_ms: int
    param: float | None = None


@dataclass(frozen=True)
class Aggregate:
    """``op by|without (labels) (param, expr)``; ``grouping`` None means no clause."""

    op: str
    expr: Expr
    grouping: tuple[str, ...] | None = None
    without: bool = False
    param: float | None = None


@dataclass(frozen=True)
class Binary:
    """``lhs op [bool] [on|ignoring (labels)] [group_left (include)] rhs``."""

    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    on: tuple[str, ...] | None = None
    ignoring: tuple[str, ...] | None = None
    group_left: tuple[str, ...] | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)


Expr = Num | Selector | RangeCall | Aggregate | Binary


def _fmt_num(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Inf" if v > 0 else "-Inf"
    return repr(v)


def _fmt_range(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _selector_body(e: Selector) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in e.matchers)
    return f"{e.name}{{{inner}}}" if inner else e.name


def _offset(ms: int) -> str:
    if ms == 0:
        return ""
    return f" offset -{_fmt_range(-ms)}" if ms < 0 else f" offset {_fmt_range(ms)}"


def render(e: Expr) -> str:
    """PromQL text for ``e``; every sub-expression is parenthesised so precedence never matters."""
    if isinstance(e, Num):
        return f"({_fmt_num(e.value)})"
    if isinstance(e, Selector):
        return _selector_body(e) + _offset(e.offset_ms)
    if isinstance(e, RangeCall):
        arg = f"{_selector_body(e.selector)}[{_fmt_range(e.range_ms)}]{_offset(e.selector.offset_ms)}"
        if e.param is not None:
            return f"{e.func}({_fmt_num(e.param)}, {arg})"
        return f"{e.func}({arg})"
    if isinstance(e, Aggregate):
        clause = ""
        if e.grouping is not None:
            clause = f" {'without' if e.without else 'by'} ({', '.join(e.grouping)})"
        param = f"{_fmt_num(e.param)}, " if e.param is not None else ""
        return f"{e.op}{clause} ({param}{render(e.expr)})"
    modifiers = " bool" if e.return_bool else ""
    if e.on is not None:
        modifiers += f" on ({', '.join(e.on)})"
    elif e.ignoring is not None:
        modifiers += f" ignoring ({', '.join(e.ignoring)})"
    if e.group_left is not None:
        modifiers += f" group_left ({', '.join(e.group_left)})"
    return f"({render(e.lhs)} {e.op}{modifiers} {render(e.rhs)})"
