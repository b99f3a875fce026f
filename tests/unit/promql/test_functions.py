"""Instant-vector functions and the registry, through :func:`call_function`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from signalfire.errors import QueryError
from signalfire.labels import Labels, Matcher
from signalfire.promql import ast
from signalfire.promql.function_table import FUNCTIONS
from signalfire.promql.functions import KERNELS, call_function, format_go_g, format_openmetrics_float
from signalfire.promql.instant_functions import expand_template, natsort_less
from signalfire.promql.values import (
    EvalContext,
    EvalSettings,
    RangeWindows,
    ScalarSeries,
    StepMatrix,
    StringValue,
)


def ctx(T: int = 1, start: int = 0, step: int = 60000, query: str = "") -> EvalContext:
    ts = start + np.arange(T, dtype=np.int64) * step
    return EvalContext(
        ts=ts, start=start, end=int(ts[-1]), step=step if T > 1 else 0, settings=EvalSettings(query=query)
    )


def vec(rows: dict[str, float], name: str = "m") -> StepMatrix:
    labels = [Labels.from_dict({"__name__": name, "l": k}) for k in rows]
    vals = np.asarray(list(rows.values()), np.float64)[:, None]
    return StepMatrix(labels, vals, np.ones_like(vals, np.bool_))


def call(func: str, *args: object, c: EvalContext | None = None) -> object:
    c = c or ctx()
    nodes = [ast.NumberLiteral(0.0) for _ in args]
    return call_function(ast.Call(func, nodes), list(args), c)  # type: ignore[arg-type]


def values_by_l(out: object) -> dict[str, float]:
    assert isinstance(out, StepMatrix)
    return {ls.get("l"): float(v) for ls, v, p in zip(out.labels, out.values[:, 0], out.present[:, 0]) if p}


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


DATA = {
    "pos": 2.5,
    "whole": 2,
    "neg": -2.5,
    "nwhole": -2,
    "zero": 0,
    "nzero": -0.0,
    "inf": math.inf,
    "ninf": -math.inf,
    "nan": math.nan,
}


@pytest.mark.parametrize(
    "func,want",
    [
        ("abs", [2.5, 2, 2.5, 2, 0, 0, math.inf, math.inf, math.nan]),
        ("ceil", [3, 2, -2, -2, 0, 0, math.inf, -math.inf, math.nan]),
        ("floor", [2, 2, -3, -2, 0, 0, math.inf, -math.inf, math.nan]),
        ("round", [3, 2, -2, -2, 0, 0, math.inf, -math.inf, math.nan]),
        ("sgn", [1, 1, -1, -1, 0, 0, 1, -1, math.nan]),
    ],
)
def test_elementwise_math(func: str, want: list[float]) -> None:
    out = call(func, vec(DATA))
    got = values_by_l(out)
    assert all(same(got[k], w) for k, w in zip(DATA, want)), got
    assert isinstance(out, StepMatrix) and out.drop_name is not None and out.drop_name.all()


def test_round_to_nearest_and_logs() -> None:
    assert values_by_l(call("round", vec({"a": 2.26}), ScalarSeries(np.array([0.1]))))["a"] == pytest.approx(
        2.3
    )
    got = values_by_l(call("ln", vec({"a": 0.0, "b": -10.0, "c": 10.0})))
    assert got["a"] == -math.inf and math.isnan(got["b"]) and got["c"] == pytest.approx(2.302585092994046)
    assert values_by_l(call("log10", vec({"a": 10.0})))["a"] == 1.0


def test_clamp_family() -> None:
    v = vec({"a": -50, "b": 0, "c": 100})
    lo, hi = ScalarSeries(np.array([-25.0])), ScalarSeries(np.array([75.0]))
    assert values_by_l(call("clamp", v, lo, hi)) == {"a": -25, "b": 0, "c": 75}
    assert values_by_l(call("clamp_min", v, lo)) == {"a": -25, "b": 0, "c": 100}
    assert values_by_l(call("clamp_max", v, hi)) == {"a": -50, "b": 0, "c": 75}
    assert values_by_l(call("clamp", v, hi, lo)) == {}
    nan = ScalarSeries(np.array([math.nan]))
    assert all(math.isnan(x) for x in values_by_l(call("clamp", v, lo, nan)).values())


@pytest.mark.parametrize(
    "func,ts,want",
    [
        ("year", 1136239445, 2006),
        ("month", 1136239445, 1),
        ("day_of_month", 1136239445, 2),
        ("day_of_year", 1136239445, 2),
        ("day_of_week", 1136239445, 1),
        ("hour", 1136239445, 22),
        ("minute", 1136239445, 4),
        ("year", 1230767999, 2008),
        ("year", 1230768000, 2009),
        ("day_of_year", 1483191420, 366),
        ("day_of_year", 1672493820, 365),
        ("days_in_month", 1454284800, 29),
        ("days_in_month", 1485907200, 28),
        ("day_of_week", 0, 4),
    ],
)
def test_date_functions(func: str, ts: float, want: float) -> None:
    assert values_by_l(call(func, vec({"a": ts}))) == {"a": want}


def test_date_functions_default_to_eval_time() -> None:
    out = call("hour", c=ctx(T=3, start=3600_000, step=1800_000))
    assert isinstance(out, StepMatrix)
    assert out.labels == [Labels(())] and out.values[0].tolist() == [1, 1, 2]


def test_time_vector_scalar() -> None:
    c = ctx(T=2, start=5000, step=1000)
    t = call("time", c=c)
    assert isinstance(t, ScalarSeries) and t.values.tolist() == [5.0, 6.0]
    v = call("vector", t, c=c)
    assert isinstance(v, StepMatrix) and v.labels == [Labels(())] and v.values[0].tolist() == [5.0, 6.0]
    two = StepMatrix(
        [Labels.from_strings("a", "1"), Labels.from_strings("a", "2")],
        np.array([[1.0, 1], [2, 2]]),
        np.array([[True, False], [True, True]]),
    )
    s = call("scalar", two, c=c)
    assert isinstance(s, ScalarSeries) and math.isnan(s.values[0]) and s.values[1] == 2.0
    p = call("pi", c=c)
    assert isinstance(p, ScalarSeries) and p.values[0] == math.pi


def test_query_parameter_functions() -> None:
    c = ctx(T=4, start=100_000, step=10_000)
    assert call("start", c=c).values.tolist() == [100.0] * 4  # type: ignore[attr-defined]
    assert call("end", c=c).values.tolist() == [130.0] * 4  # type: ignore[attr-defined]
    m = call("min_of", ScalarSeries(np.array([3.0])), ScalarSeries(np.array([math.nan])))
    assert math.isnan(m.values[0])  # type: ignore[attr-defined]
    assert call("max_of", ScalarSeries(np.array([-2.0])), ScalarSeries(np.array([-5.0]))).values[0] == -2  # type: ignore[attr-defined]


def test_step_and_range_are_duration_expressions_not_kernels() -> None:
    """``step()`` and ``range()`` parse to duration expressions everywhere, so they have no
    kernel (and no table entry); as values they are seconds of the query's step and span."""
    import tempfile

    import signalfire
    from signalfire.promql import features

    assert "step" not in KERNELS and "range" not in KERNELS
    with signalfire.open(tempfile.mkdtemp(), features=features.CONFORMANCE) as db:
        got = db.query_range("step() * 1000 + range()", 100, 130, 10).values.tolist()
    assert got == [[10_030.0] * 4]


