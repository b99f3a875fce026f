"""Blocked prefix sums for regression: trusted cells match exact arithmetic, and the fast
path is really taken on scrape-shaped data (large values, a day of timestamps)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire.promql.window_stats import blocked_cross_sums

VALUES = st.one_of(st.floats(-1e12, 1e12, allow_nan=False), st.integers(-5, 5).map(float))


def _exact(ts: np.ndarray, values: np.ndarray, lo: int, hi: int) -> tuple[Fraction, Fraction]:
    """Centred Σ(x-x̄)(y-ȳ) and Σ(x-x̄)² with x = ts/1000, in rationals."""
    xs = [Fraction(int(t), 1000) for t in ts[lo:hi]]
    ys = [Fraction(float(v)) for v in values[lo:hi]]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)), sum((x - mx) ** 2 for x in xs)


def _windows(offsets: np.ndarray, ts: np.ndarray, range_ms: int, step_ms: int) -> tuple[np.ndarray, ...]:
    """Left-open windows ``(t - range, t]`` at every step, per series, with >= 2 samples."""
    los, his = [], []
    for s in range(len(offsets) - 1):
        a, b = int(offsets[s]), int(offsets[s + 1])
        for t in range(int(ts[a]) + range_ms, int(ts[b - 1]) + step_ms, step_ms):
            lo = a + int(np.searchsorted(ts[a:b], t - range_ms, side="right"))
            hi = a + int(np.searchsorted(ts[a:b], t, side="right"))
            if hi - lo >= 2:
                los.append(lo)
                his.append(hi)
    return np.array(los, np.int64), np.array(his, np.int64)


def _check(ts, values, offsets, lo, hi, sample: int = 60) -> float:
    cov, var, ok = blocked_cross_sums(values, ts, offsets, lo, hi)
    picks = np.flatnonzero(ok)
    for k in picks[:: max(1, len(picks) // sample)]:
        want_cov, want_var = _exact(ts, values, int(lo[k]), int(hi[k]))
        assert abs(Fraction(float(cov[k])) - want_cov) <= abs(want_cov) * Fraction(1, 10**9)
        assert abs(Fraction(float(var[k])) - want_var) <= abs(want_var) * Fraction(1, 10**9)
    return float(ok.mean()) if len(ok) else 1.0


def test_disk_bytes_over_a_day_take_the_fast_path():
    # Free bytes on a disk: 1e11 give or take a random walk of 2e5 per 15 s scrape, over a
    # day, jittered timestamps; 1 h windows every minute. Whole-series prefix sums of x·y
    # would be ~1e20 against covariances of ~1e11.
    rng = np.random.default_rng(7)
    n, S = 5760, 4
    grid = 1_700_000_000_123 + np.arange(n) * 15_000
    ts = np.concatenate([grid + rng.integers(-40, 40, n) for _ in range(S)])
    walk = np.cumsum(rng.normal(-0.3, 2e5, (S, n)), axis=1) + rng.uniform(5e9, 5e11, (S, 1))
    values = (np.rint(walk / 4096) * 4096).ravel()
    offsets = np.arange(S + 1, dtype=np.int64) * n
    lo, hi = _windows(offsets, ts, 3_600_000, 60_000)
    trusted = _check(ts, values, offsets, lo, hi)
    assert trusted > 0.9  # 0.94 when written; the rest take the column walk


def test_windows_across_block_edges_and_ragged_series():
    rng = np.random.default_rng(3)
    lens = [1, 2, 37, 120, 301]
    ts = np.concatenate([np.cumsum(rng.integers(5_000, 25_000, k)) + 10**12 for k in lens])
    values = rng.normal(50.0, 10.0, len(ts)) + np.arange(len(ts)) * 0.5
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    lo, hi = _windows(offsets, ts, 600_000, 37_000)
    assert len(lo) > 100
    assert _check(ts, values, offsets, lo, hi, sample=10**6) > 0.5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(VALUES, min_size=2, max_size=40),
        min_size=1,
        max_size=4,
    ),
    st.integers(15_000, 400_000),
    st.integers(1_000, 120_000),
    st.integers(0, 2**40),
    st.sampled_from([1, 1, 10**6, 10**9]),
)
def test_trusted_cells_match_exact_arithmetic(series, range_ms, step_ms, t0, scale):
    # scale stretches time (windows and steps too) until x·x no longer fits int64 sums,
    # so the float path of the timestamp sums is checked as well.
    range_ms, step_ms = range_ms * scale, step_ms * scale
    gaps = np.int64(15_000 * scale)
    idx = [np.arange(len(s), dtype=np.int64) for s in series]
    ts = np.concatenate([t0 + i * gaps + i % 3 for i in idx])
    values = np.concatenate([np.array(s, np.float64) for s in series])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in series])]).astype(np.int64)
    lo, hi = _windows(offsets, ts, range_ms, step_ms)
    if len(lo):
        _check(ts, values, offsets, lo, hi, sample=10**6)


def test_inf_elsewhere_in_a_block_never_yields_a_wrong_trusted_cell():
    ts = 10**12 + np.arange(200, dtype=np.int64) * 15_000
    values = np.linspace(0.0, 99.5, 200)
    values[[50, 120]] = [np.inf, np.nan]
    offsets = np.array([0, 200], np.int64)
    lo = np.arange(0, 180, 7, dtype=np.int64)
    hi = lo + 20
    clean = ~((lo <= 50) & (hi > 50) | (lo <= 120) & (hi > 120))
    lo, hi = lo[clean], hi[clean]
    ok = blocked_cross_sums(values, ts, offsets, lo, hi)[2]
    assert ok[hi <= 50].all()  # before the Inf, the block's running sums are still finite
    _check(ts, values, offsets, lo, hi, sample=10**6)
