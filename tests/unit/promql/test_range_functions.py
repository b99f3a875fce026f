"""Range kernels against their slow twins in ``rangeref`` on small random data."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rangeref import (
    build_windows,
    ref_avg,
    ref_changes,
    ref_extrapolated_rate,
    ref_holt,
    ref_instant,
    ref_mad,
    ref_min,
    ref_quantile,
    ref_regression,
    ref_resets,
    ref_sum,
    ref_ts_of,
    ref_variance,
)

from signalfire.promql import counter_functions as cf
from signalfire.promql import range_functions as rf
from signalfire.promql import trend_functions as tf
from signalfire.promql.values import RangeWindows

VALUES = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, -3.0, 1e100, -1e100, 1e-6, math.nan, math.inf, -math.inf]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 1000).map(float),
)
COUNTER_VALUES = st.one_of(
    st.integers(0, 50).map(float), st.floats(0, 1e3, allow_nan=False), st.sampled_from([math.inf, math.nan])
)


@st.composite
def series_sets(draw: st.DrawFn, values: st.SearchStrategy[float] = VALUES) -> tuple:
    S = draw(st.integers(1, 3))
    series = []
    for _ in range(S):
        n = draw(st.integers(0, 10))
        gaps = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
        start = draw(st.integers(0, 30)) * 1000
        ts = np.cumsum([start, *gaps])[:n] * 1  # ms-ish seconds
        vals = draw(st.lists(values, min_size=n, max_size=n))
        series.append([(int(t) * 1000 // 1000 * 1000, v) for t, v in zip(ts * 1000 // 1000, vals)])
    T = draw(st.integers(1, 5))
    step = draw(st.integers(5, 60)) * 1000
    first = draw(st.integers(0, 200)) * 1000
    eval_ts = [first + j * step for j in range(T)]
    range_ms = draw(st.integers(1, 120)) * 1000
    return series, eval_ts, range_ms


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12


def window_samples(w: RangeWindows, i: int, j: int) -> list[tuple[int, float]]:
    lo, hi = int(w.lo[i, j]), int(w.hi[i, j])
    return list(zip(w.ts[lo:hi].tolist(), w.values[lo:hi].tolist()))


def check(
    w: RangeWindows, got: tuple[np.ndarray, np.ndarray], ref: Callable[[list, int, int], float | None]
) -> None:
    vals, present = got
    for i in range(w.num_series):
        for j in range(len(w.eval_ts)):
            samples = window_samples(w, i, j)
            want = ref(samples, i, j) if samples else None
            assert bool(present[i, j]) == (want is not None), (i, j, samples, want)
            if want is not None:
                assert close(float(vals[i, j]), want), (i, j, samples, float(vals[i, j]), want)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SIMPLE: dict[str, tuple[Callable, Callable]] = {
    "sum_over_time": (rf.sum_over_time, lambda s, i, j: ref_sum(s)),
    "avg_over_time": (rf.avg_over_time, lambda s, i, j: ref_avg(s)),
    "count_over_time": (rf.count_over_time, lambda s, i, j: float(len(s))),
    "min_over_time": (rf.min_over_time, lambda s, i, j: ref_min(s, False)),
    "max_over_time": (rf.max_over_time, lambda s, i, j: ref_min(s, True)),
    "ts_of_min_over_time": (rf.ts_of_min_over_time, lambda s, i, j: ref_ts_of(s, False)),
    "ts_of_max_over_time": (rf.ts_of_max_over_time, lambda s, i, j: ref_ts_of(s, True)),
    "first_over_time": (rf.first_over_time, lambda s, i, j: s[0][1]),
    "last_over_time": (rf.last_over_time, lambda s, i, j: s[-1][1]),
    "ts_of_first_over_time": (rf.ts_of_first_over_time, lambda s, i, j: s[0][0] / 1000),
    "ts_of_last_over_time": (rf.ts_of_last_over_time, lambda s, i, j: s[-1][0] / 1000),
    "present_over_time": (rf.present_over_time, lambda s, i, j: 1.0),
    "stdvar_over_time": (rf.stdvar_over_time, lambda s, i, j: ref_variance(s)),
    "stddev_over_time": (rf.stddev_over_time, lambda s, i, j: math.sqrt(ref_variance(s))),
    "mad_over_time": (rf.mad_over_time, lambda s, i, j: ref_mad(s)),
    "changes": (cf.changes, lambda s, i, j: ref_changes(s)),
    "resets": (cf.resets, lambda s, i, j: ref_resets(s)),
    "irate": (lambda w: cf.instant_value(w, True), lambda s, i, j: ref_instant(s, True)),
    "idelta": (lambda w: cf.instant_value(w, False), lambda s, i, j: ref_instant(s, False)),
    "deriv": (tf.deriv, lambda s, i, j: ref_regression(s, s[0][0])[0] if len(s) > 1 else None),
}


@pytest.mark.parametrize("name", sorted(SIMPLE))
@SETTINGS
@given(data=series_sets())
def test_simple_kernels_match_reference(name: str, data: tuple) -> None:
    kernel, ref = SIMPLE[name]
    w = build_windows(*data)
    with np.errstate(all="ignore"):
        check(w, kernel(w), ref)


@pytest.mark.parametrize("is_counter,is_rate", [(True, True), (True, False), (False, False)])
@SETTINGS
@given(data=series_sets(COUNTER_VALUES))
def test_extrapolated_rate_matches_reference(is_counter: bool, is_rate: bool, data: tuple) -> None:
    w = build_windows(*data)
    ref = lambda s, i, j: ref_extrapolated_rate(s, int(w.eval_ts[j]), w.range_ms, is_counter, is_rate)  # noqa: E731
    with np.errstate(all="ignore"):
        check(w, cf.extrapolated_rate(w, is_counter, is_rate), ref)


@SETTINGS
@given(data=series_sets(), q=st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0, -1.0, 2.0, math.nan]))
def test_quantile_over_time_matches_reference(data: tuple, q: float) -> None:
    w = build_windows(*data)
    qs = np.full(len(w.eval_ts), q)
    with np.errstate(all="ignore"):
        check(w, rf.quantile_over_time(w, qs), lambda s, i, j: ref_quantile(q, [v for _, v in s]))


@SETTINGS
@given(data=series_sets(), dur=st.sampled_from([0.0, 60.0, 3600.0]))
def test_predict_linear_matches_reference(data: tuple, dur: float) -> None:
    w = build_windows(*data)
    step_ts = w.eval_ts + 1000

    def ref(s: list, i: int, j: int) -> float | None:
        if len(s) < 2:
            return None
        slope, icpt = ref_regression(s, int(step_ts[j]))
        return slope * dur + icpt

    with np.errstate(all="ignore"):
        check(w, tf.predict_linear(w, step_ts, np.full(len(w.eval_ts), dur)), ref)


@SETTINGS
@given(data=series_sets(st.floats(-1e3, 1e3, allow_nan=False)))
def test_double_exponential_smoothing_matches_reference(data: tuple) -> None:
    w = build_windows(*data)
    T = len(w.eval_ts)
    got = tf.double_exponential_smoothing(w, np.full(T, 0.3), np.full(T, 0.6))
    check(w, got, lambda s, i, j: ref_holt(s, 0.3, 0.6))


# ------------------------------------------------------------ conformance-derived cases


def _series(values: list[float | None], interval_s: int) -> list[tuple[int, float]]:
    return [(i * interval_s * 1000, float(v)) for i, v in enumerate(values) if v is not None]


def test_increase_extrapolation_and_zero_cutoff() -> None:
    s = [
        _series([10.0 * i for i in range(11)], 300),
        _series([10.0 * i + 10 for i in range(11)], 300),
        _series([10.0 * i + 1 for i in range(11)], 300),
    ]
    vals, _ = cf.extrapolated_rate(build_windows(s, [3_000_000], 6_000_000), True, False)
    assert vals[:, 0].tolist() == pytest.approx([100, 105, 101])


@pytest.mark.parametrize(
    "modifier,want",
    [
        ("plain", [0, 1.833333333, 2.833333333, 4, 4, 8, 8, 8, 4]),
        ("anchored", [0, 1, 2, 3, 4, 7, 7, 7, 7]),
        ("smoothed", [0.333333333, 1.333333333, 2.333333333, 3.333333333, 5, 7, 7, 7, 6]),
    ],
)
def test_extended_range_selectors(modifier: str, want: list[float]) -> None:
    s = [_series([1, 2, 3, 4, 5, 9, 10, 11, 12, 13], 15)]
    ev = [5000 + 15000 * k for k in range(9)]
    w = build_windows(s, ev, 60000, anchored=modifier == "anchored", smoothed=modifier == "smoothed")
    vals, present = cf.extrapolated_rate(w, True, False)
    got = [float(v) if p else None for v, p in zip(vals[0], present[0])]
    if modifier == "plain":
        assert got[0] is None
        got, want = got[1:], want[1:]
    assert got == pytest.approx(want, rel=1e-8)


def test_sum_over_time_keeps_small_values_next_to_huge_ones() -> None:
    w = build_windows([_series([1, 1e100, 1, -1e100], 10)], [60000], 120000)
    assert rf.sum_over_time(w)[0][0, 0] == 2.0
    assert rf.avg_over_time(w)[0][0, 0] == 0.5


def test_avg_over_time_overflow_switches_to_incremental_mean() -> None:
    w = build_windows([_series([9.988465674311579e307] * 2, 10)], [55000], 60000)
    assert rf.avg_over_time(w)[0][0, 0] == pytest.approx(9.988465674311579e307)
    assert rf.sum_over_time(w)[0][0, 0] == math.inf


def test_avg_over_time_is_exact_for_constants() -> None:
    w = build_windows([_series([52.0] * 101, 10)], [600000], 130000)
    assert rf.avg_over_time(w)[0][0, 0] == 52.0


def test_stdvar_of_identical_values_is_exactly_zero() -> None:
    w = build_windows([_series([1.5990505637277868] * 3, 10)], [55000], 60000)
    assert rf.stdvar_over_time(w)[0][0, 0] == 0.0


def test_predict_linear_matches_deriv_identity() -> None:
    s = [_series([80.0 * i for i in range(11)], 300)]
    w = build_windows(s, [3_000_000], 3_000_000)
    ts = np.array([3_000_000])
    pl = tf.predict_linear(w, ts, np.array([3600.0]))[0][0, 0]
    d = tf.deriv(w)[0][0, 0]
    assert pl - (800 + d * 3600) == 0.0


def test_irate_nan_and_reset() -> None:
    s = [_series([1, math.nan, math.nan, 5, 11], 300)]
    w = build_windows(s, [0, 300000, 600000, 900000, 1200000], 901000)
    vals, present = cf.instant_value(w, True)
    assert present[0].tolist() == [False, True, True, True, True]
    assert np.isnan(vals[0, 1:4]).all()
    assert vals[0, 4] == pytest.approx(0.02)


def test_changes_counts_nan_to_value_transitions() -> None:
    w = build_windows([_series([0, math.nan, 0], 300)], [900000], 1200000)
    assert cf.changes(w)[0][0, 0] == 2.0


# ------------------------------------------------------------ start timestamps


def _with_st(w: RangeWindows, st: list[int]) -> RangeWindows:
    w.st = np.asarray(st, np.int64)
    return w


@pytest.mark.parametrize(
    "values,st_offsets_s,want",
    [
        ([1, 2, 3, 4, 5], None, 5.0),  # no ST: plain extrapolation
        ([1, 2, 3, 4, 5], [-60, -120, -180, -240, -300], 5.0),  # ST on the range start: outside
        ([1, 2, 3, 4, 5], [-30, -90, -150, -210, -270], 5.0),  # ST inside: zero point at ST
        ([1, 2, 3, 4, 5], [0, -60, -120, -180, -240], 5.0),  # ST == T: unusable
        ([1, 2, 3, 4, 5], [0.001, -59.999, -119.999, -179.999, -239.999], 6.0),  # ST after T; later a reset
        ([1, 2, 3, 4], [-30, -90, -150, -210], 36 / 7),  # zero point, extrapolate right
        ([None, 2, 3], [None, -90, -150], 3.6),
        ([None, None, 3], [None, None, -150], 3.0),  # a single sample is enough with a zero point
    ],
)
def test_increase_with_start_timestamps(values: list, st_offsets_s: list | None, want: float) -> None:
    samples = [(120_000 + 60_000 * i, float(v)) for i, v in enumerate(values) if v is not None]
    w = build_windows([samples], [360_000], 300_000)
    if st_offsets_s is not None:
        offs = [o for o, v in zip(st_offsets_s, values) if v is not None]
        _with_st(w, [t + round(o * 1000) for (t, _), o in zip(samples, offs)])
    vals, present = cf.extrapolated_rate(w, True, False)
    assert present[0, 0]
    assert vals[0, 0] == pytest.approx(want)


def test_start_timestamp_resets_for_delta_series() -> None:
    # Each sample's ST is the previous sample's time (OTel deltas): every pair is a reset.
    samples = [(60_000 * i, 60.0) for i in range(2, 17)]
    w = _with_st(build_windows([samples], [600_000], 300_000), [t - 60_000 for t, _ in samples])
    assert cf.extrapolated_rate(w, True, False)[0][0, 0] == pytest.approx(300)
    assert cf.resets(w)[0][0, 0] == 4
    assert cf.instant_value(w, True)[0][0, 0] == pytest.approx(1)
    # ST == T describes an empty interval: no reset, no increase.
    w = _with_st(build_windows([samples], [600_000], 300_000), [t for t, _ in samples])
    assert cf.extrapolated_rate(w, True, False)[0][0, 0] == 0
    assert cf.instant_value(w, True)[0][0, 0] == 0


@pytest.mark.parametrize(
    "prev_st,cur_st,reset",
    [(0, 120, False), (120, 120, False), (60, 120, True), (180, 120, False), (0, 121, True), (0, 119, False)],
)
def test_st_reset_rules(prev_st: int, cur_st: int, reset: bool) -> None:
    got = cf.st_reset(np.array([prev_st]), np.array([120]), np.array([cur_st]), np.array([180]))
    assert bool(got[0]) is reset


# ------------------------------------------------------------ prefix-sum fast paths


@SETTINGS
@given(data=series_sets(st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.integers(0, 100).map(float))))
def test_fast_paths_agree_where_trusted(data: tuple) -> None:
    from signalfire.promql.window_stats import fast_regression, fast_variance

    w = build_windows(*data)
    lo, hi = w.lo.ravel(), w.hi.ravel()
    keep = hi - lo >= 2
    lo, hi = lo[keep], hi[keep]
    var, ok = fast_variance(w.values, w.offsets, lo, hi)
    icpt = w.ts[lo] + 5000
    slope, intercept, ok_r = fast_regression(w.values, w.ts, w.offsets, lo, hi, icpt)
    for k in range(len(lo)):
        s = list(zip(w.ts[lo[k] : hi[k]].tolist(), w.values[lo[k] : hi[k]].tolist()))
        if ok[k]:
            assert close(float(var[k]), ref_variance(s)) or abs(var[k] - ref_variance(s)) < 1e-9
        want_s, want_i = ref_regression(s, int(icpt[k]))
        if ok_r[k]:
            assert close(float(slope[k]), want_s) or abs(slope[k] - want_s) < 1e-12
            assert close(float(intercept[k]), want_i) or abs(intercept[k] - want_i) < 1e-9


def test_fast_paths_are_taken_on_regular_data() -> None:
    from signalfire.promql.window_stats import fast_regression, fast_variance

    series = [[(i * 15_000, 3.0 * i + float(i % 7) * 1.5 + 0.1 * j) for i in range(200)] for j in range(3)]
    w = build_windows(series, [600_000 + 60_000 * k for k in range(10)], 300_000)
    lo, hi = w.lo.ravel(), w.hi.ravel()
    assert fast_variance(w.values, w.offsets, lo, hi)[1].all()
    _, _, ok_r = fast_regression(w.values, w.ts, w.offsets, lo, hi, np.repeat(w.eval_ts[None], 3, 0).ravel())
    assert ok_r.all()


@pytest.mark.parametrize("smoothed", [False, True])
@pytest.mark.parametrize("is_counter,is_rate", [(True, True), (True, False), (False, False)])
@SETTINGS
@given(data=series_sets(COUNTER_VALUES))
def test_extended_rate_matches_reference(
    smoothed: bool, is_counter: bool, is_rate: bool, data: tuple
) -> None:
    from rangeref import ref_extended_rate

    series, eval_ts, range_ms = data
    w = build_windows(series, eval_ts, range_ms, anchored=not smoothed, smoothed=smoothed)

    def ref(s: list, i: int, j: int) -> float | None:
        return ref_extended_rate(s, int(w.eval_ts[j]), w.range_ms, smoothed, is_counter, is_rate)

    check(w, cf.extrapolated_rate(w, is_counter, is_rate), ref)


def test_rate_after_a_reset_from_inf_is_not_nan() -> None:
    # An Inf correction in one window must not poison the prefix sums of later windows.
    w = build_windows(
        [[(165_000, math.nan), (180_000, math.inf), (195_000, 0.0), (210_000, 0.0)]],
        [195_000, 210_000],
        30_000,
    )
    vals, present = cf.extrapolated_rate(w, True, True)
    assert present[0].tolist() == [True, True]
    assert vals[0, 1] == 0.0
    assert math.isnan(vals[0, 0])  # (0 - Inf) + Inf, as Prometheus
