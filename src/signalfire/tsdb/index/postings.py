"""Postings: sorted series-id arrays per (label name, value), and matchers over them.

A matcher is evaluated once per *distinct value* of its label (``Matcher.matches_values``),
never once per series; the matching values' postings are unioned, and the matchers'
sets are intersected or subtracted with numpy set operations.

Semantics follow Prometheus (``tsdb/querier.go`` ``PostingsForMatchers``):

* a matcher that matches the empty string also selects series *without* the label
  (``{a=""}``, ``{a!="x"}``, ``{a=~"x|"}``, ``{a!~"x"}``): it is applied as
  "all series minus those whose value of ``a`` does not match";
* a selector made only of such matchers starts from all series;
* no matchers select all series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels, Matcher


class PostingsIndex(Protocol):
    """What :func:`select_postings` needs from an index (a block's or the head's).

    Series ids are non-negative int64; every returned array is sorted and unique.
    """

    def all_postings(self) -> I64:
        """Every series id in the index."""
        ...

    def label_value_list(self, name: str) -> Sequence[str]:
        """The distinct values of label ``name``, sorted; empty when no series has it."""
        ...

    def postings_union(self, name: str, value_idx: I64) -> I64:
        """Union of the postings of ``label_value_list(name)[i]`` for every i in ``value_idx``."""
        ...


def union_sorted(arrays: Sequence[I64]) -> I64:
    """Sorted union of sorted id arrays (one numpy pass, not pairwise merges)."""
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return np.empty(0, np.int64)
    if len(arrays) == 1:
        return np.asarray(arrays[0], np.int64)
    return np.unique(np.concatenate(arrays)).astype(np.int64, copy=False)


def intersect_sorted(a: I64, b: I64) -> I64:
    return np.intersect1d(a, b, assume_unique=True).astype(np.int64, copy=False)


def subtract_sorted(a: I64, b: I64) -> I64:
    if len(a) == 0 or len(b) == 0:
        return a
    return a[~np.isin(a, b, assume_unique=True)]


def _matching(index: PostingsIndex, m: Matcher) -> tuple[I64, bool]:
    """(ids, exclude): ids to keep, or with exclude=True the ids to remove."""
    values = index.label_value_list(m.name)
    hit = m.matches_values(values) if len(values) else np.zeros(0, np.bool_)
    if m.matches(""):
        # Series without the label match too: remove those whose value fails.
        miss = np.flatnonzero(~hit).astype(np.int64)
        return (index.postings_union(m.name, miss) if len(miss) else np.empty(0, np.int64)), True
    idx = np.flatnonzero(hit).astype(np.int64)
    return (index.postings_union(m.name, idx) if len(idx) else np.empty(0, np.int64)), False


def select_postings(index: PostingsIndex, matchers: Sequence[Matcher]) -> I64:
    """Sorted ids of the series matching every matcher (Prometheus semantics, see module doc)."""
    include: list[I64] = []
    exclude: list[I64] = []
    for m in matchers:
        ids, is_exclude = _matching(index, m)
        (exclude if is_exclude else include).append(ids)
        if not is_exclude and len(ids) == 0:
            return np.empty(0, np.int64)
    if include:
        # Smallest set first keeps every intersection small.
        include.sort(key=len)
        result = include[0]
        for ids in include[1:]:
            result = intersect_sorted(result, ids)
            if len(result) == 0:
                return result
    else:
        result = index.all_postings()
    for ids in exclude:
        result = subtract_sorted(result, ids)
    return np.asarray(result, np.int64)


class MemPostings:
    """An in-memory :class:`PostingsIndex` over a list of label sets (id = list position).

    Built once with numpy; used by tests and usable by any store that keeps labels
    in a list. ``labels[i]`` is series id ``i``.
    """

    def __init__(self, labels: Sequence[Labels]) -> None:
        self._n = len(labels)
        # One (name, value, id) triple per label pair; sort by name, value, id.
        pairs = [(n, v, i) for i, ls in enumerate(labels) for n, v in ls]
        pairs.sort()
        self._values: dict[str, list[str]] = {}
        self._postings: dict[str, list[I64]] = {}
        ids = np.fromiter((p[2] for p in pairs), np.int64, count=len(pairs))
        start = 0
        for j in range(1, len(pairs) + 1):
            if j == len(pairs) or pairs[j][:2] != pairs[start][:2]:
                name, value = pairs[start][0], pairs[start][1]
                self._values.setdefault(name, []).append(value)
                self._postings.setdefault(name, []).append(ids[start:j])
                start = j

    def all_postings(self) -> I64:
        return np.arange(self._n, dtype=np.int64)

    def label_names(self) -> list[str]:
        return sorted(self._values)

    def label_value_list(self, name: str) -> Sequence[str]:
        return self._values.get(name, [])

    def postings_union(self, name: str, value_idx: I64) -> I64:
        lists = self._postings.get(name, [])
        return union_sorted([lists[int(i)] for i in value_idx])
