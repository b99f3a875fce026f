"""The reference evaluator itself, on cases small enough to check by hand."""

from __future__ import annotations

import math

import pytest

from reference.promql_eval import ReferenceError_, Series, evaluate_range, quantile
from reference.promql_exprs import Aggregate, Binary, Num, RangeCall, Selector, render
from signalfire._types import STALE_NAN
from signalfire.labels import Labels

A = Labels.from_dict({"__name__": "m", "a": "x"})
B = Labels.from_dict({"__name__": "m", "a": "y"})
COUNTER = Series(A, [0, 60_000, 120_000, 180_000, 240_000], [0.0, 10.0, 20.0, 5.0, 15.0])  # reset at 3m
GAUGE = Series(B, [0, 60_000, 120_000], [1.0, STALE_NAN, 4.0])


def at(expr, t: int, data=(COUNTER, GAUGE)):  # type: ignore[no-untyped-def]
    return {lb: pts[t] for lb, pts in evaluate_range(expr, list(data), t, t, 1000).items()}


def test_instant_selector_lookback_and_staleness() -> None:
    assert at(Selector("m"), 60_000) == {A: 10.0}  # the stale marker hides B
    assert at(Selector("m"), 120_000) == {A: 20.0, B: 4.0}
    assert at(Selector("m"), 400_000) == {B: 4.0, A: 15.0}  # both within 5m
    assert at(Selector("m"), 420_000) == {A: 15.0}  # B (2m) is exactly 5m old: out (left-open)
    assert at(Selector("m"), 540_000) == {}  # 5m after 4m (left-open): gone


def test_increase_with_reset_and_extrapolation() -> None:
    # samples 10, 20, 5, 15 in (0, 4m]: increase 10 + 20 (reset) - 5 + 10 = 25... i.e. 15 - 10 + 20
    # = 25 over 3m; the window start is 60s before the first sample, under 1.1 x the 60s average
    # gap, so it extrapolates the full 60s, but no further than the counter's zero point
    # (180s * 10 / 25 = 72s): 25 * 240 / 180.
    got = at(RangeCall("increase", Selector("m", (("a", "x"),)), 240_000), 240_000)
    assert got == {A.without_metric_name(): pytest.approx(25 * 240 / 180)}


def test_irate_resets_changes() -> None:
    sel = Selector("m", (("a", "x"),))
    assert at(RangeCall("irate", sel, 300_000), 240_000) == {Labels.from_dict({"a": "x"}): 10 / 60}
    assert at(RangeCall("resets", sel, 300_000), 240_000) == {Labels.from_dict({"a": "x"}): 1.0}
    assert at(RangeCall("changes", sel, 300_000), 240_000) == {Labels.from_dict({"a": "x"}): 4.0}
    assert at(RangeCall("last_over_time", sel, 300_000), 240_000) == {A: 15.0}  # keeps the name


def test_aggregations_and_quantile() -> None:
    assert at(Aggregate("sum", Selector("m")), 120_000) == {Labels(()): 24.0}
    assert at(Aggregate("max", Selector("m"), ("a",)), 120_000) == {
        Labels.from_dict({"a": "x"}): 20.0,
        Labels.from_dict({"a": "y"}): 4.0,
    }
    assert at(Aggregate("topk", Selector("m"), param=1.0), 120_000) == {A: 20.0}
    assert quantile(0.5, [1.0, 2.0, 3.0, 4.0]) == 2.5
    assert quantile(1.5, [1.0]) == math.inf and quantile(-1, [1.0]) == -math.inf
    assert math.isnan(quantile(0.0, [math.nan, 1.0]))  # NaN sorts first


def test_binary_operators() -> None:
    assert at(Binary("*", Selector("m"), Num(2.0)), 120_000) == {
        A.without_metric_name(): 40.0,
        B.without_metric_name(): 8.0,
    }
    assert at(Binary(">", Selector("m"), Num(5.0)), 120_000) == {A: 20.0}  # a filter keeps the name
    assert at(Binary("/", Num(1.0), Num(0.0)), 0) == {Labels(()): math.inf}
    with pytest.raises(ReferenceError_):
        at(Binary("+", Selector("m"), Selector("m"), on=()), 120_000)  # two series on each side


def test_render() -> None:
    e = Binary(
        "+", Aggregate("sum", RangeCall("rate", Selector("m", (("a", "x"),)), 300_000), ("a",)), Num(1.0)
    )
    assert render(e) == '(sum by (a) (rate(m{a="x"}[300s])) + (1.0))'