def test_timestamp_uses_sample_time_when_known() -> None:
    sm = vec({"a": 1.0})
    sm.sample_ts = np.array([[10_000]])
    assert values_by_l(call("timestamp", sm, c=ctx(start=15_000))) == {"a": 10.0}
    assert values_by_l(call("timestamp", vec({"a": 1.0}), c=ctx(start=15_000))) == {"a": 15.0}


def test_sort_orders_with_nan_last_and_warns_in_range_queries() -> None:
    v = vec({"a": 3, "b": math.nan, "c": 1, "d": 2})
    out = call("sort", v)
    assert isinstance(out, StepMatrix) and [ls.get("l") for ls in out.labels] == ["c", "d", "a", "b"]
    out = call("sort_desc", v)
    assert isinstance(out, StepMatrix) and [ls.get("l") for ls in out.labels] == ["a", "d", "c", "b"]
    c = ctx(T=2, query="sum(sort(x))")
    node = ast.Call("sort", [ast.VectorSelector("x", [], pos=9)], pos=4)
    two = StepMatrix(v.labels, np.repeat(v.values, 2, axis=1), np.ones((4, 2), np.bool_))
    call_function(node, [two], c)
    assert c.annotations.warning_list() == [
        "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
        " (1:5)"
    ]


@pytest.mark.parametrize(
    "a,b,less",
    [("1", "2", True), ("2", "10", True), ("10", "2", False), ("4m5", "4m600", True),
     ("4m1000", "4m600", False),
     ("1.2.3", "1.11.3", True), ("a", "b", True), ("a1", "a", False)],
)  # fmt: skip
def test_natural_order(a: str, b: str, less: bool) -> None:
    assert natsort_less(a, b) is less


