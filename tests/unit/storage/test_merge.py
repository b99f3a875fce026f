"""merge_series_sets: union by labels, sorted, equal timestamps deduplicated (first wins)."""

from __future__ import annotations

import numpy as np

from signalfire.labels import Labels
from signalfire.storage import series_set_from_lists
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
