"""Ragged primitives against slow per-series twins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.util import ragged


def _ragged(series: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(series) + 1, np.int64)
    np.cumsum([len(s) for s in series], out=offsets[1:])
    ts = (
        np.concatenate([np.asarray(sorted(set(s)), np.int64) for s in series])
        if series
        else np.empty(0, np.int64)
    )
    return offsets, ts


_series = st.lists(st.lists(st.integers(-50, 50), unique=True).map(sorted), min_size=0, max_size=6)


@settings(max_examples=60, deadline=None)
@given(_series, st.lists(st.integers(-60, 60), min_size=1, max_size=5), st.sampled_from(["left", "right"]))
def test_searchsorted_ragged_matches_per_series(series, queries, side):
    offsets, ts = _ragged(series)
    q = np.asarray(queries, np.int64)
    got = ragged.searchsorted_ragged(offsets, ts, q, side)
    for i in range(len(series)):
        a, b = offsets[i], offsets[i + 1]
        want = np.searchsorted(ts[a:b], q, side=side) + a
        np.testing.assert_array_equal(got[i], want)


@settings(max_examples=100, deadline=None)
@given(
    _series,
    st.integers(-70, 70),
    st.integers(1, 25),
    st.integers(2, 12),
    st.sampled_from(["left", "right"]),
    st.booleans(),
)
def test_searchsorted_on_a_grid_counts_like_binary_search(series, q0, step, T, side, extremes):
    """Range-query steps take the counting path; it must agree with searching, also for
    samples far outside the grid and on its exact points."""
    if extremes:
        series = [[-(2**62), *s, 2**62] for s in series]
    offsets, ts = _ragged(series)
    q = q0 + step * np.arange(T, dtype=np.int64)
    got = ragged.searchsorted_ragged(offsets, ts, q, side)
    for i in range(len(series)):
        a, b = offsets[i], offsets[i + 1]
        np.testing.assert_array_equal(got[i], np.searchsorted(ts[a:b], q, side=side) + a)


@settings(max_examples=100, deadline=None)
@given(
    _series,
    st.integers(-60, 60),
    st.sampled_from(["left", "right"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0, 10, ragged.ONE_TIME_MAX_WORK]),
)
def test_searchsorted_of_one_time_counts_like_binary_search(series, t, side, extremes, several, limit):
    """A single time (an instant query) is counted up to ONE_TIME_MAX_WORK samples ×
    searches and searched past it; both sides of the limit, alone or beside another search,
    agree with searching each series, also at the int64 ends and on exact samples."""
    old_limit = ragged.ONE_TIME_MAX_WORK
    ragged.ONE_TIME_MAX_WORK = limit
    try:
        _check_one_time(series, t, side, extremes, several)
    finally:
        ragged.ONE_TIME_MAX_WORK = old_limit


def _check_one_time(series: list[list[int]], t: int, side: str, extremes: bool, several: bool) -> None:
    if extremes:
        series = [[MIN_TIME, *s, MAX_TIME] for s in series]
        t = {-60: MIN_TIME, 60: MAX_TIME}.get(t, t)
    offsets, ts = _ragged(series)
    q = np.array([t], np.int64)
    searches = [(q, side), (q - 7, "left")] if several else [(q, side)]
    got = ragged.searchsorted_ragged_many(offsets, ts, searches)
    for (qq, sd), g in zip(searches, got):
        assert g.shape == (len(series), 1)
        for i in range(len(series)):
            a, b = offsets[i], offsets[i + 1]
            np.testing.assert_array_equal(g[i], np.searchsorted(ts[a:b], qq, side=sd) + a)


def test_searchsorted_ragged_huge_span_falls_back():
    offsets, ts = _ragged([[-(2**61), 0, 2**61], [5]])
    q = np.array([-(2**62), 1, 2**62], np.int64)
    got = ragged.searchsorted_ragged(offsets, ts, q)
    np.testing.assert_array_equal(got, [[0, 2, 3], [3, 3, 4]])


def test_window_bounds_are_left_open():
    offsets, ts = _ragged([[0, 10, 20, 30]])
    lo, hi = ragged.window_bounds(offsets, ts, np.array([20, 30]), 10)
    # (10, 20] holds only 20; (20, 30] holds only 30.
    assert ts[lo[0, 0] : hi[0, 0]].tolist() == [20]
    assert ts[lo[0, 1] : hi[0, 1]].tolist() == [30]


@pytest.mark.parametrize(
    ("ufunc", "empty", "want"),
    [
        (np.add, 0.0, [3.0, 0.0, np.nan, 7.0]),
        (np.fmax, np.nan, [2.0, np.nan, 4.0, 4.0]),
    ],
    ids=["sum", "fmax"],
)
def test_window_reduce_handles_empty_and_nan(ufunc, empty, want):
    values = np.array([1.0, 2.0, np.nan, 4.0, 3.0])
    lo = np.array([0, 2, 2, 3])
    hi = np.array([2, 2, 4, 5])
    got = ragged.window_reduce(ufunc, values, lo, hi, empty)
    np.testing.assert_array_equal(got, want)


def test_window_reduce_keeps_shape():
    values = np.arange(6, dtype=np.float64)
    lo = np.array([[0, 1], [3, 6]])
    hi = np.array([[2, 3], [6, 6]])
    got = ragged.window_reduce(np.add, values, lo, hi, 0.0)
    np.testing.assert_array_equal(got, [[1.0, 3.0], [12.0, 0.0]])


def test_compress_and_series_index():
    offsets = np.array([0, 2, 2, 5])
    keep = np.array([True, False, True, True, False])
    np.testing.assert_array_equal(ragged.compress(offsets, keep), [0, 1, 1, 3])
    np.testing.assert_array_equal(ragged.series_index(offsets), [0, 0, 2, 2, 2])


def test_group_ids_first_appearance_order():
    ids, uniq = ragged.group_ids(["b", "a", "b", "c"])
    assert ids.tolist() == [0, 1, 0, 2]
    assert uniq == ["b", "a", "c"]


def test_group_reductions_skip_masked_cells():
    ids = np.array([0, 1, 0])
    values = np.array([[1.0, 2.0], [5.0, 5.0], [3.0, np.nan]])
    mask = np.array([[True, True], [True, False], [True, False]])
    np.testing.assert_array_equal(ragged.group_reduce_sum(ids, 2, values, mask), [[4.0, 2.0], [5.0, 0.0]])
    np.testing.assert_array_equal(ragged.group_count(ids, 2, mask), [[2, 1], [1, 0]])
    np.testing.assert_array_equal(ragged.first_true(mask, axis=0), [0, 0])


def test_prefix_sum():
    p = ragged.prefix_sum(np.array([1.0, 2.0, 3.0]))
    assert (p[3] - p[1]) == 5.0


def test_group_reduce_with_empty_groups_and_fill():
    ids = np.array([2, 0, 2])
    rows = np.array([[1.0, 5.0], [2.0, np.nan], [3.0, 1.0]])
    got = ragged.group_reduce(np.fmax, ids, 4, rows, np.nan)
    np.testing.assert_array_equal(got, [[2.0, np.nan], [np.nan, np.nan], [3.0, 5.0], [np.nan, np.nan]])
    got = ragged.group_reduce(np.add, np.empty(0, np.int64), 2, np.empty((0, 3)))
    np.testing.assert_array_equal(got, np.zeros((2, 3)))


@settings(max_examples=100, deadline=None)
@given(_series, st.integers(-60, 60), st.sampled_from(["left", "right"]))
def test_bisect_runs_matches_searchsorted_per_run(series, target, side):
    offsets, ts = _ragged(series)
    starts, lens = offsets[:-1], np.diff(offsets)
    got = ragged.bisect_runs(ts, starts, lens, target, side)
    for i in range(len(series)):
        a, b = offsets[i], offsets[i + 1]
        assert got[i] == np.searchsorted(ts[a:b], target, side=side) + a


def test_ragged_arange_concatenates_ranges():
    got = ragged.ragged_arange(np.array([5, 0, 9]), np.array([2, 0, 3]))
    assert got.tolist() == [5, 6, 9, 10, 11]


@settings(max_examples=100, deadline=None)
@given(st.lists(_series, min_size=1, max_size=6), st.integers(-60, 60), st.integers(0, 40))
def test_clip_runs_keeps_exactly_the_range(groups, mint, width):
    """Few runs take the loop, many the lockstep search; both give the runs' samples in range."""
    series = [s for g in groups for s in g] * 4  # enough runs for both paths
    offsets, ts = _ragged(series)
    lo, hi = ragged.clip_runs(ts, offsets[:-1], np.diff(offsets), mint, mint + width)
    for i in range(len(series)):
        run = ts[offsets[i] : offsets[i + 1]]
        assert ts[lo[i] : hi[i]].tolist() == [t for t in run.tolist() if mint <= t <= mint + width]


