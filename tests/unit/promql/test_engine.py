"""Engine lifecycle: result shapes, JSON, limits, statistics, query log, subqueries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from memstore import MemStore

from signalfire.errors import PromQLParseError, QueryError, QueryTimeoutError, TooManySamplesError
from signalfire.labels import Labels
from signalfire.promql import Engine, EngineOptions, ast
from signalfire.promql.result import format_value

M = 60_000


@pytest.fixture
def store() -> MemStore:
    return MemStore().load(
        """
        up{job="a"} 1 1 1 1 1 1 1 1 1 1 1
        up{job="b"} 0 0 0 0 0 0 0 0 0 0 0
        c_total{job="a"} 0 10 20 30 40 50 60 70 80 90 100
        """,
        M,
    )


def test_instant_vector_result_and_json(store):
    res = Engine().instant_query(store, "up", 90_500)
    assert res.result_type == "vector"
    assert res.to_json() == {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "up", "job": "a"}, "value": [90.5, "1"]},
            {"metric": {"__name__": "up", "job": "b"}, "value": [90.5, "0"]},
        ],
    }


def test_scalar_and_string_results(store):
    res = Engine().instant_query(store, "1 + 2", 60_000)
    assert res.result_type == "scalar" and res.scalar == 3.0
    assert res.to_json() == {"resultType": "scalar", "result": [60, "3"]}
    res = Engine().instant_query(store, '"hello"', 1000)
    assert res.result_type == "string" and res.string == "hello"
    assert res.to_json() == {"resultType": "string", "result": [1, "hello"]}


def test_range_query_matrix_sorted_and_json(store):
    res = Engine().range_query(store, "up", 0, 2 * M, M)
    assert res.result_type == "matrix"
    assert [ls.get("job") for ls in res.labels] == ["a", "b"]
    data = res.to_json()
    assert data["result"][0]["values"] == [[0, "1"], [60, "1"], [120, "1"]]
    res = Engine().range_query(store, "2 * 3", 0, M, M)
    assert res.result_type == "matrix" and res.labels == [Labels(())]
    np.testing.assert_array_equal(res.values[0], [6.0, 6.0])


def test_range_vector_instant_query_returns_raw_samples(store):
    res = Engine().instant_query(store, "c_total[2m]", 5 * M)
    assert res.result_type == "matrix" and res.series is not None
    _, ts, vs = res.series.series(0)
    assert ts.tolist() == [4 * M, 5 * M] and vs.tolist() == [40.0, 50.0]
    assert res.to_json()["result"][0]["values"] == [[240, "40"], [300, "50"]]


@pytest.mark.parametrize(
    ("expr", "msg"),
    [
        ("c_total[2m]", 'invalid expression type "range vector" for range query'),
        ('"x"', 'invalid expression type "string" for range query'),
    ],
)
def test_range_query_rejects_non_instant_types(store, expr, msg):
    with pytest.raises(QueryError, match=msg):
        Engine().range_query(store, expr, 0, M, M)


def test_range_query_argument_errors(store):
    with pytest.raises(QueryError, match="zero or negative query resolution step"):
        Engine().range_query(store, "up", 0, M, 0)
    with pytest.raises(QueryError, match="end timestamp must not be before start time"):
        Engine().range_query(store, "up", M, 0, M)
    with pytest.raises(PromQLParseError):
        Engine().instant_query(store, "sum(", 0)


def test_subquery_windows_align_to_step_multiples(store):
    res = Engine().instant_query(store, "c_total[3m:1m]", 5 * M + 30_000)
    _, ts, vs = res.series.series(0)
    # Multiples of 1m in (2m30s, 5m30s]: 3m, 4m, 5m.
    assert ts.tolist() == [3 * M, 4 * M, 5 * M] and vs.tolist() == [30.0, 40.0, 50.0]
    res = Engine().instant_query(store, "c_total[3m:1m] offset 1m", 5 * M)
    _, ts, _ = res.series.series(0)
    assert ts.tolist() == [2 * M, 3 * M, 4 * M]  # left-open: 1m is out


def test_subquery_default_step_and_function(store):
    eng = Engine(EngineOptions(default_eval_interval_ms=30_000))
    res = eng.instant_query(store, "c_total[1m:]", 5 * M)
    _, ts, _ = res.series.series(0)
    assert ts.tolist() == [4 * M + 30_000, 5 * M]
    got = Engine().range_query(store, "sum_over_time(c_total[3m:1m])", 3 * M, 5 * M, M)
    np.testing.assert_array_equal(got.values[0], [10 + 20 + 30, 20 + 30 + 40, 30 + 40 + 50])


def test_nested_subquery_matches_range_query(store):
    eng = Engine()
    rng = eng.range_query(store, "max_over_time(rate(c_total[2m])[4m:1m])", 5 * M, 9 * M, 2 * M)
    for j, t in enumerate(rng.timestamps.tolist()):
        inst = eng.instant_query(store, "max_over_time(rate(c_total[2m])[4m:1m])", t)
        assert inst.values[0, 0] == pytest.approx(rng.values[0, j])


def test_max_samples_limit(store):
    eng = Engine(EngineOptions(max_samples=5))
    with pytest.raises(TooManySamplesError, match="query processing would load too many samples"):
        eng.range_query(store, "up", 0, 10 * M, M)
    assert (
        Engine(EngineOptions(max_samples=22)).range_query(store, "up", 0, 10 * M, M).result_type == "matrix"
    )


def test_timeout(store):
    eng = Engine(EngineOptions(timeout_s=1e-9))
    with pytest.raises(QueryTimeoutError, match="query timed out"):
        eng.range_query(store, "sum(up)", 0, 10 * M, M)


def test_stats_count_samples_per_step(store):
    res = Engine().range_query(store, "up", 0, 2 * M, M)
    js = res.stats.to_json(per_step=True)
    assert js["samples"]["totalQueryableSamples"] == 6
    assert js["samples"]["totalQueryableSamplesPerStep"] == [[0, 2], [60, 2], [120, 2]]
    assert js["timings"]["evalTotalTime"] >= 0


def test_query_log(store, tmp_path):
    log = tmp_path / "query.log"
    eng = Engine(EngineOptions(query_log_file=str(log)))
    eng.instant_query(store, "up", M)
    eng.range_query(store, "up", 0, M, M)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["params"]["query"] for x in lines] == ["up", "up"]
    assert lines[1]["params"]["step"] == 60
    assert "timings" in lines[0]["stats"]
    assert lines[0]["params"]["start"] == "1970-01-01T00:01:00.000Z"


def test_annotations_carry_positions(store):
    res = Engine().instant_query(store, "quantile(2, up)", M)
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)"]


def test_query_ast_without_text(store):
    node = ast.BinaryExpr(
        "+", ast.VectorSelector("up", [_eq("__name__", "up")]), ast.NumberLiteral(1.0), return_bool=False
    )
    res = Engine().query_ast(store, node, M, M)
    assert res.result_type == "vector"
    assert sorted(res.values[:, 0].tolist()) == [1.0, 2.0]


def _eq(name: str, value: str):
    from signalfire.labels import Matcher

    return Matcher.equal(name, value)


@pytest.mark.parametrize(
    ("v", "want"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (1e100, "1" + "0" * 100),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_format_value(v, want):
    assert format_value(v) == want


def test_to_pandas(store):
    df = Engine().range_query(store, "up", 0, M, M).to_pandas()
    assert list(df.columns) == ['up{job="a"}', 'up{job="b"}']
    assert df.shape == (2, 2)


def test_delayed_name_removal_feature(store):
    eng = Engine(EngineOptions(features=frozenset({"promql-delayed-name-removal"})))
    res = eng.instant_query(store, 'label_replace(rate(c_total[5m]), "n", "$1", "__name__", "(.*)")', 5 * M)
    assert res.labels == [Labels.from_dict({"job": "a", "n": "c_total"})]
    res = Engine().instant_query(
        store, 'label_replace(rate(c_total[5m]), "n", "$1", "__name__", "(.*)")', 5 * M
    )
    assert res.labels == [Labels.from_dict({"job": "a"})]


def test_cancel(store):
    import threading

    from signalfire.errors import QueryCanceledError

    ev = threading.Event()
    ev.set()
    with pytest.raises(QueryCanceledError, match="query was canceled"):
        Engine().range_query(store, "up", 0, M, M, cancel=ev)


@pytest.mark.parametrize(
    ("expr", "func"),
    [("rate(c_total[5m])", "rate"), ("sum(up)", "sum"), ("abs(up + up)", ""), ("up", "")],
)
def test_select_hints_name_the_enclosing_function(store, expr, func):
    Engine().instant_query(store, expr, 5 * M)
    _, hints = store.selects[-1]
    assert hints is not None and hints.func == func


def test_per_query_lookback_override(store):
    eng = Engine()
    assert len(eng.instant_query(store, "up", 12 * M).labels) == 2
    assert len(eng.instant_query(store, "up", 12 * M, lookback_delta_ms=M).labels) == 0
    res = eng.range_query(store, "up", 10 * M, 12 * M, M, lookback_delta_ms=90_000)
    np.testing.assert_array_equal(res.present[0], [True, True, False])


def test_step_invariant_subtrees_are_evaluated_once(store):
    eng = Engine()
    res = eng.range_query(store, "sum(rate(c_total[5m] @ 300)) + time() * 0", 0, 10 * M, M)
    np.testing.assert_allclose(res.values[0], np.full(11, 10 / 60))
    store.selects.clear()
    eng.range_query(store, "rate(c_total[5m] @ end())", 0, 10 * M, M)
    _, hints = store.selects[-1]
    assert (hints.start, hints.end) == (5 * M + 1, 10 * M)  # one window, not eleven
    eng = Engine(EngineOptions(features=frozenset({"promql-experimental-functions", "promql-duration-expr"})))
    res = eng.range_query(store, "start() + end() + c_total @ start()", 2 * M, 4 * M, M)
    np.testing.assert_array_equal(res.values[0], np.full(3, 120 + 240 + 20.0))


@pytest.mark.parametrize(
    "pairs",
    [
        {"__name__": "m", "a": "1"},
        {"__name__": "m", "__type__": "counter", "__unit__": "s", "a": "1"},
        {"__type__": "gauge", "b": "2"},
        {"A": "x", "__name__": "m", "z": "1"},
        {"a": "1"},
        {},
    ],
)
def test_strip_name_matches_without_metric_name(pairs):
    from signalfire.promql.names import strip_name

    ls = Labels.from_dict(pairs)
    assert strip_name(ls) == ls.without_metric_name()


@pytest.mark.parametrize(
    ("ends", "range_ms", "step_ms", "want"),
    [
        ([60_000], 60_000, 20_000, [20_000, 40_000, 60_000]),  # left edge 0 excluded
        ([50_000], 60_000, 20_000, [0, 20_000, 40_000]),
        ([-5_000], 10_000, 3_000, [-12_000, -9_000, -6_000]),  # multiples of the step, below zero
        ([60_000, 80_000], 40_000, 20_000, [40_000, 60_000, 80_000]),  # union of overlapping windows
        ([10_000], 5_000, 20_000, []),
    ],
)
def test_subquery_inner_times(ends, range_ms, step_ms, want):
    from signalfire.promql.subquery import inner_times

    got = inner_times(np.asarray(ends, np.int64), range_ms, step_ms)
    assert got.tolist() == want


def test_stats_include_subquery_samples(store):
    res = Engine().instant_query(store, "max_over_time(up[3m:1m])", 5 * M)
    assert res.stats.to_json()["samples"]["totalQueryableSamples"] == 6


def test_parse_features_splits_commas():
    from signalfire.promql.features import DELAYED_NAME_REMOVAL, KNOWN, parse_features

    got = parse_features(["promql-delayed-name-removal, promql-experimental-functions", "x"])
    assert got == {"promql-delayed-name-removal", "promql-experimental-functions", "x"}
    assert DELAYED_NAME_REMOVAL in KNOWN


def test_experimental_syntax_needs_its_feature(store):
    with pytest.raises(PromQLParseError):
        Engine().instant_query(store, "limitk(1, up)", M)
    eng = Engine(EngineOptions(features=frozenset({"promql-experimental-functions"})))
    assert len(eng.instant_query(store, "limitk(1, up)", M).labels) == 1
