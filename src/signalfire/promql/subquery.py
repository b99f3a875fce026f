"""Subqueries ``e[d:s] offset o @ t`` for every outer step at once.

For outer step time ``t`` the subquery evaluates ``e`` at every multiple of ``s``
(counted from time zero) inside the left-open window ``(t - o - d, t - o]``. Instead of
one inner evaluation per outer step, the inner expression is evaluated once, over the
sorted union of all those times, and each outer step's window is then a slice of that
result, found with ``np.searchsorted`` as for a range selector.
"""

from __future__ import annotations

import numpy as np

from signalfire._types import I64
from signalfire.errors import QueryError
from signalfire.promql.limits import QueryLimits
from signalfire.promql.values import RangeWindows, StepMatrix
from signalfire.util import ragged
from signalfire.util.deadline import checkpoint


def inner_times(window_end: I64, range_ms: int, step_ms: int, limits: QueryLimits | None = None) -> I64:
    """Sorted distinct multiples of ``step_ms`` inside any ``(end - range, end]``.

    ``window_end`` is int64[T] (outer times with offset and ``@`` applied). The count is
    checked against ``limits.max_steps`` before any array of inner times is made.
    """
    limits = limits or QueryLimits()
    if step_ms <= 0:
        raise QueryError("subquery step must be positive")
    ends = np.unique(np.asarray(window_end, np.int64))
    if len(ends) == 0:
        return np.empty(0, np.int64)
    # First multiple strictly after end - range, last multiple at or before end.
    first = ((ends - range_ms) // step_ms + 1) * step_ms
    last = (ends // step_ms) * step_ms
    n = np.maximum((last - first) // step_ms + 1, 0)
    if limits.max_steps > 0 and float(n.sum(dtype=np.float64)) > limits.max_steps:
        # Windows overlap heavily for long ranges; the union is then a plain progression.
        lo, hi = int(first.min()), int(last.max())
        limits.check_steps((hi - lo) // step_ms + 1, "subquery")
        return np.arange(lo, hi + 1, step_ms, dtype=np.int64)
    total = int(n.sum())
    starts = np.repeat(first, n)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    return np.unique(starts + within * step_ms)


def windows_from_inner(inner: StepMatrix, inner_ts: I64, window_end: I64, range_ms: int) -> RangeWindows:
    """Turn the inner [S, U] result into a range vector with windows per outer step."""
    present = inner.present
    rows = present.any(axis=1)
    keep = np.flatnonzero(rows)
    present = present[keep]
    checkpoint()
    counts = present.sum(axis=1)
    offsets = np.zeros(len(keep) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    r, c = np.nonzero(present)  # row-major: per series, times ascending
    ts = inner_ts[c].astype(np.int64)
    values = inner.values[keep][r, c]
    checkpoint()
    lo, hi = ragged.window_bounds(offsets, ts, window_end, range_ms)
    drop = None if inner.drop_name is None else inner.drop_name[keep]
    return RangeWindows(
        [inner.labels[i] for i in keep.tolist()],
        offsets,
        ts,
        np.ascontiguousarray(values, np.float64),
        lo,
        hi,
        np.asarray(window_end, np.int64),
        range_ms,
        drop_name=drop,
    )