@pytest.mark.parametrize("n_runs", [1, 16, 17, 200], ids=["one-run", "loop", "lockstep", "many"])
def test_clip_and_bisect_runs_at_the_ends_of_int64_time(n_runs):
    # A select over all time passes MIN_TIME and MAX_TIME, and "right of MAX_TIME" does
    # not fit int64: it must neither raise nor wrap around.
    series = [list(range(-5 * k, 3 * k + 1, 2)) for k in range(n_runs)]
    offsets, ts = _ragged(series)
    starts, lens = offsets[:-1], np.diff(offsets)
    lo, hi = ragged.clip_runs(ts, starts, lens, MIN_TIME, MAX_TIME)
    assert lo.tolist() == starts.tolist() and hi.tolist() == (starts + lens).tolist()
    lo, hi = ragged.clip_runs(ts, starts, lens, 0, MAX_TIME)
    for i in range(n_runs):
        assert ts[lo[i] : hi[i]].tolist() == [t for t in series[i] if t >= 0]
    assert ragged.bisect_runs(ts, starts, lens, MAX_TIME, "right").tolist() == (starts + lens).tolist()
    assert ragged.bisect_runs(ts, starts, lens, MIN_TIME, "left").tolist() == starts.tolist()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 200)), min_size=1, max_size=8),
    st.integers(0, 15000),
    st.integers(-3000, 40000),
    st.sampled_from(["left", "right"]),
)
def test_bisect_runs_on_scrape_like_runs(shapes, jitter, target, side):
    """Evenly spaced runs with jitter, as scrapes give, and uneven ones agree with
    searchsorted, for targets between samples and on a sample's own time."""
    rng = np.random.default_rng(len(shapes) * 7919 + jitter)
    series = []
    for n, gap in shapes:
        base = np.arange(n, dtype=np.int64) * gap * 10
        wobble = rng.integers(0, max(1, jitter // 100), n) if jitter % 2 else rng.integers(0, gap * 9 + 1, n)
        series.append(sorted(set((base + wobble).tolist())))
    offsets, ts = _ragged(series)
    targets = [target] + ([int(ts[len(ts) // 2])] if len(ts) else [])
    for t in targets:
        got = ragged.bisect_runs(ts, offsets[:-1], np.diff(offsets), t, side)
        for i in range(len(series)):
            a, b = offsets[i], offsets[i + 1]
            assert got[i] == np.searchsorted(ts[a:b], t, side=side) + a


@settings(max_examples=100, deadline=None)
@given(_series, st.integers(-60, 60), st.integers(1, 12), st.integers(1, 8), st.integers(0, 5), st.booleans())
def test_window_bounds_match_searching_for_whole_and_odd_ranges(series, t0, step, T, k, odd):
    """A range of k whole steps takes the one-count path, an odd one two counts; both
    must equal a per-series search of (t - range, t]."""
    offsets, ts = _ragged(series)
    t = t0 + step * np.arange(T, dtype=np.int64)
    range_ms = k * step + (1 if odd else 0)
    lo, hi = ragged.window_bounds(offsets, ts, t, range_ms)
    for i in range(len(series)):
        a, b = offsets[i], offsets[i + 1]
        np.testing.assert_array_equal(lo[i], np.searchsorted(ts[a:b], t - range_ms, side="right") + a)
        np.testing.assert_array_equal(hi[i], np.searchsorted(ts[a:b], t, side="right") + a)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), max_size=30))
def test_occurrence_counts_earlier_equal_keys(keys):
    got = ragged.occurrence(np.asarray(keys, np.int64)).tolist()
    assert got == [keys[:i].count(k) for i, k in enumerate(keys)]


def _fold(ufunc: np.ufunc, rows: np.ndarray, T: int) -> np.ndarray:
    """``rows`` (in their order) reduced along the series axis as one ``reduceat`` segment
    (``ufunc.reduce`` may sum pairwise instead), -1 when there are none."""
    return ufunc.reduceat(rows, [0], axis=0)[0] if len(rows) else np.full(T, -1.0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 3), max_size=12),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from(["add", "fmax", "fmin"]),
    st.integers(0, 2**32 - 1),
)
def test_group_reduce_matches_a_loop_over_groups(ids_list, T, grouped, op, seed):
    """Every path of group_reduce (one group, rows already grouped, rows to sort, groups
    without rows) gives, bit for bit, each group's rows reduced in their order."""
    ufunc = getattr(np, op)
    ids = np.asarray(sorted(ids_list) if grouped else ids_list, np.int64)
    G = int(ids.max()) + 2 if len(ids) else 1  # the last group has no rows
    rows = np.random.default_rng(seed).normal(0, 1e6, (len(ids), T))
    rows[rows > 1e6] = np.nan
    got = ragged.group_reduce(ufunc, ids, G, rows, -1.0)
    want = np.stack([_fold(ufunc, rows[ids == g], T) for g in range(G)])
    np.testing.assert_array_equal(got, want)
    one = ragged.group_reduce(ufunc, np.zeros(len(ids), np.int64), 1, rows, -1.0)
    np.testing.assert_array_equal(one, _fold(ufunc, rows, T)[None, :])
