"""Merging SeriesSets and queriers (Prometheus ``storage/merge.go``), whole arrays at a time.

Blocks and the head overlap in time when blocks overlap or a crash left data both in a
block and in the WAL; a series present in several inputs becomes one series whose samples
are the union by timestamp. At equal timestamps the input listed first wins, as in
Prometheus's chain sample iterator, so callers pass inputs oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from signalfire.labels import Labels, Matcher
from signalfire.storage.annotations import Annotations
from signalfire.storage.interface import Querier, SelectHints
from signalfire.storage.series_set import SeriesSet, empty_series_set


def merge_series_sets(sets: Sequence[SeriesSet]) -> SeriesSet:
    """One SeriesSet with every series of ``sets``, sorted by labels, timestamps unique.

    A label-set union in Python (one dict entry per input series), then one lexsort over
    all samples by (series, ts, input) and a boundary mask drop the duplicates.
    """
    sets = [s for s in sets if len(s)]
    warnings = Annotations()
    for s in sets:
        warnings.merge(s.warnings)
    if not sets:
        out = empty_series_set()
        out.warnings.merge(warnings)
        return out
    if len(sets) == 1:
        return sets[0]
    all_labels: list[Labels] = [ls for s in sets for ls in s.labels]
    uniq = sorted(set(all_labels))
    gid_of = {ls: i for i, ls in enumerate(uniq)}
    series_gid = np.fromiter((gid_of[ls] for ls in all_labels), np.int64, len(all_labels))
    lens = np.concatenate([np.diff(s.offsets) for s in sets])
    gid = np.repeat(series_gid, lens)
    src = np.repeat(np.arange(len(sets), dtype=np.int64), [s.num_samples for s in sets])
    ts = np.concatenate([s.ts for s in sets])
    values = np.concatenate([s.values for s in sets])
    has_st = any(s.st is not None for s in sets)
    st = (
        np.concatenate([s.st if s.st is not None else np.zeros(s.num_samples, np.int64) for s in sets])
        if has_st
        else None
    )
    order = np.lexsort((src, ts, gid))
    g, t = gid[order], ts[order]
    keep = np.ones(len(order), np.bool_)
    keep[1:] = (g[1:] != g[:-1]) | (t[1:] != t[:-1])
    order = order[keep]
    counts = np.bincount(gid[order], minlength=len(uniq)).astype(np.int64)
    offsets = np.zeros(len(uniq) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return SeriesSet(
        uniq,
        offsets,
        ts[order],
        values[order],
        warnings=warnings,
        st=st[order] if st is not None else None,
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
