"""Merging SeriesSets and queriers (Prometheus ``storage/merge.go``), whole arrays at a time.

Blocks and the head overlap in time when out-of-order samples were written into the range
of a persisted block, or a crash left data both in a block and in the WAL; a series present
in several inputs becomes one series whose samples are the union by timestamp, one sample
per timestamp. Where inputs hold different values for one timestamp, Prometheus keeps "one
sample from random overlapped ones" (``ChainedSeriesMerge`` in its ``storage/merge.go``;
which one depends on its iterator heap). Here the input listed first wins, always, and
the DB lists blocks in creation (ULID) order and the head last: the first write of a
timestamp wins, as the head itself refuses a second value for a timestamp it holds, and
the answer does not change when a block is cut or compacted (compaction keeps the same
copy, see ``tsdb/compact.py``).

Usually the inputs do *not* overlap: blocks and the head cover consecutive time ranges,
so a merged series is its inputs' runs one after another. The merge therefore works on
runs (slices of the inputs' columns, see :class:`~signalfire.storage.runs.RunSet`), not
samples: runs are ordered by (series, first timestamp) and copied in one pass
(:func:`~signalfire.storage.runs.concat_runs`). Only the series whose runs really
overlap go through a sort of their samples with a dedupe mask.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher
from signalfire.storage.annotations import Annotations
from signalfire.storage.interface import Querier, RunsFromSelect, SelectHints
from signalfire.storage.runs import RunSet, concat_runs
from signalfire.storage.series_set import SeriesSet, empty_series_set
from signalfire.util.deadline import NO_DEADLINE, Deadline


def union_labels(lists: Sequence[Sequence[Labels]]) -> tuple[list[Labels], list[I64]]:
    """Sorted union of sorted label lists, and each input's positions in it.

    The common case, every input holding the same series, costs one list comparison
    (interned strings make it mostly identity checks); otherwise one dict over all label
    sets and one sort of the distinct ones.
    """
    first = lists[0]
    if all(x is first or x == first for x in lists[1:]):
        ids = np.arange(len(first), dtype=np.int64)
        return list(first), [ids] * len(lists)
    # Each input is sorted, so insertion order is a few sorted runs: timsort merges them.
    uniq = sorted(dict.fromkeys(itertools.chain.from_iterable(lists)))
    gid_of = {ls: i for i, ls in enumerate(uniq)}
    gids = []
    for x in lists:
        if x == uniq:
            gids.append(np.arange(len(x), dtype=np.int64))
        else:
            gids.append(np.fromiter(map(gid_of.__getitem__, x), np.int64, len(x)))
    return uniq, gids


def merge_series_sets(sets: Sequence[SeriesSet]) -> SeriesSet:
    """One SeriesSet with every series of ``sets``, sorted by labels, timestamps unique.

    Series keep their label set even without samples (a labels-only select). Returned
    arrays are fresh copies unless a single input is returned as it is.
    """
    live = [s for s in sets if len(s)]
    if len(live) == 1:
        warnings = Annotations()
        for s in sets:
            warnings.merge(s.warnings)
        only = live[0]
        return only if not warnings or only.warnings is warnings else replace(only, warnings=warnings)
    return merge_run_sets([RunSet.of(s) for s in sets])


def merge_run_sets(sets: Sequence[RunSet]) -> SeriesSet:
    """:func:`merge_series_sets` over runs: the samples are copied once, here.

    Runs are ordered by (series, first timestamp, input); a series whose runs do not
    overlap is its runs one after another, the others are sorted sample by sample. A
    single input comes back as its ``to_series_set()``.
    """
    warnings = Annotations()
    for s in sets:
        warnings.merge(s.warnings)
    sets = [s for s in sets if len(s)]
    if not sets:
        out = empty_series_set()
        out.warnings.merge(warnings)
        return out
    if len(sets) == 1:
        only = sets[0].to_series_set()
        return only if not warnings or only.warnings is warnings else replace(only, warnings=warnings)
    uniq, gids = union_labels([s.labels for s in sets])
    U = len(uniq)
    # All inputs' runs in one table; column slots renumbered into shared column lists.
    ts_cols: list[np.ndarray] = []
    v_cols: list[np.ndarray] = []
    has_st = any(s.st_cols is not None for s in sets)
    st_cols: list[np.ndarray] = []
    parts: list[tuple[I64, ...]] = []
    for k, s in enumerate(sets):
        nonempty = np.flatnonzero(s.length > 0)
        first, last = s.first_last(nonempty)
        gid = np.repeat(gids[k], np.diff(s.run_off))[nonempty]
        ts_slot = s.ts_slot[nonempty] + len(ts_cols)
        v_slot = s.v_slot[nonempty] + len(v_cols)
        src = np.full(len(nonempty), k, np.int64)
        parts.append(
            (
                gid,
                src,
                first,
                last,
                s.length[nonempty],
                ts_slot,
                s.ts_start[nonempty],
                v_slot,
                s.v_start[nonempty],
            )
        )
        ts_cols.extend(s.ts_cols)
        v_cols.extend(s.v_cols)
        if has_st:
            st_cols.extend(
                s.st_cols if s.st_cols is not None else [np.zeros(len(c), np.int64) for c in s.v_cols]
            )
    gid, src, first, last, length, ts_slot, ts_start, v_slot, v_start = (
        np.concatenate(c) for c in zip(*parts)
    )
    # Runs in output order: by series, then time, then input (the first listed wins ties).
    order = np.lexsort((src, first, gid))
    gid, first, last, length = gid[order], first[order], last[order], length[order]
    ts_slot, ts_start, v_slot, v_start, src = (
        ts_slot[order],
        ts_start[order],
        v_slot[order],
        v_start[order],
        src[order],
    )
    # A series overlaps when one of its runs starts at or before the previous run ends.
    clash = (gid[1:] == gid[:-1]) & (first[1:] <= last[:-1])
    if clash.any():
        bad_gid = np.zeros(U, np.bool_)
        bad_gid[gid[1:][clash]] = True
        bad = bad_gid[gid]
        runs = (gid[bad], src[bad], length[bad], ts_slot[bad], ts_start[bad], v_slot[bad], v_start[bad])
        f_gid, f_start, f_len, f_ts, f_vals, f_st = _merge_overlapping(ts_cols, v_cols, st_cols, *runs)
        # The merged samples become one more column whose runs replace the overlapping ones.
        # Its slot differs between the two lists: an input may share one timestamp column
        # among several value columns (a block does), so the lists differ in length.
        f_ts_slot = np.full(len(f_gid), len(ts_cols), np.int64)
        f_v_slot = np.full(len(f_gid), len(v_cols), np.int64)
        ts_cols.append(f_ts)
        v_cols.append(f_vals)
        if has_st:
            assert f_st is not None  # merged start times exist whenever any input had them
            st_cols.append(f_st)
        keep = ~bad
        gid = np.concatenate([gid[keep], f_gid])
        length = np.concatenate([length[keep], f_len])
        ts_slot = np.concatenate([ts_slot[keep], f_ts_slot])
        v_slot = np.concatenate([v_slot[keep], f_v_slot])
        ts_start = np.concatenate([ts_start[keep], f_start])
        v_start = np.concatenate([v_start[keep], f_start])
        order = np.argsort(gid, kind="stable")
        gid, length, ts_slot, ts_start, v_slot, v_start = (
            gid[order], length[order], ts_slot[order], ts_start[order], v_slot[order], v_start[order]
        )  # fmt: skip
    counts = np.zeros(U, np.int64)
    np.add.at(counts, gid, length)
    offsets = np.zeros(U + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return SeriesSet(
        uniq,
        offsets,
        concat_runs(ts_cols, ts_slot, ts_start, length, np.int64),
        concat_runs(v_cols, v_slot, v_start, length, np.float64),
        warnings=warnings,
        st=concat_runs(st_cols, v_slot, v_start, length, np.int64) if has_st else None,
    )


def _merge_overlapping(
    ts_cols: list[np.ndarray],
    v_cols: list[np.ndarray],
    st_cols: list[np.ndarray],
    gid: I64,
    src: I64,
    length: I64,
    ts_slot: I64,
    ts_start: I64,
    v_slot: I64,
    v_start: I64,
) -> tuple[I64, I64, I64, I64, np.ndarray, I64 | None]:
    """Samples of overlapping runs sorted by (series, ts, input), equal timestamps dropped.

    Returns (gid, start, length) of one run per series plus the merged ts, values, st.
    """
    ts = concat_runs(ts_cols, ts_slot, ts_start, length, np.int64)
    vals = concat_runs(v_cols, v_slot, v_start, length, np.float64)
    st = concat_runs(st_cols, v_slot, v_start, length, np.int64) if st_cols else None
    g = np.repeat(gid, length)
    order = np.lexsort((np.repeat(src, length), ts, g))
    g, t = g[order], ts[order]
    keep = np.ones(len(order), np.bool_)
    keep[1:] = (g[1:] != g[:-1]) | (t[1:] != t[:-1])
    order = order[keep]
    g = g[keep]
    f_gid, f_start, f_len = np.unique(g, return_index=True, return_counts=True)
    return (
        f_gid.astype(np.int64),
        f_start.astype(np.int64),
        f_len.astype(np.int64),
        ts[order],
        vals[order],
        st[order] if st is not None else None,
    )


class MergeQuerier(RunsFromSelect):
    """A Querier over several queriers (oldest data first); closes them all."""

    def __init__(self, queriers: Sequence[Querier]) -> None:
        self._queriers = list(queriers)

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet:
        """The merged selection; the queriers hand over runs, so their samples are copied
        once, by the merge. ``deadline`` is checked before each querier and passed to it."""
        dl = deadline or NO_DEADLINE
        sets = []
        for q in self._queriers:
            dl.check()
            sets.append(q.select_runs(matchers, hints, dl))
        dl.check()
        return merge_run_sets(sets)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        names: set[str] = set()
        for q in self._queriers:
            names.update(q.label_names(matchers))
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        values: set[str] = set()
        for q in self._queriers:
            values.update(q.label_values(name, matchers))
        return sorted(values)

    def close(self) -> None:
        for q in self._queriers:
            q.close()