def test_sort_by_label_natural_then_full_labels() -> None:
    labels = [Labels.from_dict({"cpu": c, "job": "x"}) for c in ["10", "2", "1", "100", "2"]]
    labels[4] = Labels.from_dict({"cpu": "2", "job": "a"})
    sm = StepMatrix(labels, np.zeros((5, 1)), np.ones((5, 1), np.bool_))
    out = call("sort_by_label", sm, StringValue("cpu"))
    assert isinstance(out, StepMatrix)
    assert [(ls.get("cpu"), ls.get("job")) for ls in out.labels] == [
        ("1", "x"),
        ("2", "a"),
        ("2", "x"),
        ("10", "x"),
        ("100", "x"),
    ]
    out = call("sort_by_label_desc", sm, StringValue("cpu"))
    assert isinstance(out, StepMatrix)
    assert [(ls.get("cpu"), ls.get("job")) for ls in out.labels] == [
        ("100", "x"),
        ("10", "x"),
        ("2", "x"),
        ("2", "a"),
        ("1", "x"),
    ]


def _testmetric() -> StepMatrix:
    labels = [
        Labels.from_dict({"__name__": "testmetric", "src": f"source-value-{n}", "dst": "original"})
        for n in (10, 20)
    ]
    return StepMatrix(labels, np.array([[0.0], [1.0]]), np.ones((2, 1), np.bool_))


@pytest.mark.parametrize(
    "repl,src,regex,want",
    [
        (
            "destination-value-$1",
            "src",
            "source-value-(.*)",
            ["destination-value-10", "destination-value-20"],
        ),
        ("destination-value-$1", "src", "value-(.*)", ["original", "original"]),
        ("$1-value-$2", "src", "(.*)-value-(.*)", ["source-value-10", "source-value-20"]),
        ("value-$1", "nonexistent-src", "source-value-(.*)", ["original", "original"]),
        ("value-$1", "nonexistent-src", "(.*)", ["value-", "value-"]),
        ("", "dst", ".*", ["", ""]),
        ("${1}x$$", "src", "source-(?P<rest>.*)", ["value-10x$", "value-20x$"]),
        ("$rest", "src", "source-(?P<rest>.*)", ["value-10", "value-20"]),
        ("$1x", "src", "source-(.*)", ["", ""]),
    ],
)
def test_label_replace(repl: str, src: str, regex: str, want: list[str]) -> None:
    out = call(
        "label_replace",
        _testmetric(),
        StringValue("dst"),
        StringValue(repl),
        StringValue(src),
        StringValue(regex),
    )
    assert isinstance(out, StepMatrix)
    assert [ls.get("dst") for ls in out.labels] == want
    assert all(ls.get("__name__") == "testmetric" for ls in out.labels)


