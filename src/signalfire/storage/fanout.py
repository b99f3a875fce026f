"""Fanout: one primary storage that must answer, secondaries read on a best-effort basis.

Prometheus's ``storage/fanout.go`` puts the local tsdb and the remote-read endpoints
behind one Queryable, so the engine never learns that remote storage exists. Reads go to
all of them and are merged; the difference is how failure counts:

* the primary (the local tsdb) failing fails the call, as if there were no fanout;
* a secondary failing - opening its querier, a select, label names or values - drops that
  secondary's part of the answer and adds a warning naming the cause, which travels with
  the result (the select's :class:`~signalfire.storage.SeriesSet` ``warnings``, which the
  engine returns with the query) and is kept on :attr:`FanoutQuerier.warnings`;
* a deadline (:class:`~signalfire.errors.QueryTimeoutError`,
  :class:`~signalfire.errors.QueryCanceledError`) is never a secondary's failure: it is
  the query's, and propagates from every store.

One difference from Prometheus: there a secondary whose ``Querier()`` cannot be created
fails the query; here it is a warning like its other failures, since a remote that cannot
be reached is the case the best-effort rule exists for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from signalfire.errors import QueryCanceledError, QueryTimeoutError
from signalfire.labels import Matcher
from signalfire.storage.annotations import Annotations
from signalfire.storage.interface import Querier, Queryable, RunsFromSelect, SelectHints
from signalfire.storage.merge import merge_run_sets
from signalfire.storage.runs import RunSet
from signalfire.storage.series_set import SeriesSet, empty_series_set
from signalfire.util.deadline import Deadline

#: Errors that belong to the query, not to the store that noticed them.
_QUERY_ERRORS = (QueryTimeoutError, QueryCanceledError)

_T = TypeVar("_T")


class FanoutStorage:
    """A :class:`~signalfire.storage.Queryable` over a primary and secondary Queryables.

    Thread-safe: :meth:`add_secondary` may run while queriers are being opened; a querier
    reads the secondaries present when it was opened.
    """

    def __init__(self, primary: Queryable, secondaries: Sequence[Queryable] = ()) -> None:
        self.primary = primary
        self._secondaries = tuple(secondaries)  # replaced, never mutated: readers take no lock
        self._lock = threading.Lock()

    @property
    def secondaries(self) -> tuple[Queryable, ...]:
        return self._secondaries

    def add_secondary(self, queryable: Queryable) -> None:
        """Read ``queryable`` too from the next querier on (remote read, another database)."""
        with self._lock:
            self._secondaries = (*self._secondaries, queryable)

    def querier(self, mint: int, maxt: int) -> FanoutQuerier:
        """Queriers over ``[mint, maxt]`` ms of the primary and of every secondary.

        Raises what the primary's ``querier()`` raises. A secondary that cannot open one
        is left out with a warning; a deadline error from it closes what was opened and
        propagates.
        """
        primary = self.primary.querier(mint, maxt)
        warnings = Annotations()
        opened: list[Querier] = []
        for s in self._secondaries:
            try:
                opened.append(s.querier(mint, maxt))
            except _QUERY_ERRORS:
                _close_all([primary, *opened], Annotations())
                raise
            except Exception as err:
                warnings.warn(_failure("open secondary storage querier", err))
        return FanoutQuerier(primary, opened, warnings)


class FanoutQuerier(RunsFromSelect):
    """One Querier over a primary querier and best-effort secondary queriers.

    Selects merge the primary (listed first, so it wins a timestamp both hold with
    different values) with every secondary that answers, through
    :func:`~signalfire.storage.merge.merge_run_sets`: samples are copied once and the
    same sample from several stores is kept once. ``warnings`` collects every failure of
    a secondary since the querier was opened (its own ``querier()`` included); a
    secondary that failed once is not asked again by this querier, so one query sees
    either all of a secondary's answers or, from its failure on, none of them.
    ``close()`` closes every querier. Not thread-safe, like the queriers it holds.
    """

    def __init__(
        self, primary: Querier, secondaries: Sequence[Querier], warnings: Annotations | None = None
    ) -> None:
        self.primary = primary
        self._secondaries = list(secondaries)
        self._failed: list[Querier] = []
        self.warnings = warnings if warnings is not None else Annotations()

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet:
        """The merged selection, with the secondaries' failures as warnings."""
        if not self._secondaries and not self.warnings:
            return self.primary.select(matchers, hints, deadline)
        sets = [self.primary.select_runs(matchers, hints, deadline)]
        for q in list(self._secondaries):
            runs = self._best_effort(
                q, "select from secondary storage", q.select_runs, matchers, hints, deadline
            )
            if runs is not None:
                sets.append(runs)
        if self.warnings:  # an empty input that carries them into the merged result
            carrier = empty_series_set()
            carrier.warnings.merge(self.warnings)
            sets.append(RunSet.of(carrier))
        return merge_run_sets(sets)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        names = set(self.primary.label_names(matchers))
        for q in list(self._secondaries):
            got = self._best_effort(q, "label names from secondary storage", q.label_names, matchers)
            names.update(got or ())
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        values = set(self.primary.label_values(name, matchers))
        for q in list(self._secondaries):
            got = self._best_effort(q, "label values from secondary storage", q.label_values, name, matchers)
            values.update(got or ())
        return sorted(values)

    def close(self) -> None:
        """Close every querier; the primary's error propagates once all are closed, a
        secondary's becomes a warning (its answers were already given)."""
        secondaries, self._secondaries = [*self._secondaries, *self._failed], []
        self._failed = []
        _close_all(secondaries, self.warnings)
        self.primary.close()

    def _best_effort(self, q: Querier, what: str, call: Callable[..., _T], *args: object) -> _T | None:
        """``call(*args)``, or None and a warning when it fails for a reason of its own."""
        try:
            return call(*args)
        except _QUERY_ERRORS:
            raise
        except Exception as err:
            self.warnings.warn(_failure(what, err))
            self._secondaries.remove(q)
            self._failed.append(q)  # still closed by close()
            return None


def _failure(what: str, err: Exception) -> str:
    """A warning's text: what we were doing, then the cause (its type when it has no text)."""
    return f"{what}: {str(err) or type(err).__name__}"


def _close_all(queriers: Sequence[Querier], warnings: Annotations) -> None:
    """Close each querier; failures become ``warnings``, never stop the others closing."""
    for q in queriers:
        try:
            q.close()
        except Exception as err:
            warnings.warn(_failure("close secondary storage querier", err))
