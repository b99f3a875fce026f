"""The PromQL function table: name -> argument types, variadic count, return type, flags.

This is data, as Prometheus's ``promql/parser/functions.go`` is: the parser type-checks
calls against it and the engine keys its kernels by the same names. ``variadic`` follows
Prometheus: ``0`` means exactly ``len(arg_types)`` arguments; ``n > 0`` means the last
argument type may be omitted or repeated up to ``n`` extra times in all
(``len(arg_types) - 1`` to ``len(arg_types) - 1 + n`` arguments); ``-1`` means at least
``len(arg_types) - 1`` and no upper limit, extra arguments taking the last type.

Experimental entries are rejected unless ``promql-experimental-functions`` is enabled,
as in a stock Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass

from signalfire.promql.ast import ValueType

__all__ = [
    "AGGREGATORS",
    "AGGREGATORS_WITH_PARAM",
    "ANCHORED_FUNCTIONS",
    "DURATION_FUNCTIONS",
    "EXPERIMENTAL_AGGREGATORS",
    "FUNCTIONS",
    "SMOOTHED_FUNCTIONS",
    "FunctionSignature",
]


@dataclass(frozen=True, slots=True)
class FunctionSignature:
    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    variadic: int = 0
    experimental: bool = False

    @property
    def min_args(self) -> int:
        return len(self.arg_types) - (1 if self.variadic else 0)

    @property
    def max_args(self) -> int | None:
        """The largest accepted argument count, None when unlimited."""
        if self.variadic == 0:
            return len(self.arg_types)
        if self.variadic < 0:
            return None
        return len(self.arg_types) - 1 + self.variadic

    def arg_type(self, i: int) -> ValueType:
        """The type the i-th argument must have (extra variadic arguments take the last)."""
        return self.arg_types[min(i, len(self.arg_types) - 1)]


_S = ValueType.SCALAR
_V = ValueType.VECTOR
_M = ValueType.MATRIX
_STR = ValueType.STRING


def _table() -> dict[str, FunctionSignature]:
    rows: list[FunctionSignature] = []

    def add(
        name: str, args: tuple[ValueType, ...], ret: ValueType, variadic: int = 0, exp: bool = False
    ) -> None:
        rows.append(FunctionSignature(name, args, ret, variadic, exp))

    # Element-wise math on instant vectors.
    for name in (
        "abs", "absent", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh",
        "deg", "exp", "floor", "histogram_avg", "histogram_count", "histogram_stddev",
        "histogram_stdvar", "histogram_sum", "ln", "log10", "log2", "rad", "sgn", "sin", "sinh",
        "sort", "sort_desc", "sqrt", "tan", "tanh", "timestamp",
    ):  # fmt: skip
        add(name, (_V,), _V)
    # Calendar functions take an optional vector (default: vector(time())).
    calendar = (
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "hour",
        "minute",
        "month",
        "year",
    )
    for name in calendar:
        add(name, (_V,), _V, variadic=1)
    # Range-vector functions.
    for name in (
        "absent_over_time", "avg_over_time", "changes", "count_over_time", "delta", "deriv",
        "first_over_time", "idelta", "increase", "irate", "last_over_time", "max_over_time",
        "min_over_time", "present_over_time", "rate", "resets", "stddev_over_time",
        "stdvar_over_time", "sum_over_time",
    ):  # fmt: skip
        add(name, (_M,), _V)
    for name in ("mad_over_time", "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time",
                 "ts_of_min_over_time"):  # fmt: skip
        add(name, (_M,), _V, exp=True)
    add("clamp", (_V, _S, _S), _V)
    add("clamp_max", (_V, _S), _V)
    add("clamp_min", (_V, _S), _V)
    add("histogram_fraction", (_S, _S, _V), _V)
    add("histogram_quantile", (_S, _V), _V)
    add("histogram_quantiles", (_V, _STR, _S, _S), _V, variadic=-1, exp=True)
    add("label_join", (_V, _STR, _STR, _STR), _V, variadic=-1)
    add("label_replace", (_V, _STR, _STR, _STR, _STR), _V)
    add("pi", (), _S)
    add("predict_linear", (_M, _S), _V)
    add("quantile_over_time", (_S, _M), _V)
    add("round", (_V, _S), _V, variadic=1)
    add("scalar", (_V,), _S)
    add("time", (), _S)
    add("vector", (_S,), _V)
    add("double_exponential_smoothing", (_M, _S, _S), _V, exp=True)
    add("sort_by_label", (_V, _STR), _V, variadic=-1, exp=True)
    add("sort_by_label_desc", (_V, _STR), _V, variadic=-1, exp=True)
    add("info", (_V, _V), _V, variadic=1, exp=True)
    add("start_timestamp", (_V,), _V, exp=True)
    # Query-parameter functions usable as values ("step()" and "range()" parse to
    # ast.DurationExpr instead, since they also work inside durations).
    add("start", (), _S, exp=True)
    add("end", (), _S, exp=True)
    add("min_of", (_S, _S), _S, exp=True)
    add("max_of", (_S, _S), _S, exp=True)
    return {r.name: r for r in rows}


#: Every function by name.
FUNCTIONS: dict[str, FunctionSignature] = _table()

#: Names that are duration functions inside ``[...]`` and after ``offset``.
DURATION_FUNCTIONS = frozenset({"step", "range", "min_of", "max_of"})

#: Aggregation operators (keywords, matched case-insensitively).
AGGREGATORS = frozenset(
    {"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
     "count_values", "quantile", "limitk", "limit_ratio"}
)  # fmt: skip
AGGREGATORS_WITH_PARAM = frozenset({"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"})
EXPERIMENTAL_AGGREGATORS = frozenset({"limitk", "limit_ratio"})

#: Functions that accept a range selector with the ``anchored`` / ``smoothed`` modifier.
#: The engine raises "anchored modifier can only be used with: ..." for the others.
ANCHORED_FUNCTIONS = ("changes", "delta", "increase", "rate", "resets")
SMOOTHED_FUNCTIONS = ("delta", "increase", "rate")
