"""Query limits come before the allocation: steps, samples, dense cells, deadlines.

Each test names the class of input it covers: range queries with too many steps (the
engine's bound and the API's 11,000 points), selections whose samples or dense cells go
over ``max_samples`` (refused before the arrays exist, so peak memory stays below the
limit's bytes), and deadlines (timeout, cancel) honoured inside long evaluations and
inside storage selects.
"""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memstore import MemStore

import signalfire
from signalfire._types import STALE_NAN
from signalfire.errors import (
    BadDataError,
    QueryCanceledError,
    QueryTimeoutError,
    TooManySamplesError,
    TooManyStepsError,
)
from signalfire.labels import Labels, Matcher
from signalfire.promql import Engine, EngineOptions, selectors
from signalfire.promql.limits import MAX_POINTS_PER_SERIES, check_resolution
from signalfire.storage import SeriesSet
from signalfire.util.deadline import Deadline

H = 3_600_000
SIX_H = 6 * H


def _six_hours(n_series: int, interval_ms: int = 15_000) -> MemStore:
    """The issue's data: ``n_series`` series of ``x`` with 6 h of samples."""
    store = MemStore()
    ts = np.arange(0, SIX_H + 1, interval_ms, dtype=np.int64)
    for i in range(n_series):
        store.data[Labels.from_dict({"__name__": "x", "i": f"{i:05d}"})] = (ts, np.full(len(ts), float(i)))
    return store


# ---------------------------------------------------------------- steps


@pytest.mark.parametrize(
    ("expr", "start", "end", "step"),
    [
        ("x", 0, SIX_H, 1),  # the 7.28 TiB / 805 GiB arrays
        ("vector(1)", 0, 10**12, 1),
        ("time()", -(2**62), 2**62, 1_000),
        ("x", 0, 2**63 - 1, 1),
    ],
)
def test_range_query_steps_are_refused_before_the_step_array(expr, start, end, step):
    eng = Engine(EngineOptions(max_steps=100_000))
    tracemalloc.start()
    try:
        with pytest.raises(TooManyStepsError, match=r"more than the engine's limit of 100000 \(max_steps\)"):
            eng.range_query(_six_hours(2), expr, start, end, step)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_engine_step_bound_is_inclusive():
    eng = Engine(EngineOptions(max_steps=11))
    assert eng.range_query(_six_hours(1), "vector(1)", 0, 10, 1).values.shape == (1, 11)
    with pytest.raises(TooManyStepsError):
        eng.range_query(_six_hours(1), "vector(1)", 0, 11, 1)


@pytest.mark.parametrize(
    "expr",
    [
        "sum_over_time(x[6h:1ms])",
        "max_over_time(max_over_time(x[1h:1ms])[6h:1s])",
        "rate(x[5m:1ms] offset 1h)",
    ],
)
def test_subquery_inner_steps_are_bounded(expr):
    eng = Engine(EngineOptions(max_steps=1_000_000))
    with pytest.raises(TooManyStepsError, match="subquery would be evaluated at"):
        eng.range_query(_six_hours(1), expr, 0, SIX_H, 60_000)


@pytest.mark.parametrize(
    ("start", "end", "step", "ok"),
    [
        (0, 11_000, 1, True),  # (end - start) / step == 11,000 points: Prometheus accepts it
        (0, 11_001, 1, False),
        (0, 11_000 * 60_000, 60_000, True),
        (0, 11_000 * 60_000 + 60_000, 60_000, False),
        (0, SIX_H, 1, False),  # the query_range("x", 0, 6h, step=1ms)
        (0, 10**12, 1, False),
        (-(2**62), 2**62, 10**9, False),
    ],
)
def test_api_resolution_limit(start, end, step, ok):
    if ok:
        check_resolution(start, end, step)
        return
    with pytest.raises(BadDataError) as info:
        check_resolution(start, end, step)
    assert str(info.value) == (
        "exceeded maximum resolution of 11,000 points per timeseries. "
        "Try decreasing the query resolution (?step=XX)"
    )
    assert MAX_POINTS_PER_SERIES == 11_000


