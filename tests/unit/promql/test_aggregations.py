"""Aggregation operators, with by/without, against plain-Python expectations."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memstore import MemStore

from signalfire.errors import QueryError
from signalfire.promql import Engine, EngineOptions

M = 60_000
DELAYED = frozenset({"promql-delayed-name-removal"})
EXP = frozenset({"promql-experimental-functions"})


@pytest.fixture
def store() -> MemStore:
    return MemStore().load(
        """
        x{g="a", i="0"} 1
        x{g="a", i="1"} 2
        x{g="a", i="2"} 6
        x{g="b", i="0"} 10
        x{g="b", i="1"} NaN
        k 2
        """,
        M,
    )


def vec(
    store: MemStore, expr: str, ordered: bool = False, **opts
) -> dict[str, float] | list[tuple[str, float]]:
    res = Engine(EngineOptions(**opts)).instant_query(store, expr, 0)
    assert res.result_type == "vector"
    pairs = [(str(ls), float(res.values[i, 0])) for i, ls in enumerate(res.labels)]
    return pairs if ordered else dict(pairs)


def _eq(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k]) for k in a
    )


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ('sum by (g) (x{i!="1"})', {'{g="a"}': 7.0, '{g="b"}': 10.0}),
        ("sum without (i) (x)", {'{g="a"}': 9.0, '{g="b"}': math.nan}),
        ("avg by (g) (x)", {'{g="a"}': 3.0, '{g="b"}': math.nan}),
        ("count(x)", {"{}": 5.0}),
        ("group by (g) (x)", {'{g="a"}': 1.0, '{g="b"}': 1.0}),
        ("max by (g) (x)", {'{g="a"}': 6.0, '{g="b"}': 10.0}),
        ("min by (g) (x)", {'{g="a"}': 1.0, '{g="b"}': 10.0}),
        ('stddev(x{g="a"})', {"{}": statistics.pstdev([1, 2, 6])}),
        ('stdvar(x{g="a"})', {"{}": statistics.pvariance([1, 2, 6])}),
        ('quantile(0.5, x{g="a"})', {"{}": 2.0}),
        ('quantile(0.75, x{g="a"})', {"{}": 4.0}),
        ('quantile(2, x{g="a"})', {"{}": math.inf}),
        ("sum by (__name__) (x)", {"x": math.nan}),
        ('count_values("v", x{g="a"})', {'{v="1"}': 1.0, '{v="2"}': 1.0, '{v="6"}': 1.0}),
        ('count_values by (g) ("i", x{i="0"})', {'{g="a", i="1"}': 1.0, '{g="b", i="10"}': 1.0}),
    ],
)
def test_aggregations(store, expr, want):
    assert _eq(vec(store, expr), want)


def test_topk_bottomk_order_and_nan(store):
    assert vec(store, "topk(2, x)", ordered=True) == [('x{g="b", i="0"}', 10.0), ('x{g="a", i="2"}', 6.0)]
    assert vec(store, "bottomk(2, x)", ordered=True) == [('x{g="a", i="0"}', 1.0), ('x{g="a", i="1"}', 2.0)]
    got = vec(store, 'topk(5, x{g="b"})', ordered=True)
    assert got[0] == ('x{g="b", i="0"}', 10.0) and math.isnan(got[1][1])
    got = vec(store, 'bottomk(5, x{g="b"})', ordered=True)
    assert got[0] == ('x{g="b", i="0"}', 10.0)
    assert set(vec(store, "topk by (g) (1, x)")) == {'x{g="a", i="2"}', 'x{g="b", i="0"}'}
    assert vec(store, "topk(scalar(k) - 2, x)") == {}


def test_limitk_and_limit_ratio(store):
    assert len(vec(store, "limitk(2, x)", features=EXP)) == 2
    assert len(vec(store, "limitk by (g) (1, x)", features=EXP)) == 2
    assert len(vec(store, "limit_ratio(1, x)", features=EXP)) == 5
    assert len(vec(store, "limit_ratio(0, x)", features=EXP)) == 0
    a = set(vec(store, "limit_ratio(0.4, x)", features=EXP))
    b = set(vec(store, "limit_ratio(-0.6, x)", features=EXP))
    assert a.isdisjoint(b) and len(a | b) == 5


def test_limit_ratio_out_of_range_warns(store):
    res = Engine(EngineOptions(features=EXP)).instant_query(store, "limit_ratio(1.5, x)", 0)
    assert res.warnings == [
        "PromQL warning: ratio value should be between -1 and 1, got 1.5, capping to 1 (1:13)"
    ]


def test_nan_parameter_errors(store):
    with pytest.raises(QueryError, match=r"^Parameter value is NaN$"):
        vec(store, "topk(NaN, x)")
    with pytest.raises(QueryError, match=r"^Ratio value is NaN$"):
        vec(store, "limit_ratio(NaN, x)", features=EXP)


def test_quantile_out_of_range_warns(store):
    res = Engine().instant_query(store, "quantile(-1, x)", 0)
    assert res.warnings == ["PromQL warning: quantile value should be between 0 and 1, got -1 (1:10)"]


def test_kahan_summation():
    store = MemStore().load(
        """
        d{p="a"} 1
        d{p="b"} 1e100
        d{p="c"} 1
        d{p="d"} -1e100
        """,
        M,
    )
    assert vec(store, "sum(d)") == {"{}": 2.0}
    assert vec(store, "avg(d)") == {"{}": 0.5}


def test_avg_does_not_overflow():
    store = MemStore().load('d{p="a"} 1e308\nd{p="b"} 1e308', M)
    assert vec(store, "avg(d)") == {"{}": 1e308}


def test_stddev_of_equal_values_is_zero():
    store = MemStore().load('d{p="a"} 13.3\nd{p="b"} 13.3\nd{p="c"} 13.3', M)
    assert vec(store, "stddev(d)") == {"{}": 0.0}


def test_delayed_name_dropping_through_aggregation():
    store = MemStore().load('m_total{env="1"} 0 60 120', 5 * M)
    eng = Engine(EngineOptions(features=DELAYED))
    res = eng.instant_query(store, "sum by (__name__) (-m_total)", 10 * M)
    assert [str(ls) for ls in res.labels] == ["{}"]
    res = eng.instant_query(store, "sum by (__name__) (m_total)", 10 * M)
    assert [str(ls) for ls in res.labels] == ["m_total"]


def test_range_query_topk_per_step():
    store = MemStore().load('y{i="0"} 1 5\ny{i="1"} 3 2', M)
    res = Engine().range_query(store, "topk(1, y)", 0, M, M)
    got = {str(ls): res.present[i].tolist() for i, ls in enumerate(res.labels)}
    assert got == {'y{i="0"}': [False, True], 'y{i="1"}': [True, False]}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=12
    )
)
def test_sum_count_max_match_reference(rows):
    store = MemStore()
    for i, (g, v) in enumerate(rows):
        store.add({"__name__": "z", "g": g, "i": str(i)}, [0], [v])
    for op, ref in (("sum", math.fsum), ("count", len), ("max", max), ("min", min)):
        got = vec(store, f"{op} by (g) (z)")
        want: dict[str, float] = {}
        for g in sorted({g for g, _ in rows}):
            want[f'{{g="{g}"}}'] = float(ref([v for gg, v in rows if gg == g]))
        assert got.keys() == want.keys()
        for key in got:
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-6)


def test_quantile_matches_numpy_linear():
    rng = np.random.default_rng(1)
    vals = rng.normal(size=17)
    store = MemStore()
    for i, v in enumerate(vals):
        store.add({"__name__": "q", "i": str(i)}, [0], [float(v)])
    for phi in (0, 0.1, 0.5, 0.9, 1):
        got = vec(store, f"quantile({phi}, q)")["{}"]
        assert got == pytest.approx(float(np.quantile(vals, phi)))


def _pquantile(q: float, vals: list[float]) -> float:
    vs = sorted(vals, key=lambda v: (not math.isnan(v), v))  # Go puts NaN first
    rank = q * (len(vs) - 1)
    lo = max(0, math.floor(rank))
    hi = min(len(vs) - 1, lo + 1)
    w = rank - math.floor(rank)
    return vs[lo] * (1 - w) + vs[hi] * w


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ab"), st.one_of(st.integers(-50, 50).map(float), st.just(math.nan))),
        min_size=1,
        max_size=10,
    )
)
def test_moments_quantile_topk_match_reference(rows):
    store = MemStore()
    for i, (g, v) in enumerate(rows):
        store.add({"__name__": "z", "g": g, "i": str(i)}, [0], [v])
    groups = {g: [v for gg, v in rows if gg == g] for g in sorted({g for g, _ in rows})}
    refs = {
        "avg by (g) (z)": lambda vs: sum(vs) / len(vs),
        "stdvar by (g) (z)": lambda vs: (
            statistics.pvariance(vs) if not any(map(math.isnan, vs)) else math.nan
        ),
        "quantile by (g) (0.3, z)": lambda vs: _pquantile(0.3, vs),
        "group by (g) (z)": lambda vs: 1.0,
    }
    for expr, ref in refs.items():
        got = vec(store, expr)
        for g, vs in groups.items():
            assert _eq({"x": got[f'{{g="{g}"}}']}, {"x": ref(vs)}), (expr, vs)
    # topk/bottomk: the k largest/smallest numbers per group; NaN only when numbers run out.
    got = vec(store, "topk by (g) (2, z)")
    for g, vs in groups.items():
        nums = sorted((v for v in vs if not math.isnan(v)), reverse=True)
        want = nums[:2] + [math.nan] * max(0, 2 - len(nums))
        mine = sorted((v for k, v in got.items() if f'g="{g}"' in k), key=lambda v: (math.isnan(v), -v))
        assert len(mine) == min(2, len(vs))
        assert all(_eq({"x": a}, {"x": b}) for a, b in zip(mine, want))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 9), st.integers(2, 6), st.integers(1, 10), st.data())
def test_single_group_topk_partition_keeps_the_rows_the_sort_keeps(S, T, k, data):
    """The partition fast path for one group must keep exactly the rows of the full stable
    sort, ties included (they are common: equal rates, zeros, infinities), also where
    absent or NaN cells are among the first k."""
    from signalfire.promql import aggregations
    from signalfire.promql.values import StepMatrix

    pool = [0.0, -0.0, 1.0, 2.0, -3.0, math.inf, -math.inf, math.nan]
    cells = data.draw(st.lists(st.sampled_from(pool), min_size=S * T, max_size=S * T))
    values = np.array(cells).reshape(S, T)
    present = np.array(data.draw(st.lists(st.booleans(), min_size=S * T, max_size=S * T))).reshape(S, T)
    vec = StepMatrix([{"i": str(i)} for i in range(S)], values, present, None)
    ids = np.zeros(S, np.int64)
    for descending in (True, False):
        fast = aggregations._select_k_single_group(vec, np.full(T, k, np.int64), descending)
        order, _ = aggregations._sorted_columns(ids, values, present, descending)
        by_sort = np.zeros((S, T), np.bool_)
        np.put_along_axis(by_sort, order, np.repeat((np.arange(S) < k)[:, None], T, axis=1), axis=0)
        by_sort &= present
        if k >= S:
            assert fast is None
        else:
            assert fast is not None
            np.testing.assert_array_equal(fast, by_sort)
