"""Reading the head: a Querier over ``[mint, maxt]`` that copies what it returns.

Data is copied out under the head lock (cut chunks are decoded into new arrays, slabs
copied by fancy indexing), so results stay valid after later appends, cuts, truncations
and repacks; ``close()`` has nothing to release.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher
from signalfire.storage import SelectHints, SeriesSet, empty_series_set
from signalfire.tsdb.head import Head
from signalfire.util.deadline import NO_DEADLINE, Deadline


def read_series(head: Head, refs: I64, mint: int, maxt: int) -> SeriesSet:
    """Samples of ``refs`` (already in label order) within ``[mint, maxt]``; series left
    without samples are dropped. The caller holds ``head.lock``."""
    return read_series_later(head, refs, mint, maxt)()


def read_series_later(head: Head, refs: I64, mint: int, maxt: int) -> Callable[[], SeriesSet]:
    """:func:`read_series` in two steps (see ``Head.samples_later``): the caller holds
    ``head.lock`` for this call only; the function returned decodes without it."""
    refs = refs[head.has_samples(refs)]
    if len(refs) == 0:
        return empty_series_set
    read = head.samples_later(refs, mint, maxt)
    labels = [head.labels_of(r) for r in refs.tolist()]

    def finish() -> SeriesSet:
        offsets, ts, values, st = read()
        lens = np.diff(offsets)
        keep = lens > 0
        kept = labels
        if not keep.all():
            kept = [ls for ls, k in zip(labels, keep.tolist()) if k]
            offsets = np.zeros(len(kept) + 1, np.int64)
            np.cumsum(lens[keep], out=offsets[1:])
        return SeriesSet(kept, offsets, ts, values, st=st)

    return finish


def _refs_with_samples(head: Head, refs: I64, mint: int, maxt: int) -> I64:
    """The refs among ``refs`` with at least one sample in ``[mint, maxt]``."""
    refs = refs[head.has_samples(refs)]
    out: I64 = refs[head.in_range(refs, mint, maxt)]
    return out


class HeadQuerier:
    """Querier over the head's samples in ``[mint, maxt]`` (both inclusive)."""

    def __init__(self, head: Head, mint: int, maxt: int) -> None:
        self._head = head
        self.mint = mint
        self.maxt = maxt

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet:
        """``deadline`` is checked before the read and after it."""
        head = self._head
        dl = deadline or NO_DEADLINE
        dl.check()
        mint, maxt = self.mint, self.maxt
        if hints is not None:  # the caller needs no more than [start, end]: copy no more
            mint = mint if hints.start is None else max(mint, hints.start)
            maxt = maxt if hints.end is None else min(maxt, hints.end)
        with head.lock:
            refs = head.sort_by_labels(head.select_refs(matchers))
            if hints is not None and hints.func == "series":
                return _labels_only(head, refs, mint, maxt)
            out = read_series(head, refs, mint, maxt)
        dl.check()
        return out

    def _refs_in_range(self, matchers: Sequence[Matcher]) -> I64:
        head = self._head
        refs = head.select_refs(matchers) if matchers else head.live_refs()
        return _refs_with_samples(head, refs, self.mint, self.maxt)

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
    refs = _refs_with_samples(head, refs, mint, maxt)
    labels: list[Labels] = [head.labels_of(r) for r in refs.tolist()]
    return SeriesSet(
        labels, np.zeros(len(labels) + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    )
