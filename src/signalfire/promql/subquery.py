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
    within = ragged.ragged_arange(np.zeros(len(n), np.int64), n)
    return np.unique(np.repeat(first, n) + within * step_ms)


def ragged_batch_rows(n_cols: int) -> int:
    """Rows of ``n_cols`` cells per batch of deadline-checked work (about 2 M cells)."""
    return max(1, (1 << 21) // max(n_cols, 1))


def windows_from_inner(inner: StepMatrix, inner_ts: I64, window_end: I64, range_ms: int) -> RangeWindows:
    """Turn the inner [S, U] result into a range vector with windows per outer step."""
    present = inner.present
    keep = np.flatnonzero(present.any(axis=1))
    counts = present[keep].sum(axis=1) if len(keep) < len(present) else present.sum(axis=1)
    offsets = np.zeros(len(keep) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    n = int(offsets[-1])
    ts = np.empty(n, np.int64)
    values = np.empty(n, np.float64)
    U = max(present.shape[1], 1)
    rows = max(1, ragged_batch_rows(U))
    ends = np.asarray(window_end, np.int64)
    lo = np.empty((len(keep), len(ends)), np.int64)
    hi = np.empty((len(keep), len(ends)), np.int64)
    # Gathered in batches of series (row-major: per series, times ascending), with the
    # deadline checked between them: this is a pass over all inner cells. Each batch also
    # finds its windows, as window_bounds over all samples at once is one long pass too.
    for a in range(0, len(keep), rows):
        checkpoint()
        b = min(len(keep), a + rows)
        part = keep[a:b]
        r, c = np.nonzero(present[part])
        oa, ob = int(offsets[a]), int(offsets[b])
        ts[oa:ob] = inner_ts[c]
        values[oa:ob] = inner.values[part[r], c]
        blo, bhi = ragged.window_bounds(offsets[a : b + 1] - oa, ts[oa:ob], ends, range_ms)
        lo[a:b] = blo + oa
        hi[a:b] = bhi + oa
    checkpoint()
    drop = None if inner.drop_name is None else inner.drop_name[keep]
    return RangeWindows(
        [inner.labels[i] for i in keep.tolist()],
        offsets,
        ts,
        values,
        lo,
        hi,
        np.asarray(window_end, np.int64),
        range_ms,
        drop_name=drop,
    )
