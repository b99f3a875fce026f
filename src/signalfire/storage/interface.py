"""The storage interfaces every layer talks through (STYLE.md §2).

Batch-first: an appender takes whole numpy columns, a querier returns a ragged
:class:`SeriesSet`. Times are int64 milliseconds; querier ranges include both ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from signalfire._types import F64, I64
from signalfire.labels import Labels, Matcher
from signalfire.storage.runs import RunSet
from signalfire.storage.series_set import SeriesSet
from signalfire.util.deadline import Deadline


@dataclass(slots=True)
class AppendStats:
    """Per-sample outcomes of one ``append_batch``, counted rather than raised.

    ``duplicate`` counts exact duplicates (same timestamp, bit-identical value) that were
    accepted silently; ``duplicate_conflict`` counts a different value at an existing
    timestamp (Prometheus's "duplicate sample for timestamp" error).
    """

    appended: int = 0
    out_of_order: int = 0
    out_of_bounds: int = 0
    too_old: int = 0
    duplicate: int = 0
    duplicate_conflict: int = 0

    @property
    def rejected(self) -> int:
        return self.out_of_order + self.out_of_bounds + self.too_old + self.duplicate_conflict

    def add(self, other: AppendStats) -> AppendStats:
        self.appended += other.appended
        self.out_of_order += other.out_of_order
        self.out_of_bounds += other.out_of_bounds
        self.too_old += other.too_old
        self.duplicate += other.duplicate
        self.duplicate_conflict += other.duplicate_conflict
        return self


@dataclass(frozen=True, slots=True)
class SelectHints:
    """What the caller will do with the data, so the store can skip work.

    ``start``/``end`` in ms bound the samples actually needed; ``func`` names the
    PromQL function (``"series"`` means labels only, no samples).
    """

    start: int | None = None
    end: int | None = None
    step: int = 0
    range: int = 0
    func: str = ""


class Appender(Protocol):
    """Adds batches to storage; commit makes them durable (WAL first, then the head).

    One appender per batch, not thread-safe, used once. As a context manager it
    commits on success and rolls back on an exception.
    """

    def refs(self, series: Sequence[Labels]) -> I64: ...

    def append_batch(self, refs: I64, ts: I64 | int, values: F64, st: I64 | None = None) -> AppendStats: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: object, /, *rest: object) -> None: ...


class Appendable(Protocol):
    def appender(self) -> Appender: ...


class Querier(Protocol):
    """Reads one time range ``[mint, maxt]``; ``close()`` releases mmap views.

    ``select_runs`` is ``select`` for a merge: the same series and samples as runs of the
    store's own (read-only) columns, so that a merge of several stores copies each sample
    once. A store with no cheaper path returns ``RunSet.of(self.select(...))``.
    ``select`` checks ``deadline`` (a query's timeout and cancel event) between batches of
    its work (blocks, chunk groups) and raises its QueryTimeoutError/QueryCanceledError.
    """

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet: ...

    def select_runs(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> RunSet: ...

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]: ...

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]: ...

    def close(self) -> None: ...


class RunsFromSelect:
    """Base of a querier with nothing cheaper to lend a merge than its own ``select``:
    ``select_runs`` hands over that copy as one run per series."""

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet:
        raise NotImplementedError

    def select_runs(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> RunSet:
        """:meth:`select` as runs over its arrays (for a merge above this querier)."""
        return RunSet.of(self.select(matchers, hints, deadline))


class Queryable(Protocol):
    def querier(self, mint: int, maxt: int) -> Querier: ...
