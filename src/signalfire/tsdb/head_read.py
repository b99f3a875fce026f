"""Reading the head: a Querier over ``[mint, maxt]`` that copies what it returns.

A read takes its view under the head lock, briefly: the refs, their labels, copies of the
open slabs (fancy indexing) and the plan of cut chunk groups to decode. Groups are
immutable, so the decoding and merging run after the lock is released while commits go on;
a group that a cut, merge or truncation drops meanwhile stays alive as long as the read
holds it. Results stay valid after later appends, cuts, truncations and repacks;
``close()`` has nothing to release.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher
from signalfire.storage import RunsFromSelect, SelectHints, SeriesSet, empty_series_set
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


def _labels_in_range_later(head: Head, refs: I64, mint: int, maxt: int) -> Callable[[], list[Labels]]:
    """The label sets of the refs among ``refs`` with a sample in ``[mint, maxt]``, in
    two steps: the caller holds ``head.lock`` for this call only (labels and the chunk
    groups to check are picked); the function returned decodes without it."""
    refs = refs[head.has_samples(refs)]
    labels = [head.labels_of(r) for r in refs.tolist()]
    inside = head.in_range_later(refs, mint, maxt)
    return lambda: [ls for ls, k in zip(labels, inside().tolist()) if k]


class HeadQuerier(RunsFromSelect):
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
        with head.lock:  # the view; decoding runs after the lock is released
            refs = head.sort_by_labels(head.select_refs(matchers))
            if hints is not None and hints.func == "series":
                labels = _labels_in_range_later(head, refs, mint, maxt)
                finish: Callable[[], SeriesSet] = lambda: _labels_only(labels)  # noqa: E731
            else:
                finish = read_series_later(head, refs, mint, maxt)
        out = finish()  # decoding, outside the lock
        dl.check()
        return out

    def _labels_in_range(self, matchers: Sequence[Matcher]) -> Callable[[], list[Labels]]:
        """Under ``head.lock``: the series matching ``matchers`` with samples in range,
        as label sets once the returned function (which needs no lock) is called."""
        head = self._head
        refs = head.select_refs(matchers) if matchers else head.live_refs()
        return _labels_in_range_later(head, refs, self.mint, self.maxt)

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
            finish = self._labels_in_range(matchers)
        names: set[str] = set()
        for ls in finish():
            names.update(n for n, _ in ls)
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        head = self._head
        with head.lock:
            if self._covers_head(matchers):
                return head.postings.label_values(name)
            finish = self._labels_in_range(matchers)
        values = {ls.get(name) for ls in finish()}
        values.discard("")
        return sorted(values)

    def close(self) -> None:
        pass


def _labels_only(finish: Callable[[], list[Labels]]) -> SeriesSet:
    """Series with at least one sample in range, without their samples (hint ``series``);
    ``finish`` is a :func:`_labels_in_range_later`, called without the lock."""
    labels = finish()
    return SeriesSet(
        labels, np.zeros(len(labels) + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    )