@pytest.mark.parametrize(
    "dst,regex,src,message",
    [
        ("dst", "(.*", "src", "invalid regular expression in label_replace(): (.*"),
        ("\udcff", "(.*)", "src", "invalid destination label name in label_replace(): "),
        ("src", "", "", "vector cannot contain metrics with the same labelset"),
    ],
)
def test_label_replace_errors(dst: str, regex: str, src: str, message: str) -> None:
    pytest.importorskip("signalfire.promql.names")
    with pytest.raises(QueryError) as err:
        call(
            "label_replace",
            _testmetric(),
            StringValue(dst),
            StringValue(""),
            StringValue(src),
            StringValue(regex),
        )
    assert str(err.value).startswith(message)


def test_label_join() -> None:
    labels = [Labels.from_dict({"__name__": "t", "src": "a", "src1": "b", "src2": "c"})]
    sm = StepMatrix(labels, np.zeros((1, 1)), np.ones((1, 1), np.bool_))
    out = call(
        "label_join",
        sm,
        StringValue("dst"),
        StringValue("-"),
        StringValue("src"),
        StringValue("src3"),
        StringValue("src1"),
    )
    assert isinstance(out, StepMatrix) and out.labels[0].get("dst") == "a--b"
    out = call("label_join", sm, StringValue("__name__"), StringValue("_"), StringValue("src"))
    assert isinstance(out, StepMatrix) and out.labels[0].get("__name__") == "a" and not out.name_dropped()[0]


def test_expand_template_matches_go() -> None:
    import re2

    rx = re2.compile("(a)(?P<n>b)")
    m = rx.search("ab")
    assert expand_template("$1-$n-${1}-${n}-$2x-$$-$", m, rx.groupindex, rx.groups) == "a-b-a-b--$-$"


@pytest.mark.parametrize(
    "matchers,want",
    [
        ([("job", "=", "testjob"), ("instance", "=", "testinstance"), ("method", "=~", ".x")],
         {"instance": "testinstance", "job": "testjob"}),
        ([("job", "=", "testjob"), ("job", "=", "testjob2"), ("foo", "=", "bar")], {"foo": "bar"}),
        ([("job", "=", "a"), ("job", "=", "b"), ("job", "=", "c"), ("foo", "=", "bar")], {"foo": "bar"}),
        ([("job", "=", "testjob"), ("job", "=~", "testjob2"), ("foo", "=", "bar")], {"foo": "bar"}),
    ],
)  # fmt: skip
def test_absent_labels(matchers: list[tuple[str, str, str]], want: dict[str, str]) -> None:
    ms = [Matcher.equal("__name__", "nonexistent")] + [Matcher.parse_type(op, n, v) for n, op, v in matchers]
    node = ast.Call("absent", [ast.VectorSelector("nonexistent", ms)])
    out = call_function(node, [StepMatrix.empty(1)], ctx())
    assert isinstance(out, StepMatrix) and out.labels == [Labels.from_dict(want)] and out.values[0, 0] == 1


def test_absent_is_empty_when_something_is_present() -> None:
    node = ast.Call("absent", [ast.AggregateExpr("sum", ast.VectorSelector("x", []))])
    out = call_function(node, [vec({"a": 1.0})], ctx())
    assert isinstance(out, StepMatrix) and out.num_series == 0


def test_absent_over_time_per_step() -> None:
    w = RangeWindows(
        [Labels.from_strings("a", "1")], np.array([0, 1]), np.array([0]), np.array([1.0]),
        np.array([[0, 0, 1]]), np.array([[1, 1, 1]]), np.array([0, 1, 2]), 1000,
    )  # fmt: skip
    ms = [Matcher.equal("job", "x")]
    node = ast.Call("absent_over_time", [ast.MatrixSelector(ast.VectorSelector("", ms), ast.DurLit(1000))])
    out = call_function(node, [w], ctx(T=3))
    assert isinstance(out, StepMatrix) and out.labels == [Labels.from_dict({"job": "x"})]
    assert out.present[0].tolist() == [False, False, True]


