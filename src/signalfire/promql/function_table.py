"""The PromQL function table: one entry per function, and the only list of PromQL functions.

Each :class:`FunctionSpec` holds what is true of a function whatever evaluates it:
argument types, variadic count, return type and flags (experimental, drops the metric
name, depends on the evaluation time). It is data, as Prometheus's
``promql/parser/functions.go`` is, and imports nothing but the AST, so the parser and
the type checker use it without loading a numpy kernel.

The kernels attach by name: :data:`signalfire.promql.functions.KERNELS` maps each name
of :data:`FUNCTIONS` to the code that evaluates it, and a test asserts that the two
cover exactly the same names, so a function is added here (with its flags) and given a
kernel there, never declared twice. Step invariance (:mod:`step_invariant`) reads
``uses_eval_time`` from here.

``variadic`` follows Prometheus: ``0`` means exactly ``len(arg_types)`` arguments;
``n > 0`` means the last argument type may be omitted or repeated up to ``n`` extra times
in all (``len(arg_types) - 1`` to ``len(arg_types) - 1 + n`` arguments); ``-1`` means at
least ``len(arg_types) - 1`` and no upper limit, extra arguments taking the last type.
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
    "AT_MODIFIER_UNSAFE",
    "DURATION_FUNCTIONS",
    "EXPERIMENTAL_AGGREGATORS",
    "FUNCTIONS",
    "SMOOTHED_FUNCTIONS",
    "FunctionSpec",
]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One PromQL function. ``drops_metric_name``: results lose ``__name__`` (the kernel
    marks ``drop_name`` accordingly); ``uses_eval_time``: the result depends on the
    evaluation time itself (Prometheus's ``AtModifierUnsafeFunctions``), so a call is
    never step invariant."""

    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    variadic: int = 0
    experimental: bool = False
    drops_metric_name: bool = True
    uses_eval_time: bool = False

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


def _table() -> dict[str, FunctionSpec]:
    rows: list[FunctionSpec] = []

    def add(
        name: str,
        args: tuple[ValueType, ...],
        ret: ValueType,
        variadic: int = 0,
        exp: bool = False,
        keeps_name: bool = False,
        eval_time: bool = False,
    ) -> None:
        rows.append(FunctionSpec(name, args, ret, variadic, exp, not keeps_name, eval_time))

    # Element-wise math on instant vectors.
    for name in (
        "abs", "absent", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh",
        "deg", "exp", "floor", "histogram_avg", "histogram_count", "histogram_stddev",
        "histogram_stdvar", "histogram_sum", "ln", "log10", "log2", "rad", "sgn", "sin", "sinh",
        "sqrt", "tan", "tanh",
    ):  # fmt: skip
        add(name, (_V,), _V)
    add("sort", (_V,), _V, keeps_name=True)
    add("sort_desc", (_V,), _V, keeps_name=True)
    add("timestamp", (_V,), _V, eval_time=True)
    # Calendar functions take an optional vector (default: vector(time())).
    for name in (
        "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year",
    ):  # fmt: skip
        add(name, (_V,), _V, variadic=1, eval_time=True)
    # Range-vector functions.
    for name in (
        "absent_over_time", "avg_over_time", "changes", "count_over_time", "delta", "deriv",
        "idelta", "increase", "irate", "max_over_time", "min_over_time", "present_over_time",
        "rate", "resets", "stddev_over_time", "stdvar_over_time", "sum_over_time",
    ):  # fmt: skip
        add(name, (_M,), _V)
    add("first_over_time", (_M,), _V, keeps_name=True)
    add("last_over_time", (_M,), _V, keeps_name=True)
    for name in ("mad_over_time", "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time",
                 "ts_of_min_over_time"):  # fmt: skip
        add(name, (_M,), _V, exp=True)
    add("clamp", (_V, _S, _S), _V)
    add("clamp_max", (_V, _S), _V)
    add("clamp_min", (_V, _S), _V)
    add("histogram_fraction", (_S, _S, _V), _V)
    add("histogram_quantile", (_S, _V), _V)
    add("histogram_quantiles", (_V, _STR, _S, _S), _V, variadic=-1, exp=True)
    add("label_join", (_V, _STR, _STR, _STR), _V, variadic=-1, keeps_name=True)
    add("label_replace", (_V, _STR, _STR, _STR, _STR), _V, keeps_name=True)
    add("pi", (), _S)
    add("predict_linear", (_M, _S), _V, eval_time=True)
    add("quantile_over_time", (_S, _M), _V)
    add("round", (_V, _S), _V, variadic=1)
    add("scalar", (_V,), _S)
    add("time", (), _S, eval_time=True)
    add("vector", (_S,), _V)
    add("double_exponential_smoothing", (_M, _S, _S), _V, exp=True)
    add("sort_by_label", (_V, _STR), _V, variadic=-1, exp=True, keeps_name=True)
    add("sort_by_label_desc", (_V, _STR), _V, variadic=-1, exp=True, keeps_name=True)
    add("info", (_V, _V), _V, variadic=1, exp=True, keeps_name=True)
    add("start_timestamp", (_V,), _V, exp=True)
    # Query-parameter functions usable as values ("step()" and "range()" parse to
    # ast.DurationExpr instead, since they also work inside durations).
    add("start", (), _S, exp=True)
    add("end", (), _S, exp=True)
    add("min_of", (_S, _S), _S, exp=True)
    add("max_of", (_S, _S), _S, exp=True)
    return {r.name: r for r in rows}


#: Every function by name.
FUNCTIONS: dict[str, FunctionSpec] = _table()

#: Functions whose result depends on the evaluation time itself (Prometheus's
#: ``AtModifierUnsafeFunctions``): a call to one is never step invariant.
AT_MODIFIER_UNSAFE = frozenset(name for name, f in FUNCTIONS.items() if f.uses_eval_time)

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
