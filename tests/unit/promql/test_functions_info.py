"""info() and start_timestamp(), with a small in-memory select hook."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from signalfire._types import STALE_NAN
from signalfire.errors import QueryError
from signalfire.labels import Labels, Matcher, matches_all
from signalfire.promql import ast
from signalfire.promql.functions import call_function
from signalfire.promql.info import reference_times
from signalfire.promql.values import EvalContext, StepMatrix
from signalfire.storage import SeriesSet
from signalfire.storage.series_set import series_set_from_lists

MIN = 60_000


class Store:
    """Series as ``Labels -> (ts, values, st)``; select() filters by matchers and time."""

    def __init__(
        self, series: dict[str, tuple[list[int], list[float]]], st: dict[str, list[int]] | None = None
    ):
        self.data = {}
        for text, (ts, vals) in series.items():
            ls = _labels(text)
            self.data[ls] = (np.asarray(ts, np.int64), np.asarray(vals, np.float64), (st or {}).get(text))

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> SeriesSet:
        keep = [(ls, t, v, s) for ls, (t, v, s) in self.data.items() if matches_all(matchers, ls)]
        masks = [(t >= mint) & (t <= maxt) for _, t, _, _ in keep]
        ss = series_set_from_lists([k[0] for k in keep], [k[1][m] for k, m in zip(keep, masks)],
                                   [k[2][m] for k, m in zip(keep, masks)])  # fmt: skip
        sts = [np.asarray(k[3], np.int64)[m] if k[3] is not None else np.zeros(int(m.sum()), np.int64)
               for k, m in zip(keep, masks)]  # fmt: skip
        order = sorted(range(len(keep)), key=lambda i: keep[i][0])
        st = np.concatenate([sts[i] for i in order]) if order else np.empty(0, np.int64)
        return SeriesSet(ss.labels, ss.offsets, ss.ts, ss.values, st=st)


def _labels(text: str) -> Labels:
    name, _, rest = text.partition("{")
    d = {"__name__": name} if name else {}
    for part in filter(None, rest.rstrip("}").split(",")):
        k, _, v = part.partition("=")
        d[k.strip()] = v.strip().strip('"')
    return Labels.from_dict(d)


def ctx(store: Store, ts: list[int]) -> EvalContext:
    t = np.asarray(ts, np.int64)
    return EvalContext(ts=t, start=int(t[0]), end=int(t[-1]), step=MIN, select=store.select)


def base(store: Store, name: str, c: EvalContext) -> StepMatrix:
    """What an instant selector would give (newest sample within 5m)."""
    ss = store.select([Matcher.equal("__name__", name)], int(c.ts[0]) - 300_000, int(c.ts[-1]))
    rows, vals, pres = [], [], []
    for i, ls in enumerate(ss.labels):
        t = ss.ts[ss.offsets[i] : ss.offsets[i + 1]]
        v = ss.values[ss.offsets[i] : ss.offsets[i + 1]]
        idx = np.searchsorted(t, c.ts, side="right") - 1
        ok = (idx >= 0) & (t[np.maximum(idx, 0)] > c.ts - 300_000)
        rows.append(ls)
        vals.append(np.where(ok, v[np.maximum(idx, 0)], 0.0))
        pres.append(ok)
    return StepMatrix(rows, np.array(vals), np.array(pres))


def info_call(selector: list[Matcher] | None = None) -> ast.Call:
    args: list[ast.Expr] = [ast.VectorSelector("metric", [Matcher.equal("__name__", "metric")])]
    if selector is not None:
        args.append(ast.VectorSelector("", selector))
    return ast.Call("info", args)


def rows(sm: object) -> dict[str, list[float | None]]:
    assert isinstance(sm, StepMatrix)
    return {
        str(ls): [float(v) if p else None for v, p in zip(sm.values[i], sm.present[i])]
        for i, ls in enumerate(sm.labels)
    }


STORE = Store(
    {
        'metric{instance="a",job="1",label="value"}': ([0, 5 * MIN, 10 * MIN], [0, 1, 2]),
        'target_info{instance="a",job="1",data="info",another_data="x"}': ([0, 5 * MIN], [1, 1]),
        'build_info{instance="a",job="1",build_data="build"}': ([0, 5 * MIN, 10 * MIN], [1, 1, 1]),
    }
)
STEPS = [0, 5 * MIN, 10 * MIN]


def test_info_adds_target_info_labels_and_falls_back_when_info_is_gone() -> None:
    c = ctx(STORE, STEPS)
    out = call_function(info_call(), [base(STORE, "metric", c)], c)
    assert rows(out) == {
        'metric{another_data="x", data="info", instance="a", job="1", label="value"}': [0, 1, None],
        'metric{instance="a", job="1", label="value"}': [None, None, 2],
    }


def test_info_data_label_matcher_requires_a_match() -> None:
    c = ctx(STORE, STEPS)
    out = call_function(info_call([Matcher.parse_type("=~", "data", ".+")]), [base(STORE, "metric", c)], c)
    assert rows(out) == {'metric{data="info", instance="a", job="1", label="value"}': [0, 1, None]}


def test_info_with_named_info_metrics() -> None:
    c = ctx(STORE, STEPS)
    sel = [Matcher.parse_type("=~", "__name__", ".+_info")]
    out = call_function(info_call(sel), [base(STORE, "metric", c)], c)
    got = rows(out)
    assert got[
        'metric{another_data="x", build_data="build", data="info", instance="a", job="1", label="value"}'
    ] == [
        0,
        1,
        None,
    ]
    # Negative name matchers alone still only consider *_info metrics.
    sel = [Matcher.parse_type("!=", "__name__", "target_info")]
    out = call_function(info_call(sel), [base(STORE, "metric", c)], c)
    assert list(rows(out)) == ['metric{build_data="build", instance="a", job="1", label="value"}']


def test_info_conflicting_labels_fail() -> None:
    store = Store(
        {
            'metric{instance="a",job="1"}': ([0], [1]),
            'target_info{instance="a",job="1",x="t"}': ([0], [1]),
            'build_info{instance="a",job="1",x="b"}': ([0], [1]),
        }
    )
    c = ctx(store, [0])
    with pytest.raises(QueryError, match="conflicting label: x"):
        call_function(
            info_call([Matcher.parse_type("=~", "__name__", ".+_info")]), [base(store, "metric", c)], c
        )


def test_info_picks_the_newest_info_series_and_skips_stale() -> None:
    store = Store(
        {
            'metric{instance="a",job="1"}': ([0, MIN, 2 * MIN], [0, 1, 2]),
            'target_info{instance="a",job="1",v="old"}': ([0, MIN, 2 * MIN], [1, 1, STALE_NAN]),
            'target_info{instance="a",job="1",v="new"}': ([2 * MIN], [1]),
        }
    )
    c = ctx(store, [0, MIN, 2 * MIN])
    out = call_function(info_call(), [base(store, "metric", c)], c)
    assert rows(out) == {
        'metric{instance="a", job="1", v="old"}': [0, 1, None],
        'metric{instance="a", job="1", v="new"}': [None, None, 2],
    }


def test_reference_times_follow_at_and_offsets() -> None:
    c = EvalContext(ts=np.array([600_000, 660_000]), start=600_000, end=660_000, step=60_000)
    vs = ast.VectorSelector("m", [], offset=ast.DurLit(60_000))
    sq = ast.SubqueryExpr(
        ast.ParenExpr(vs), ast.DurLit(600_000), ast.DurLit(60_000), at=ast.AtKind.TIMESTAMP, at_ms=180_000
    )
    assert reference_times(ast.Call("last_over_time", [sq]), c).tolist() == [120_000, 120_000]
    sq2 = ast.SubqueryExpr(ast.VectorSelector("m", []), ast.DurLit(300_000), None, offset=ast.DurLit(360_000))
    assert reference_times(sq2, c).tolist() == [240_000, 300_000]


def test_start_timestamp_of_selected_samples() -> None:
    store = Store(
        {'series{case="b"}': ([40_000, 70_000], [40, 70])}, st={'series{case="b"}': [37_000, 30_000]}
    )
    c = ctx(store, [30_000, 40_000, 70_000, 400_000])
    node = ast.Call("start_timestamp", [ast.VectorSelector("series", [Matcher.equal("__name__", "series")])])
    out = call_function(node, [StepMatrix.empty(4)], c)
    assert rows(out) == {'series{case="b"}': [None, 37.0, 30.0, None]}
    assert isinstance(out, StepMatrix) and out.name_dropped().all()
    expr = ast.Call(
        "start_timestamp", [ast.BinaryExpr("*", ast.VectorSelector("series", []), ast.NumberLiteral(1))]
    )
    assert rows(call_function(expr, [StepMatrix.empty(4)], c)) == {}
