"""``__name__`` dropping and label-set collisions, as Prometheus 3.x does them.

Functions and arithmetic mark rows with ``drop_name``. Without delayed name removal
the evaluator removes the name (with ``__type__``/``__unit__``) right away; with
``promql-delayed-name-removal`` it removes it once, at the end of the query. Rows that
end up with the same labels are merged into one series when they never overlap in
time, else the query fails as Prometheus does: "vector cannot contain metrics with
the same labelset".
"""

from __future__ import annotations

import numpy as np

from signalfire.errors import QueryError
from signalfire.labels import Labels
from signalfire.promql.values import StepMatrix
from signalfire.util import ragged

SAME_LABELSET = "vector cannot contain metrics with the same labelset"


def drop_names_now(sm: StepMatrix) -> StepMatrix:
    """Remove ``__name__`` from the rows marked ``drop_name``; merge resulting duplicates."""
    if sm.drop_name is None or not sm.drop_name.any():
        sm.drop_name = None
        return merge_same_labels(sm)
    labels = [strip_name(ls) if d else ls for ls, d in zip(sm.labels, sm.drop_name.tolist())]
    return merge_same_labels(StepMatrix(labels, sm.values, sm.present, None, sm.sample_ts))


_RESERVED = ("__name__", "__type__", "__unit__")


def strip_name(ls: Labels) -> Labels:
    """``ls.without_metric_name()`` with a fast path for the usual layout.

    Labels are sorted, so ``__name__``, ``__type__`` and ``__unit__`` (in that order) sit
    together, normally at the front; a label set whose first name sorts after all three
    has none of them.
    """
    if not ls:
        return ls
    first = ls[0][0]
    if first == "__name__":
        j = 1
        while j < len(ls) and ls[j][0] in _RESERVED:
            j += 1
        return Labels(ls[j:])
    if first > "__unit__":
        return ls
    return ls.without_metric_name()


def settle_names(sm: StepMatrix, delayed: bool) -> StepMatrix:
    """After a node that may have set ``drop_name``: drop now unless removal is delayed."""
    if delayed:
        return merge_same_labels(sm)
    return drop_names_now(sm)


def merge_same_labels(sm: StepMatrix) -> StepMatrix:
    """Merge rows with equal labels whose points never share a step; raise if they do.

    This is what Prometheus's per-step output map does: one output series per label
    set, and a second sample for the same label set at the same step is an error.
    """
    S = len(sm.labels)
    if S < 2 or len(set(sm.labels)) == S:  # the usual case, cheaper to rule out than to group
        return sm
    ids, uniq = ragged.group_ids(sm.labels)
    G = len(uniq)
    if G == S:
        return sm
    counts = ragged.group_count(ids, G, sm.present)
    if (counts > 1).any():
        raise QueryError(SAME_LABELSET)
    T = sm.values.shape[1]
    values = np.zeros((G, T), np.float64)
    present = np.zeros((G, T), np.bool_)
    # Each (group, step) has at most one present row, so a masked scatter is exact.
    rows, cols = np.nonzero(sm.present)
    values[ids[rows], cols] = sm.values[rows, cols]
    present[ids[rows], cols] = True
    drop = None
    if sm.drop_name is not None:
        drop = np.zeros(G, np.bool_)
        np.logical_or.at(drop, ids, sm.drop_name)
    sample_ts = None
    if sm.sample_ts is not None:
        sample_ts = np.zeros((G, T), np.int64)
        sample_ts[ids[rows], cols] = sm.sample_ts[rows, cols]
    return StepMatrix(list(uniq), values, present, drop, sample_ts)


def check_unique(labels: list[Labels]) -> None:
    """Raise the Prometheus error when two result rows carry the same labels."""
    if len(set(labels)) != len(labels):
        raise QueryError(SAME_LABELSET)
