"""The head's in-memory postings: label name -> value -> sorted refs.

Split from ``head.py`` (which re-exports it) so the series registry and the sample
storage each have their own module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher, MatchType
from signalfire.tsdb.index.postings import intersect_sorted, select_postings, union_sorted


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
        # Lists as arrays, for equality matchers: a rule or dashboard asks for the same
        # few label pairs again and again. Dropped when the list changes.
        self._arrays: dict[tuple[str, str], I64] = {}

    def add(self, ref: int, labels: Labels) -> None:
        arrays = self._arrays
        for name, value in labels:
            values = self._index.setdefault(name, {})
            if value not in values:
                values[value] = []
                self._sorted.pop(name, None)
            values[value].append(ref)
            if arrays:
                arrays.pop((name, value), None)

    def remove(self, dead: set[int], labels: Sequence[Labels]) -> None:
        """Drop ``dead`` refs; ``labels`` are their label sets (to visit only their lists)."""
        touched = {(n, v) for ls in labels for n, v in ls}
        for name, value in touched:
            self._arrays.pop((name, value), None)
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
        """Sorted live refs whose labels satisfy every matcher. Equality matchers with a
        value (``up``, ``{job="node", instance="a"}``, most of what rules ask) are looked
        up directly; others go through ``select_postings``."""
        if matchers and all(m.type is MatchType.EQUAL and m.value for m in matchers):
            return self._select_equal(matchers)
        self._live = live
        return select_postings(self, matchers)

    def _select_equal(self, matchers: Sequence[Matcher]) -> I64:
        """The refs holding every ``name="value"`` pair (values not empty): the
        intersection of their lists, smallest first."""
        found: list[I64] = []
        for m in matchers:
            key = (m.name, m.value)
            arr = self._arrays.get(key)
            if arr is None:
                refs = self._index.get(m.name, {}).get(m.value)
                if not refs:
                    return np.empty(0, np.int64)
                # Sorted: a series revived by a late commit was appended to its lists
                # again after higher refs.
                arr = self._arrays[key] = np.sort(np.array(refs, np.int64))
            found.append(arr)
        found.sort(key=len)
        out = found[0]
        for other in found[1:]:
            out = intersect_sorted(out, other)
        return out.copy() if len(found) == 1 else out