def test_api_resolution_checks_come_in_prometheus_order():
    with pytest.raises(BadDataError, match="end timestamp must not be before start time"):
        check_resolution(10, 0, 0)
    with pytest.raises(BadDataError, match="zero or negative query resolution step"):
        check_resolution(0, 10, 0)


def test_database_query_range_applies_the_api_limit(tmp_path):
    with signalfire.open(tmp_path) as db:
        db.append({"__name__": "x"}, [0, 1000], [1.0, 2.0])
        with pytest.raises(BadDataError, match="exceeded maximum resolution of 11,000 points"):
            db.query_range("x", 0, 6 * 3600, 0.001)
        with pytest.raises(BadDataError, match="exceeded maximum resolution of 11,000 points"):
            db.query_range("vector(1)", 0, 1e9, 0.001)
        assert db.query_range("x", 0, 11, 0.001).values.shape == (1, 11_001)


# ---------------------------------------------------------------- samples before the arrays


@pytest.mark.parametrize(
    ("expr", "max_samples"),
    [
        # 200 series x 21,601 inner steps = 4.3 M cells: over 4x 1 M (dense cells) ...
        ("sum_over_time(x[6h:1s])", 1_000_000),
        # ... and, under 4x 2 M, refused by the exact count of the samples it would pick.
        ("sum_over_time(x[6h:1s])", 2_000_000),
        ("count_over_time(x[6h])", 100_000),  # window samples: 200 x 1,441 x 361 steps
        ("x", 50_000),  # a plain range query of 200 x 361 present points
    ],
)
def test_refused_query_peak_memory_stays_below_the_limit_bytes(expr, max_samples):
    store = _six_hours(200)
    eng = Engine(EngineOptions(max_samples=max_samples))
    start, step = (SIX_H, 0) if "[" in expr else (0, 60_000)
    tracemalloc.start()
    try:
        with pytest.raises(TooManySamplesError):
            if step:
                eng.range_query(store, expr, start, SIX_H, step)
            elif expr.startswith("count_over_time"):
                eng.range_query(store, expr, 0, SIX_H, 60_000)
            else:
                eng.instant_query(store, expr, start)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit_bytes = 16 * max_samples  # a Prometheus sample: int64 time + float64 value
    # Besides what the limit allows, only the selection (288k samples, 4.6 MB, copied
    # by the test store) and its counting are held; before, the dense arrays: 150+ MB.
    selection_bytes = 16 * 200 * 1441
    assert peak < limit_bytes + 4 * selection_bytes, f"peak {peak / 2**20:.1f} MiB"


def test_queries_at_the_limit_still_run():
    store = _six_hours(3)
    # 3 series x 21,600 inner steps in (0, 6h], all present: 64,800 samples.
    got = Engine(EngineOptions(max_samples=64_800)).instant_query(store, "sum_over_time(x[6h:1s])", SIX_H)
    assert got.values.shape == (3, 1)
    with pytest.raises(TooManySamplesError):
        Engine(EngineOptions(max_samples=64_799)).instant_query(store, "sum_over_time(x[6h:1s])", SIX_H)


