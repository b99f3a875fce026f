"""Reading the head: a Querier over ``[mint, maxt]`` that copies what it returns.

Data is copied out under the head lock (fancy indexing copies), so results stay valid
after later appends, truncations and repacks; ``close()`` has nothing to release.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher
from signalfire.storage import SelectHints, SeriesSet, empty_series_set
from signalfire.tsdb.head import Head, ragged_index


def read_series(head: Head, refs: I64, mint: int, maxt: int) -> SeriesSet:
    """Samples of ``refs`` (already in label order) within ``[mint, maxt]``; series left
    without samples are dropped. The caller holds ``head.lock``."""
    refs = refs[head.n[refs] > 0]
    if len(refs) == 0:
        return empty_series_set()
    lo = head.slab_search(refs, np.full(len(refs), mint, np.int64))
    hi = head.slab_search(refs, np.full(len(refs), maxt, np.int64), right=True)
    lens = hi - lo
    keep = lens > 0
    refs, lo, lens = refs[keep], lo[keep], lens[keep]
    idx = ragged_index(head.start[refs] + lo, lens)
    offsets = np.zeros(len(refs) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    st = head.pool_st[idx] if head.pool_st is not None else None
    labels = [head.labels_of(r) for r in refs.tolist()]
    return SeriesSet(labels, offsets, head.pool_ts[idx], head.pool_v[idx], st=st)


class HeadQuerier:
    """Querier over the head's samples in ``[mint, maxt]`` (both inclusive)."""

    def __init__(self, head: Head, mint: int, maxt: int) -> None:
        self._head = head
        self.mint = mint
        self.maxt = maxt

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        head = self._head
        mint, maxt = self.mint, self.maxt
        if hints is not None:  # the caller needs no more than [start, end]: copy no more
            mint = mint if hints.start is None else max(mint, hints.start)
            maxt = maxt if hints.end is None else min(maxt, hints.end)
        with head.lock:
            refs = head.sort_by_labels(head.select_refs(matchers))
            if hints is not None and hints.func == "series":
                return _labels_only(head, refs, mint, maxt)
            return read_series(head, refs, mint, maxt)

    def _refs_in_range(self, matchers: Sequence[Matcher]) -> I64:
        head = self._head
        refs = head.select_refs(matchers) if matchers else head.live_refs()
        refs = refs[head.n[refs] > 0]
        first = head.pool_ts[head.start[refs]]
        last = head.pool_ts[head.start[refs] + head.n[refs] - 1]
        out: I64 = refs[(first <= self.maxt) & (last >= self.mint)]
        return out

    def _covers_head(self, matchers: Sequence[Matcher]) -> bool:
        """No matchers and the whole head in range: the postings index answers directly
        (as Prometheus's head does), without visiting every series."""
        h = self._head
        return not matchers and self.mint <= h.min_time and self.maxt >= h.max_time

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        head = self._head
        with head.lock:
            if self._covers_head(matchers):
                return head.postings.label_names()
            refs = self._refs_in_range(matchers)
            names: set[str] = set()
            for r in refs.tolist():
                names.update(n for n, _ in head.labels_of(r))
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        head = self._head
        with head.lock:
            if self._covers_head(matchers):
                return head.postings.label_values(name)
            refs = self._refs_in_range(matchers)
            values = {head.labels_of(r).get(name) for r in refs.tolist()}
        values.discard("")
        return sorted(values)

    def close(self) -> None:
        pass


def _labels_only(head: Head, refs: I64, mint: int, maxt: int) -> SeriesSet:
    """Series with at least one sample in range, without their samples (hint ``series``)."""
    refs = refs[head.n[refs] > 0]
    lo = head.slab_search(refs, np.full(len(refs), mint, np.int64))
    hi = head.slab_search(refs, np.full(len(refs), maxt, np.int64), right=True)
    refs = refs[hi > lo]
    labels: list[Labels] = [head.labels_of(r) for r in refs.tolist()]
    return SeriesSet(
        labels, np.zeros(len(labels) + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    )
