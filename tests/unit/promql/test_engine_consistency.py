"""Property tests: a range query equals the instant queries at each of its steps, and the
vectorised instant selector equals a slow per-sample reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memstore import MemStore

from signalfire._types import STALE_NAN, is_stale_value
from signalfire.errors import QueryError
from signalfire.promql import Engine, EngineOptions

S_STEP = 15_000
LOOKBACK = 60_000

_value = st.one_of(
    st.floats(-100, 100, allow_nan=False).map(lambda v: round(v, 2)),
    st.just(math.nan),
    st.just(STALE_NAN),
)


@st.composite
def stores(draw: st.DrawFn) -> MemStore:
    store = MemStore()
    n_series = draw(st.integers(1, 5))
    for i in range(n_series):
        times = sorted(draw(st.sets(st.integers(0, 40), min_size=1, max_size=12)))
        vals = [draw(_value) for _ in times]
        store.add(
            {"__name__": draw(st.sampled_from(["a", "b"])), "g": str(i % 2), "i": str(i)},
            [t * S_STEP for t in times],
            vals,
        )
    return store


def _reference_instant(store: MemStore, t: int) -> dict[str, float]:
    """The newest sample in (t - lookback, t] per series, absent when it is stale."""
    out = {}
    for ls, (ts, vs) in store.data.items():
        if ls.get("__name__") != "a":
            continue
        best = None
        for x, v in zip(ts.tolist(), vs.tolist()):
            if t - LOOKBACK < x <= t:
                best = v
        if best is not None and not is_stale_value(best):
            out[str(ls)] = best
    return out


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-9)


_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(stores(), st.integers(0, 45))
def test_instant_selector_matches_reference(store, step):
    t = step * S_STEP
    res = Engine(EngineOptions(lookback_delta_ms=LOOKBACK)).instant_query(store, "a", t)
    got = {str(ls): float(res.values[i, 0]) for i, ls in enumerate(res.labels)}
    want = _reference_instant(store, t)
    assert got.keys() == want.keys()
    assert all(_same(got[k], want[k]) for k in got)


EXPRS = [
    "a",
    "a + on(i) b",
    "a > bool 0",
    "a * 2 - 1",
    "sum by (g) (a)",
    "max without (i) ({__name__=~'a|b'})",
    "a or b",
    "a unless on(g) b",
    "topk(1, a)",
    "quantile(0.5, a)",
    "count_values('v', a)",
    "stddev by (g) (a)",
    "sum_over_time(a[1m])",
    "max_over_time(a[45s:15s])",
    "avg_over_time(sum by (g) (a)[1m:30s] offset 15s)",
    "a @ 300",
    "sum by (g) (a @ 300) * 2 + a",
    "max_over_time(a[1m:15s] @ 300) > bool 0",
    "rate(a[2m] @ 450) - timestamp(a)",
    "rate(a[2m])",
]


@_SETTINGS
@given(stores(), st.sampled_from(EXPRS), st.integers(0, 30))
def test_range_query_equals_instant_queries(store, expr, start_step):
    eng = Engine(EngineOptions(lookback_delta_ms=LOOKBACK))
    start, end, step = start_step * S_STEP, (start_step + 8) * S_STEP, 2 * S_STEP
    try:
        rng = eng.range_query(store, expr, start, end, step)
    except QueryError as err:
        # A range query fails when any of its steps does; find one that fails alike.
        errors = []
        for t in range(start, end + 1, step):
            try:
                eng.instant_query(store, expr, t)
            except QueryError as e2:
                errors.append(str(e2))
        assert str(err) in errors
        return
    for j, t in enumerate(rng.timestamps.tolist()):
        inst = eng.instant_query(store, expr, t)
        if inst.result_type == "scalar":
            assert _same(rng.values[0, j], inst.scalar)
            continue
        got = {str(ls): float(rng.values[i, j]) for i, ls in enumerate(rng.labels) if rng.present[i, j]}
        want = {str(ls): float(inst.values[i, 0]) for i, ls in enumerate(inst.labels)}
        assert got.keys() == want.keys(), (expr, t)
        assert all(_same(got[k], want[k]) for k in got), (expr, t, got, want)


def test_nan_and_stale_are_told_apart():
    store = MemStore().add({"__name__": "a"}, [0, S_STEP], [math.nan, STALE_NAN])
    eng = Engine(EngineOptions(lookback_delta_ms=LOOKBACK))
    res = eng.instant_query(store, "a", 0)
    assert res.present[0, 0] and np.isnan(res.values[0, 0])
    assert len(eng.instant_query(store, "a", S_STEP).labels) == 0
