"""Window sums over sparse corrections: in Prometheus's order, exact where it is exact."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire.promql import windows
from signalfire.promql.windows import SparseColumn, add_sparse_in_order, sparse_window_sum


def _in_order(acc: float, values: list[float], lo: int, hi: int) -> float:
    for v in values[lo:hi]:
        if v != 0:
            acc += v
    return acc


def test_a_lone_correction_cancels_exactly_whatever_came_before():
    # Prefix sums would give (1.9 + 537) - 1.9 - 537 = 7.6e-15 here.
    values = np.array([0.0, 1.9, 0.0, 537.0, 0.0])
    col = SparseColumn.from_dense(values)
    got = add_sparse_in_order(np.array([-537.0]), col, np.array([3]), np.array([5]))
    assert got[0] == 0.0


def test_inf_and_nan_corrections_stay_in_their_window():
    values = np.array([math.inf, 0.0, 2.0, math.nan, 0.0, 5.0])
    lo, hi = np.array([0, 1, 2, 4]), np.array([1, 3, 4, 6])
    got = add_sparse_in_order(np.zeros(4), SparseColumn.from_dense(values), lo, hi)
    assert got[0] == math.inf and got[1] == 2.0 and math.isnan(got[2]) and got[3] == 5.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.1, 1.9, 537.0, 1e300, -3.0]), min_size=1, max_size=60),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=20),
    st.booleans(),
)
def test_matches_adding_one_by_one(values, bounds, few_rounds):
    vals = np.array(values)
    lo = np.array([min(a, b, len(values)) for a, b in bounds])
    hi = np.array([min(max(a, b), len(values)) for a, b in bounds])
    acc = np.linspace(-5, 5, len(lo))
    old = windows.IN_ORDER_ROUNDS
    windows.IN_ORDER_ROUNDS = 2 if few_rounds else old  # exercise the prefix-sum fallback
    try:
        got = add_sparse_in_order(acc, SparseColumn.from_dense(vals), lo, hi)
    finally:
        windows.IN_ORDER_ROUNDS = old
    for i in range(len(lo)):
        want = _in_order(float(acc[i]), values, int(lo[i]), int(hi[i]))
        n = sum(1 for v in values[lo[i] : hi[i]] if v != 0)
        if n <= (2 if few_rounds else old):
            assert got[i] == want or (math.isnan(got[i]) and math.isnan(want))
        else:
            col = SparseColumn.from_dense(vals)
            fallback = acc[i] + sparse_window_sum(col, lo[i : i + 1], hi[i : i + 1])[0]
            assert got[i] == fallback or math.isclose(got[i], want, rel_tol=1e-9)


def test_large_slowly_moving_values_are_trusted_by_centring():
    """1e11 give or take 1e6 over 6000 samples: plain running sums grow to 6e14 and fail
    the 2^-40 bound late in the series; centring on the first value keeps them trusted,
    and every trusted sum is within 2^-40 of the exact one."""
    rng = np.random.default_rng(7)
    values = 1e11 + np.cumsum(rng.normal(0, 1e4, 6000))
    offsets = np.array([0, 6000])
    lo = np.arange(0, 5760, 40)
    hi = lo + 240
    sums, ok = windows.fast_sums(values, offsets, lo, hi)
    assert ok.all()
    for s, a, b in zip(sums, lo, hi):
        exact = math.fsum(values[a:b])
        assert abs(s - exact) <= abs(exact) * 2.0**-40


def test_exact_time_sums_are_integer_exact():
    ts = np.array([1000, 16000, 31000, 5, 15005], np.int64)
    offsets = np.array([0, 3, 5])
    t0 = np.array([1000, 1000, 1000, 5, 5], np.int64)
    sums, ok = windows.exact_time_sums(ts, t0, offsets, np.array([0, 1, 3]), np.array([3, 3, 5]))
    assert ok.all() and sums.tolist() == [45.0, 45.0, 15.0]
