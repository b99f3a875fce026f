"""Concatenating runs (contiguous slices) of several arrays: the copy step of every read.

A read assembles its output from *runs*: ``length[r]`` elements of ``arrays[which[r]]``
starting at ``start[r]``, in run order. Merging sources, cutting chunks to a time range
and gathering a block's pieces are all this one operation.

Two strategies, picked by the mean run length, because allocation and page faults of
large temporaries dominate here:

* long runs (the usual case: a series' samples of one block or of the head): a view
  per run and one ``np.concatenate`` - one pass over the output, no N-sized index;
* short runs (many series with a few samples each): the arrays are concatenated once
  and gathered with one ragged index, so no Python work per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels
from signalfire.storage.annotations import Annotations
from signalfire.storage.series_set import SeriesSet
from signalfire.util.ragged import ragged_arange

#: Mean run length from which a Python list of views beats a ragged fancy index
#: (a view costs ~0.2 µs; an indexed element ~5 ns including the index itself).
VIEW_RUN_MIN = 48


def concat_runs(
    arrays: Sequence[np.ndarray], which: I64, start: I64, length: I64, dtype: type | np.dtype
) -> np.ndarray:
    """The runs ``arrays[which[r]][start[r]:start[r] + length[r]]`` concatenated in order.

    Always a fresh array of ``dtype`` (never a view of an input), so it stays valid when
    the inputs go (mmap views, cached chunks).
    """
    n_runs = len(length)
    total = int(np.sum(length)) if n_runs else 0
    if total == 0:
        return np.empty(0, dtype)
    if n_runs == 1:
        s = int(start[0])
        return np.array(arrays[int(which[0])][s : s + total], dtype=dtype)
    if total >= VIEW_RUN_MIN * n_runs:
        # A loop over runs, each one slice view; the copy itself is one C pass.
        ends = (start + length).tolist()
        views = [arrays[w][a:b] for w, a, b in zip(which.tolist(), start.tolist(), ends)]
        return np.concatenate(views).astype(dtype, copy=False)
    if len(arrays) == 1:
        flat, base = np.asarray(arrays[0]), np.zeros(1, np.int64)
    else:
        flat = np.concatenate([np.asarray(a, dtype) for a in arrays])
        base = np.zeros(len(arrays), np.int64)
        np.cumsum([len(a) for a in arrays[:-1]], out=base[1:])
    idx = ragged_arange(base[which] + start, length)
    return np.asarray(flat[idx], dtype)


@dataclass(frozen=True, slots=True)
class RunSet:
    """Series whose samples are runs of shared columns, not yet copied out.

    What a store hands a merge so that samples are copied once, by the merge, instead of
    once by each store and again by the merge. S series sorted by labels; series ``i``
    owns runs ``run_off[i]:run_off[i+1]`` in time order; run ``r`` is ``length[r]``
    timestamps of ``ts_cols[ts_slot[r]]`` from ``ts_start[r]`` and as many values (and
    start timestamps, when ``st_cols`` is not None) of ``v_cols[v_slot[r]]`` /
    ``st_cols[v_slot[r]]`` from ``v_start[r]``. Columns are read-only to everyone; they
    may be cached chunks or mmap views, valid until the querier closes.
    """

    labels: Sequence[Labels]
    run_off: I64  # int64[S+1]
    length: I64  # int64[R]
    ts_cols: list[np.ndarray]
    ts_slot: I64
    ts_start: I64
    v_cols: list[np.ndarray]
    v_slot: I64
    v_start: I64
    st_cols: list[np.ndarray] | None = None
    warnings: Annotations = field(default_factory=Annotations)
    #: The SeriesSet these runs cover one to one (set by :meth:`of`), so a merge of one
    #: input can hand it back without copying.
    source: SeriesSet | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def of(cls, ss: SeriesSet) -> RunSet:
        """A SeriesSet as runs: one per series, over its own arrays (no copy)."""
        S = len(ss.labels)
        zero = np.zeros(S, np.int64)
        start = np.asarray(ss.offsets[:-1], np.int64)
        return cls(
            ss.labels,
            np.arange(S + 1, dtype=np.int64),
            np.diff(ss.offsets).astype(np.int64, copy=False),
            [ss.ts],
            zero,
            start,
            [ss.values],
            zero,
            start,
            [ss.st] if ss.st is not None else None,
            ss.warnings,
            ss,
        )

    def first_last(self, runs: I64) -> tuple[I64, I64]:
        """First and last timestamp of each of ``runs`` (which must not be empty)."""
        first = np.empty(len(runs), np.int64)
        last = np.empty(len(runs), np.int64)
        slots = self.ts_slot[runs]
        starts = self.ts_start[runs]
        ends = starts + self.length[runs] - 1
        for s in np.unique(slots).tolist():  # loop over columns, each a gather
            sel = slots == s
            col = self.ts_cols[s]
            first[sel] = col[starts[sel]]
            last[sel] = col[ends[sel]]
        return first, last

    def to_series_set(self) -> SeriesSet:
        """The runs as a SeriesSet: fresh arrays, or :attr:`source` when there is one."""
        if self.source is not None:
            return self.source
        # Samples before each run, read at series boundaries: the output offsets.
        before = np.zeros(len(self.length) + 1, np.int64)
        np.cumsum(self.length, out=before[1:])
        offsets = before[self.run_off]
        return SeriesSet(
            self.labels,
            offsets,
            concat_runs(self.ts_cols, self.ts_slot, self.ts_start, self.length, np.int64),
            concat_runs(self.v_cols, self.v_slot, self.v_start, self.length, np.float64),
            warnings=self.warnings,
            st=(
                concat_runs(self.st_cols, self.v_slot, self.v_start, self.length, np.int64)
                if self.st_cols is not None
                else None
            ),
        )