def test_rate_warns_for_non_counter_names() -> None:
    w = RangeWindows(
        [Labels.from_strings("__name__", "requests"), Labels.from_strings("__name__", "x_total")],
        np.array([0, 2, 4]), np.array([0, 1000, 0, 1000]), np.array([1.0, 2, 1, 2]),
        np.array([[0], [2]]), np.array([[2], [4]]), np.array([1000]), 2000,
    )  # fmt: skip
    c = ctx(query="rate(requests[2s])")
    node = ast.Call(
        "rate", [ast.MatrixSelector(ast.VectorSelector("requests", [], pos=5), ast.DurLit(2000), pos=5)]
    )
    out = call_function(node, [w], c)
    assert isinstance(out, StepMatrix) and out.num_series == 2
    assert c.annotations.info_list() == [
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "
        '"requests" (1:6)'
    ]


def _one_series_windows() -> RangeWindows:
    return RangeWindows([Labels.from_dict({"__name__": "m_total", "l": "a"})], np.array([0, 3]),
                        np.array([0, 20_000, 40_000]), np.array([1.0, 2.0, 4.0]),
                        np.array([[0]]), np.array([[3]]), np.array([60_000]), 120_000)  # fmt: skip


#: Kernels whose output rows are not their input's (new label sets, or none at all for
#: float samples without start timestamps).
_NO_INPUT_ROWS = {"absent", "absent_over_time", "histogram_avg", "histogram_count", "histogram_stddev",
                  "histogram_stdvar", "histogram_sum", "scalar", "start_timestamp"}  # fmt: skip
_ONE_ARG = ((ast.ValueType.VECTOR,), (ast.ValueType.MATRIX,))


@pytest.mark.parametrize(
    "name",
    sorted(n for n, f in FUNCTIONS.items() if f.arg_types in _ONE_ARG and n not in _NO_INPUT_ROWS),
)
def test_the_table_says_which_kernels_drop_the_metric_name(name: str) -> None:
    """``drops_metric_name`` in the table is what the kernel does, for every function of
    one vector or range argument (the flag and the kernel live in different modules)."""
    arg = _one_series_windows() if FUNCTIONS[name].arg_types[0] is ast.ValueType.MATRIX else vec({"a": 2.0})
    out = call(name, arg, c=ctx(start=60_000))
    assert isinstance(out, StepMatrix) and out.num_series == 1
    assert bool(out.name_dropped()[0]) is FUNCTIONS[name].drops_metric_name


def test_double_exponential_smoothing_rejects_bad_factors() -> None:
    w = RangeWindows([Labels(())], np.array([0, 2]), np.array([0, 1000]), np.array([1.0, 2.0]),
                     np.array([[0]]), np.array([[2]]), np.array([1000]), 2000)  # fmt: skip
    with pytest.raises(QueryError, match=r"invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"):
        call("double_exponential_smoothing", w, ScalarSeries(np.array([1.0])), ScalarSeries(np.array([0.5])))


@pytest.mark.parametrize(
    "x,want",
    [(1.1, "1.1"), (2.0, "2"), (-1.0, "-1"), (math.nan, "NaN"), (math.inf, "+Inf"), (1e-7, "1e-07"),
     (0.0001, "0.0001"), (123456789.0, "1.23456789e+08"), (1e21, "1e+21"), (1e6, "1e+06"),
     (123456.0, "123456"), (0.25, "0.25"), (100.0, "100")],
)  # fmt: skip
def test_format_go_g(x: float, want: str) -> None:
    assert format_go_g(x) == want


def test_format_openmetrics_float() -> None:
    assert [format_openmetrics_float(x) for x in (0, 1, 0.25, -0.1, math.inf, math.nan)] == [
        "0.0",
        "1.0",
        "0.25",
        "-0.1",
        "+Inf",
        "NaN",
    ]


def test_the_kernels_cover_exactly_the_function_table() -> None:
    """One list of functions: every entry has a kernel, and no kernel lacks an entry."""
    assert sorted(set(FUNCTIONS) - set(KERNELS)) == []
    assert sorted(set(KERNELS) - set(FUNCTIONS)) == []


def test_every_function_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "querying" / "functions.md").read_text(
        encoding="utf-8"
    )
    missing = [name for name in FUNCTIONS if f"`{name}`" not in doc]
    assert missing == []
