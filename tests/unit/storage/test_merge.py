"""merge_series_sets: union by labels, sorted, equal timestamps deduplicated (first wins)."""

from __future__ import annotations

import numpy as np
import pytest

from signalfire.labels import Labels
from signalfire.storage import SeriesSet, series_set_from_lists
from signalfire.storage.merge import merge_run_sets, merge_series_sets
from signalfire.storage.runs import RunSet

A = Labels.from_strings("a", "1")
B = Labels.from_strings("a", "2")


def _ss(d):
    labels = list(d)
    return series_set_from_lists(
        labels, [np.array(d[ls][0]) for ls in labels], [np.array(d[ls][1], float) for ls in labels]
    )


def test_merge_dedupes_and_sorts():
    x = _ss({B: ([1, 3], [10, 30]), A: ([5], [50])})
    y = _ss({A: ([1, 5, 6], [1, 99, 6])})
    m = merge_series_sets([x, y])
    m.validate()
    assert list(m.labels) == [A, B]
    assert m.offsets.tolist() == [0, 3, 5]
    assert m.ts.tolist() == [1, 5, 6, 1, 3]
    assert m.values.tolist() == [1, 50, 6, 10, 30]  # at t=5 the first input wins


def test_merge_edge_cases():
    empty = merge_series_sets([])
    assert len(empty) == 0 and empty.num_samples == 0
    x = _ss({A: ([1], [1])})
    assert merge_series_sets([x]) is x
    st = merge_series_sets([x, _ss({B: ([2], [2])})])
    assert st.st is None and st.num_samples == 2


def _reference_merge(sets):
    """Slow model: per label set, a dict from ts to (value, st); the first input wins."""
    out: dict = {}
    for s in sets:
        for i, ls in enumerate(s.labels):
            pts = out.setdefault(ls, {})
            a, b = int(s.offsets[i]), int(s.offsets[i + 1])
            for j in range(a, b):
                st = int(s.st[j]) if s.st is not None else 0
                pts.setdefault(int(s.ts[j]), (float(s.values[j]), st))
    return {ls: sorted(pts.items()) for ls, pts in out.items()}


def _random_set(rng, labels, run, with_st, base=0):
    chosen = [ls for ls in labels if rng.random() < 0.7]
    ts, vals = [], []
    for _ in chosen:
        start = base + int(rng.integers(0, 3 * run))
        n = int(rng.integers(0, run + 1))
        ts.append(
            np.sort(rng.choice(np.arange(start, start + 4 * run + 1), n, replace=False)).astype(np.int64)
        )
        vals.append(rng.random(n))
    s = series_set_from_lists(chosen, ts, vals)
    if with_st:
        s = SeriesSet(s.labels, s.offsets, s.ts, s.values, st=rng.integers(0, 5, s.num_samples))
    return s


@pytest.mark.parametrize("run", [1, 3, 200], ids=["tiny-runs", "short-runs", "long-runs"])
@pytest.mark.parametrize("seed", range(8))
def test_merge_matches_reference(run, seed):
    # Odd seeds: inputs in disjoint time ranges, newest first half the time.
    rng = np.random.default_rng(seed)
    labels = [Labels.from_strings("a", str(i)) for i in range(12)]
    sets = [
        _random_set(rng, labels, run, with_st=bool(k % 2 and seed % 4 == 1), base=k * 8 * run * (seed % 2))
        for k in range(int(rng.integers(2, 5)))
    ]
    if seed % 4 == 3:
        sets.reverse()
    m = merge_series_sets(sets)
    m.validate()
    want = _reference_merge(sets)
    assert list(m.labels) == sorted(want)
    has_st = any(s.st is not None for s in sets)
    assert (m.st is not None) == has_st
    for i, ls in enumerate(m.labels):
        a, b = int(m.offsets[i]), int(m.offsets[i + 1])
        st = m.st[a:b].tolist() if m.st is not None else [0] * (b - a)
        got = list(zip(m.ts[a:b].tolist(), zip(m.values[a:b].tolist(), st)))
        assert got == want[ls]


def test_merge_disjoint_sources_concatenate_in_time_order():
    # The newer input listed first: runs are ordered by time, not by input.
    old = _ss({A: ([1, 2], [1, 2]), B: ([1], [1])})
    new = _ss({A: ([3, 4], [3, 4])})
    m = merge_series_sets([new, old])
    assert m.ts.tolist() == [1, 2, 3, 4, 1]
    assert m.offsets.tolist() == [0, 4, 5]


