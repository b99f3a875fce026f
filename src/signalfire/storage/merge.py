"""Merging SeriesSets and queriers (Prometheus ``storage/merge.go``), whole arrays at a time.

Blocks and the head overlap in time when blocks overlap or a crash left data both in a
block and in the WAL; a series present in several inputs becomes one series whose samples
are the union by timestamp. At equal timestamps the input listed first wins, as in
Prometheus's chain sample iterator, so callers pass inputs oldest first.

Usually the inputs do *not* overlap: blocks and the head cover consecutive time ranges,
so a merged series is its inputs' runs one after another. The merge therefore works on
runs (one per input series), not samples: runs are ordered by (series, first timestamp)
and copied in one pass (:func:`~signalfire.storage.runs.concat_runs`). Only the series
whose runs really overlap go through a sort of their samples with a dedupe mask.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher
from signalfire.storage.annotations import Annotations
from signalfire.storage.interface import Querier, SelectHints
from signalfire.storage.runs import concat_runs
from signalfire.storage.series_set import SeriesSet, empty_series_set


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
    warnings = Annotations()
    for s in sets:
        warnings.merge(s.warnings)
    sets = [s for s in sets if len(s)]
    if not sets:
        out = empty_series_set()
        out.warnings.merge(warnings)
        return out
    if len(sets) == 1:
        only = sets[0]
        return only if only.warnings is warnings or not warnings else replace(only, warnings=warnings)
    uniq, gids = union_labels([s.labels for s in sets])
    U, K = len(uniq), len(sets)
    # One run per (input, series): its gid, input, start, length, first and last ts.
    r_gid = np.concatenate(gids)
    r_src = np.repeat(np.arange(K, dtype=np.int64), [len(s) for s in sets])
    r_start = np.concatenate([s.offsets[:-1] for s in sets]).astype(np.int64, copy=False)
    r_len = np.concatenate([np.diff(s.offsets) for s in sets]).astype(np.int64, copy=False)
    has = r_len > 0
    r_gid, r_src, r_start, r_len = r_gid[has], r_src[has], r_start[has], r_len[has]
    r_first = np.concatenate([s.ts[s.offsets[:-1][np.diff(s.offsets) > 0]] for s in sets])
    r_last = np.concatenate([s.ts[s.offsets[1:][np.diff(s.offsets) > 0] - 1] for s in sets])
    # Runs in output order: by series, then time, then input (first listed wins ties).
    order = np.lexsort((r_src, r_first, r_gid))
    r_gid, r_src, r_start, r_len = r_gid[order], r_src[order], r_start[order], r_len[order]
    r_first, r_last = r_first[order], r_last[order]
    # A series overlaps when one of its runs starts at or before the previous run ends.
    clash = (r_gid[1:] == r_gid[:-1]) & (r_first[1:] <= r_last[:-1])
    ts_in = [s.ts for s in sets]
    vals_in = [s.values for s in sets]
    has_st = any(s.st is not None for s in sets)
    st_in = [s.st if s.st is not None else np.zeros(s.num_samples, np.int64) for s in sets] if has_st else []
    if clash.any():
        bad_gid = np.zeros(U, np.bool_)
        bad_gid[r_gid[1:][clash]] = True
        bad = bad_gid[r_gid]
        # The overlapping series become one extra input whose runs replace theirs.
        fixed = _merge_overlapping(ts_in, vals_in, st_in, r_gid[bad], r_src[bad], r_start[bad], r_len[bad])
        f_gid, f_start, f_len, f_ts, f_vals, f_st = fixed
        ts_in.append(f_ts)
        vals_in.append(f_vals)
        if has_st:
            st_in.append(f_st)
        keep = ~bad
        r_gid = np.concatenate([r_gid[keep], f_gid])
        r_src = np.concatenate([r_src[keep], np.full(len(f_gid), K, np.int64)])
        r_start = np.concatenate([r_start[keep], f_start])
        r_len = np.concatenate([r_len[keep], f_len])
        order = np.argsort(r_gid, kind="stable")
        r_gid, r_src, r_start, r_len = r_gid[order], r_src[order], r_start[order], r_len[order]
    counts = np.zeros(U, np.int64)
    np.add.at(counts, r_gid, r_len)
    offsets = np.zeros(U + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return SeriesSet(
        uniq,
        offsets,
        concat_runs(ts_in, r_src, r_start, r_len, np.int64),
        concat_runs(vals_in, r_src, r_start, r_len, np.float64),
        warnings=warnings,
        st=concat_runs(st_in, r_src, r_start, r_len, np.int64) if has_st else None,
    )


def _merge_overlapping(
    ts_in: list[np.ndarray],
    vals_in: list[np.ndarray],
    st_in: list[np.ndarray],
    gid: I64,
    src: I64,
    start: I64,
    length: I64,
) -> tuple[I64, I64, I64, I64, np.ndarray, I64 | None]:
    """Samples of overlapping runs sorted by (series, ts, input), equal timestamps dropped.

    Returns (gid, start, length) of one run per series plus the merged ts, values, st.
    """
    ts = concat_runs(ts_in, src, start, length, np.int64)
    vals = concat_runs(vals_in, src, start, length, np.float64)
    st = concat_runs(st_in, src, start, length, np.int64) if st_in else None
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


class MergeQuerier:
    """A Querier over several queriers (oldest data first); closes them all."""

    def __init__(self, queriers: Sequence[Querier]) -> None:
        self._queriers = list(queriers)

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        return merge_series_sets([q.select(matchers, hints) for q in self._queriers])

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