_series = st.lists(
    st.lists(st.integers(0, 40), min_size=0, max_size=25, unique=True).map(sorted), min_size=1, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(
    _series,
    st.lists(st.booleans(), min_size=150, max_size=150),
    st.integers(0, 45),
    st.integers(1, 9),
    st.integers(1, 20),
    st.integers(1, 15),
    st.booleans(),
)
def test_sample_counts_before_allocation_are_exact(per_series, stale, t0, step, n_steps, width, pinned):
    """count_present / count_in_windows equal what the dense kernels then hold, for any
    data (gaps, stale markers, empty series) and any evaluation times (grid or pinned)."""
    ts, vs, offsets, labels = [], [], [0], []
    k = 0
    for i, times in enumerate(per_series):
        for t in times:
            ts.append(t * 10)
            vs.append(STALE_NAN if stale[k % len(stale)] else float(k))
            k += 1
        offsets.append(len(ts))
        labels.append(Labels.from_dict({"i": str(i)}))
    ss = SeriesSet(labels, np.array(offsets, np.int64), np.array(ts, np.int64), np.array(vs, np.float64))
    t = (
        np.full(n_steps, t0 * 10, np.int64)
        if pinned
        else t0 * 10 + step * 10 * np.arange(n_steps, dtype=np.int64)
    )
    lookback = width * 10
    sm = selectors.instant_vector(ss, t, lookback)
    assert selectors.count_present(ss, t, lookback) == int(sm.present.sum())
    rw = selectors.range_windows(ss, t, lookback, 300_000)
    assert selectors.count_in_windows(ss, t, lookback) == int((rw.hi - rw.lo).sum())


# ---------------------------------------------------------------- deadlines


def _heavy() -> tuple[MemStore, str]:
    """About 10 s of evaluation without a limit (21.6 M cells): the issue's subquery."""
    return _six_hours(1000), "sum_over_time(x[6h:1s])"


def test_timeout_stops_a_heavy_subquery_soon_after_the_deadline():
    store, expr = _heavy()
    timeout = 0.5
    eng = Engine(EngineOptions(timeout_s=timeout))
    t0 = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="query timed out in expression evaluation"):
        eng.instant_query(store, expr, SIX_H)
    elapsed = time.monotonic() - t0
    assert elapsed < timeout + max(1.0, 0.5 * timeout), f"stopped after {elapsed:.2f}s"


def test_cancel_from_another_thread_stops_a_running_query():
    store, expr = _heavy()
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(QueryCanceledError, match="query was canceled"):
            Engine().instant_query(store, expr, SIX_H, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 0.3 + 1.0


@pytest.fixture(scope="module")
def tsdb_with_blocks(tmp_path_factory):
    """Two persisted blocks plus samples in the head, 50 series."""
    path = tmp_path_factory.mktemp("limits_db")
    db = signalfire.open(path, min_block_duration=H, retention_ms=0)
    ts = np.arange(0, 3 * H, 15_000, dtype=np.int64)
    series = [{"__name__": "m", "i": str(i)} for i in range(50)]
    db.append([s for s in series for _ in ts], np.tile(ts, 50), np.arange(50 * len(ts), dtype=np.float64))
    db.compact()
    assert len(db.tsdb.blocks) >= 2
    yield db
    db.close()


@pytest.mark.parametrize("cause", ["cancel", "timeout"])
def test_every_storage_select_honours_its_deadline(tsdb_with_blocks, cause):
    """The merged querier and each querier below it (blocks, head) stop on the deadline."""
    ev = threading.Event()
    dl = Deadline(cancel=ev) if cause == "cancel" else Deadline(at=time.monotonic() - 1)
    ev.set()
    err = QueryCanceledError if cause == "cancel" else QueryTimeoutError
    q = tsdb_with_blocks.tsdb.querier(0, 3 * H)  # the tsdb's merge, not the fanout above it
    try:
        inner = [q, *getattr(q, "_queriers", [])]
        assert len(inner) >= 3  # merged, two blocks, the head
        for each in inner:
            with pytest.raises(err):
                each.select([Matcher.equal("__name__", "m")], None, dl)
            runs = getattr(each, "select_runs", None)
            if runs is not None:
                with pytest.raises(err):
                    runs([Matcher.equal("__name__", "m")], None, dl)
            assert len(each.select([Matcher.equal("__name__", "m")])) == 50  # no deadline: reads
    finally:
        q.close()


class _CancelDuringSelect:
    """A Queryable over the tsdb whose selects set the query's cancel event on entry, so
    the cancel can only be seen by the storage select itself."""

    def __init__(self, db, cancel: threading.Event) -> None:
        self.db, self.cancel = db, cancel

    def querier(self, mint, maxt):
        inner = self.db.querier(mint, maxt)
        cancel = self.cancel

        class Q:
            def select(self, matchers, hints=None, deadline=None):
                cancel.set()
                return inner.select(matchers, hints, deadline)

            def close(self):
                inner.close()

        return Q()


def test_cancel_reaches_the_storage_select(tsdb_with_blocks):
    cancel = threading.Event()
    qa = _CancelDuringSelect(tsdb_with_blocks.tsdb, cancel)
    with pytest.raises(QueryCanceledError):
        Engine().range_query(qa, "sum(m)", 0, 3 * H, 60_000, cancel=cancel)