def test_merge_keeps_labels_only_series_and_warnings():
    x = SeriesSet([A], np.zeros(2, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    y = _ss({B: ([1], [1])})
    y.warnings.warn("w")
    m = merge_series_sets([x, y])
    assert list(m.labels) == [A, B] and m.offsets.tolist() == [0, 0, 1]
    z = merge_series_sets([series_set_from_lists([], [], []), y])
    assert z.warnings.warning_list() == ["w"]


def _block_like_runs(rng, labels, n_windows, chunk_samples):
    """A RunSet laid out as a block stores its samples: every series on one timestamp
    grid, one timestamp column per window shared by all series, and the (series,
    window) pieces packed into value columns of at most ``chunk_samples`` samples, so
    there are more value columns than timestamp columns."""
    per_window = int(rng.integers(1, 6))
    grid = np.arange(n_windows * per_window, dtype=np.int64) * 10
    ts_cols = [grid[w * per_window : (w + 1) * per_window] for w in range(n_windows)]
    S = len(labels)
    # Pieces in (window, series) order, as a block writes them; runs in (series, window).
    v_cols, cur, where = [], [], {}
    for w in range(n_windows):
        for i in range(S):
            if sum(map(len, cur)) + per_window > chunk_samples and cur:
                v_cols.append(np.concatenate(cur))
                cur = []
            where[i, w] = (len(v_cols), sum(map(len, cur)))
            cur.append(rng.random(per_window))
    v_cols.append(np.concatenate(cur))
    runs = [(i, w) for i in range(S) for w in range(n_windows)]
    return RunSet(
        labels,
        np.arange(S + 1, dtype=np.int64) * n_windows,
        np.full(len(runs), per_window, np.int64),
        ts_cols,
        np.array([w for _, w in runs], np.int64),
        np.zeros(len(runs), np.int64),
        v_cols,
        np.array([where[r][0] for r in runs], np.int64),
        np.array([where[r][1] for r in runs], np.int64),
    )


@pytest.mark.parametrize(
    "chunk_samples", [1, 5, 17, 10**6], ids=["chunk-1", "chunk-5", "chunk-17", "one-chunk"]
)
@pytest.mark.parametrize("seed", range(6))
def test_merge_of_runs_sharing_timestamp_columns_stays_aligned(chunk_samples, seed):
    # Blocks share one timestamp column across several value columns; the merged
    # column of overlapping series must get its own slot in both column lists.
    rng = np.random.default_rng(seed)
    labels = [Labels.from_strings("a", f"{i:03d}") for i in range(int(rng.integers(1, 9)))]
    inputs = [_block_like_runs(rng, labels, int(rng.integers(1, 4)), chunk_samples) for _ in range(2)]
    head = _random_set(rng, labels, 4, with_st=False)
    order = rng.permutation(3).tolist()
    sets = [[*inputs, RunSet.of(head)][k] for k in order]
    m = merge_run_sets(sets)
    m.validate()
    want = _reference_merge([s.to_series_set() for s in sets])
    got = {
        ls: list(zip(m.ts[a:b].tolist(), zip(m.values[a:b].tolist(), [0] * (b - a))))
        for ls, a, b in zip(m.labels, m.offsets[:-1], m.offsets[1:])
    }
    assert got == want


@pytest.mark.parametrize(
    "offsets, n_ts, n_values, n_st",
    [
        ([0, 2, 3], 3, 2, None),  # values shorter than ts: the misalignment
        ([0, 2, 3], 2, 3, None),
        ([0, 2, 3], 3, 3, 2),
        ([0, 2], 2, 2, None),  # one offset too few for two series
        ([1, 2, 3], 3, 3, None),
        ([0, 2, 4], 3, 3, None),
    ],
)
def test_series_set_refuses_misaligned_arrays(offsets, n_ts, n_values, n_st):
    st = None if n_st is None else np.zeros(n_st, np.int64)
    with pytest.raises(AssertionError, match="BUG: SeriesSet"):
        SeriesSet([A, B], np.array(offsets), np.arange(n_ts), np.zeros(n_values), st=st)
