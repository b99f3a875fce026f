"""The head's in-memory postings: label name -> value -> sorted refs.

Split from ``head.py`` (which re-exports it) so the series registry and the sample
storage each have their own module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher
from signalfire.tsdb.index.postings import select_postings, union_sorted


class HeadPostings:
    """Label name -> value -> refs for the head; a ``PostingsIndex`` for ``select_postings``.

    Refs are appended in increasing order, so every list stays sorted without sorting.
    Matchers are evaluated by the block index's ``select_postings``, so head and blocks
    share one implementation of Prometheus's matcher semantics.
    """

    def __init__(self) -> None:
        self._index: dict[str, dict[str, list[int]]] = {}
        self._sorted: dict[str, list[str]] = {}  # sorted values per name, rebuilt lazily
        self._live: Callable[[], I64] = lambda: np.empty(0, np.int64)

    def add(self, ref: int, labels: Labels) -> None:
        for name, value in labels:
            values = self._index.setdefault(name, {})
            if value not in values:
                values[value] = []
                self._sorted.pop(name, None)
            values[value].append(ref)

    def remove(self, dead: set[int], labels: Sequence[Labels]) -> None:
        """Drop ``dead`` refs; ``labels`` are their label sets (to visit only their lists)."""
        touched = {(n, v) for ls in labels for n, v in ls}
        for name, value in touched:
            values = self._index.get(name)
            if values is None or value not in values:
                continue
            kept = [r for r in values[value] if r not in dead]
            if kept:
                values[value] = kept
                continue
            del values[value]
            self._sorted.pop(name, None)
            if not values:
                del self._index[name]

    def label_names(self) -> list[str]:
        return sorted(self._index)

    def label_values(self, name: str) -> list[str]:
        return list(self.label_value_list(name))

    # PostingsIndex protocol (signalfire.tsdb.index.postings)

    def all_postings(self) -> I64:
        return self._live()

    def label_value_list(self, name: str) -> Sequence[str]:
        cached = self._sorted.get(name)
        if cached is None:
            cached = self._sorted[name] = sorted(self._index.get(name, ()))
        return cached

    def postings_union(self, name: str, value_idx: I64) -> I64:
        values = self._index.get(name, {})
        names = self.label_value_list(name)
        return union_sorted([np.asarray(values[names[int(i)]], np.int64) for i in value_idx])

    def select(self, matchers: Sequence[Matcher], live: Callable[[], I64]) -> I64:
        """Sorted live refs whose labels satisfy every matcher."""
        self._live = live
        return select_postings(self, matchers)
