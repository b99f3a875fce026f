"""Instant and range selectors: lookback, staleness, offset, @, left-open windows."""

from __future__ import annotations

import numpy as np
import pytest
from memstore import MemStore

from signalfire.errors import PromQLParseError
from signalfire.promql import Engine, EngineOptions

M = 60_000


def vec(store: MemStore, expr: str, t_ms: int, **opts) -> dict[str, float]:
    res = Engine(EngineOptions(**opts)).instant_query(store, expr, t_ms)
    assert res.result_type == "vector", res.result_type
    return {str(ls): float(res.values[i, 0]) for i, ls in enumerate(res.labels)}


@pytest.fixture
def store() -> MemStore:
    return MemStore().load(
        """
        a{x="1"} 1 2 3 stale 5
        a{x="2"} 10 _ _ _ _ _ _ _ 90
        b 7
        """,
        5 * M,
    )


@pytest.mark.parametrize(
    ("t", "want"),
    [
        (0, {'a{x="1"}': 1.0, 'a{x="2"}': 10.0}),
        (5 * M - 1, {'a{x="1"}': 1.0, 'a{x="2"}': 10.0}),
        # 3.x lookback is left-open: the sample at 0 is gone at exactly 5m.
        (5 * M, {'a{x="1"}': 2.0}),
        (14 * M, {'a{x="1"}': 3.0}),
        (15 * M, {}),  # the newest sample is a staleness marker
        (20 * M, {'a{x="1"}': 5.0}),
        (40 * M, {'a{x="2"}': 90.0}),
    ],
)
def test_instant_selector_lookback_and_staleness(store, t, want):
    assert vec(store, "a", t) == want


def test_lookback_delta_option(store):
    assert vec(store, "b", 9 * M, lookback_delta_ms=10 * M) == {"b": 7.0}
    assert vec(store, "b", 10 * M, lookback_delta_ms=10 * M) == {}


def test_offset_and_at(store):
    assert vec(store, "a offset 5m", 10 * M) == {'a{x="1"}': 2.0}
    assert vec(store, "a offset -5m", 0) == {'a{x="1"}': 2.0}
    assert vec(store, "a @ 600", 99 * M) == {'a{x="1"}': 3.0}
    assert vec(store, "a @ 900 offset 5m", 0) == {'a{x="1"}': 3.0}


def test_at_start_end_in_range_query(store):
    res = Engine().range_query(store, "a @ end()", 0, 10 * M, 5 * M)
    assert [str(ls) for ls in res.labels] == ['a{x="1"}']
    np.testing.assert_array_equal(res.values[0], [3.0, 3.0, 3.0])
    res = Engine().range_query(store, "a @ start()", 5 * M, 10 * M, 5 * M)
    np.testing.assert_array_equal(res.values[0], [2.0, 2.0])


def test_disabled_at_and_negative_offset(store):
    eng = Engine(EngineOptions(enable_at_modifier=False, enable_negative_offset=False))
    with pytest.raises(PromQLParseError):
        eng.instant_query(store, "a @ 100", 0)
    with pytest.raises(PromQLParseError):
        eng.instant_query(store, "a offset -1m", 0)


def test_range_selector_windows_are_left_open_and_drop_stale(store):
    res = Engine().instant_query(store, "a[10m]", 20 * M)
    assert res.result_type == "matrix"
    got = {str(ls): res.series.series(i)[1].tolist() for i, ls in enumerate(res.series.labels)}
    # (10m, 20m]: the sample at 10m is excluded, the stale marker at 15m is dropped.
    assert got == {'a{x="1"}': [20 * M]}
    res = Engine().instant_query(store, "a[10m] offset 5m", 20 * M)
    got = {str(ls): res.series.series(i)[2].tolist() for i, ls in enumerate(res.series.labels)}
    assert got == {'a{x="1"}': [3.0]}


def test_range_query_matches_instant_queries(store):
    res = Engine().range_query(store, "a", 0, 40 * M, M)
    for j, t in enumerate(res.timestamps.tolist()):
        inst = vec(store, "a", t)
        from_range = {
            str(ls): float(res.values[i, j]) for i, ls in enumerate(res.labels) if res.present[i, j]
        }
        assert from_range == inst, t


def test_selector_requests_only_needed_range(store):
    Engine().instant_query(store, "a[10m] offset 5m", 20 * M)
    _, hints = store.selects[-1]
    assert hints is not None
    assert (hints.start, hints.end, hints.range) == (5 * M + 1, 15 * M, 10 * M)


def test_sample_ts_recorded_for_timestamp():
    from signalfire._types import I64  # noqa: F401  (documents the dtype)
    from signalfire.promql import selectors

    store = MemStore().load('a{x="1"} 1 2', M)
    ss = store.querier(0, 10 * M).select([])
    sm = selectors.instant_vector(ss, np.array([0, 30_000, 90_000]), 5 * M)
    np.testing.assert_array_equal(sm.sample_ts[0], [0, 0, M])
