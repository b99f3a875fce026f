"""merge_series_sets: union by labels, sorted, equal timestamps deduplicated (first wins)."""

from __future__ import annotations

import numpy as np
import pytest

from signalfire.labels import Labels
from signalfire.storage import SeriesSet, series_set_from_lists
from signalfire.storage.merge import merge_series_sets

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
