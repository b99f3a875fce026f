"""The library object: one TSDB plus one PromQL engine, what ``signalfire.open()`` returns.

It stands above :mod:`signalfire.tsdb` and :mod:`signalfire.promql` so neither imports
the other. Two databases in one process share no state.

Example::

    >>> import signalfire, tempfile, numpy as np
    >>> db = signalfire.open(tempfile.mkdtemp())
    >>> db.append([{"__name__": "up", "job": "a"}], ts=np.array([1000, 2000]), values=[1.0, 0.0]).appended
    2
    >>> db.query("up", 2).values.tolist()
    [[0.0]]
    >>> db.close()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from signalfire._types import F64, I64, MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher
from signalfire.promql.engine import Engine, EngineOptions
from signalfire.promql.limits import check_resolution
from signalfire.promql.parser import parse_metric_selector
from signalfire.promql.result import QueryResult
from signalfire.storage import Appender, AppendStats, Querier, SeriesSet
from signalfire.tsdb import DB, DBOptions, open_db
from signalfire.util.malloc import keep_freed_memory
from signalfire.util.timeutil import DurationLike, TimeLike, duration_to_ms, to_ms

if TYPE_CHECKING:
    import pandas as pd

#: Every feature flag the conformance suite turns on (Prometheus's ``--enable-feature`` names).
ALL_PROMQL_FEATURES = frozenset(
    {
        "promql-experimental-functions",
        "promql-delayed-name-removal",
        "promql-duration-expr",
        "promql-extended-range-selectors",
        "promql-binop-fill-modifiers",
        "st-storage",
    }
)


@dataclass(frozen=True, slots=True)
class DatabaseOptions:
    """Options of :func:`open`; ``tsdb`` and ``engine`` are passed through unchanged."""

    tsdb: DBOptions = field(default_factory=DBOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)


SeriesLike = Labels | Mapping[str, str]


def _as_labels(s: SeriesLike) -> Labels:
    return s if isinstance(s, Labels) else Labels.from_dict(s)


class Database:
    """A signalfire database opened on a folder: append, select, query, snapshot, close.

    Thread-safety: queries may run concurrently with appends; each ``appender()`` is
    used by one thread once.
    """

    def __init__(self, db: DB, engine: Engine, path: Path) -> None:
        self.tsdb = db
        self.engine = engine
        self.path = path

    # ------------------------------------------------------------------ writing

    def appender(self) -> Appender:
        """A batch appender; commit makes the batch durable (see :mod:`signalfire.tsdb`)."""
        return self.tsdb.appender()

    def append(
        self,
        series: Sequence[SeriesLike] | SeriesLike,
        ts: I64 | Sequence[int] | int,
        values: F64 | Sequence[float] | float,
    ) -> AppendStats:
        """Append samples and commit.

        ``series`` is one label set (for all samples) or one per sample; ``ts`` in ms
        (one per sample, or one for all); ``values`` one per sample.
        """
        if isinstance(series, Labels | Mapping):
            series = [series]
        labels = [_as_labels(s) for s in series]
        vals = np.atleast_1d(np.asarray(values, dtype=np.float64))
        n = max(len(vals), len(labels), np.size(ts))
        with self.appender() as app:
            refs = app.refs(labels)
            if len(refs) == 1 and n > 1:
                refs = np.repeat(refs, n)
            if len(vals) == 1 and n > 1:
                vals = np.repeat(vals, n)
            t = np.asarray(ts, dtype=np.int64)
            if t.ndim == 0:
                t = np.full(n, int(t), np.int64)
            return app.append_batch(refs, t, vals)

    def delete(
        self, selector: str | Sequence[Matcher], start: TimeLike | None = None, end: TimeLike | None = None
    ) -> None:
        """Delete the matching series' samples in ``[start, end]`` (tombstones)."""
        self.tsdb.delete(self._matchers(selector), self._ms(start, MIN_TIME), self._ms(end, MAX_TIME))

    # ------------------------------------------------------------------ reading

    def querier(self, mint: int = MIN_TIME, maxt: int = MAX_TIME) -> Querier:
        """A storage querier over ``[mint, maxt]`` ms; close it when done."""
        return self.tsdb.querier(mint, maxt)

    def select(
        self,
        selector: str | Sequence[Matcher],
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> SeriesSet:
        """Raw samples of the series matching ``selector`` (``'up{job="a"}'`` or matchers).

        Returns copies, so the result stays valid after the querier closes.
        """
        q = self.querier(self._ms(start, MIN_TIME), self._ms(end, MAX_TIME))
        try:
            ss = q.select(self._matchers(selector))
            return replace(ss, offsets=ss.offsets.copy(), ts=ss.ts.copy(), values=ss.values.copy())
        finally:
            q.close()

    def select_df(
        self, selector: str | Sequence[Matcher], start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pd.DataFrame:
        """Like :meth:`select` as a pandas DataFrame indexed by time, one column per series."""
        import pandas as pd

        ss = self.select(selector, start, end)
        cols = {}
        for i in range(len(ss)):
            ls, ts, vs = ss.series(i)
            cols[str(ls)] = pd.Series(vs, index=pd.to_datetime(ts, unit="ms", utc=True))
        return pd.DataFrame(cols)

    def label_names(self, selector: str | Sequence[Matcher] = ()) -> list[str]:
        q = self.querier()
        try:
            return q.label_names(self._matchers(selector) if selector else ())
        finally:
            q.close()

    def label_values(self, name: str, selector: str | Sequence[Matcher] = ()) -> list[str]:
        q = self.querier()
        try:
            return q.label_values(name, self._matchers(selector) if selector else ())
        finally:
            q.close()

    # ------------------------------------------------------------------ PromQL

    def query(self, expr: str, time: TimeLike) -> QueryResult:
        """Evaluate ``expr`` at one time (seconds since the epoch, datetime or datetime64)."""
        return self.engine.instant_query(self.tsdb, expr, to_ms(time))

    def query_range(self, expr: str, start: TimeLike, end: TimeLike, step: DurationLike) -> QueryResult:
        """Evaluate ``expr`` at ``start, start+step, ... <= end``.

        Refused as Prometheus's HTTP API refuses it (BadDataError) when that would be more
        than 11,000 points per series; see :func:`signalfire.promql.limits.check_resolution`.
        """
        start_ms, end_ms, step_ms = to_ms(start), to_ms(end), duration_to_ms(step)
        check_resolution(start_ms, end_ms, step_ms)
        return self.engine.range_query(self.tsdb, expr, start_ms, end_ms, step_ms)

    # ------------------------------------------------------------------ maintenance

    def snapshot(self, directory: str | Path, with_head: bool = True) -> Path:
        """A consistent copy of the whole database in ``directory`` (hot backup)."""
        return Path(self.tsdb.snapshot(Path(directory), with_head=with_head))

    def compact(self) -> None:
        """Persist the head into blocks, compact blocks and apply retention now."""
        self.tsdb.compact()

    def close(self) -> None:
        self.tsdb.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _ms(t: TimeLike | None, default: int) -> int:
        return default if t is None else to_ms(t)

    @staticmethod
    def _matchers(selector: str | Sequence[Matcher]) -> list[Matcher]:
        if isinstance(selector, str):
            return parse_metric_selector(selector)
        return list(selector)


#: Friendlier spellings accepted by :func:`open`.
_ALIASES = {"out_of_order_time_window_ms": "out_of_order_time_window"}


def open(
    path: str | Path,
    options: DatabaseOptions | None = None,
    **overrides: Any,
) -> Database:
    """Open (or create) a database in ``path``.

    Keyword overrides go to the TSDB options or the engine options by name, e.g.
    ``retention_ms=``, ``out_of_order_time_window_ms=``, ``lookback_delta_ms=``,
    ``max_samples=``, ``features=frozenset({...})``.
    """
    opts = options or DatabaseOptions()
    tsdb_opts, engine_opts = opts.tsdb, opts.engine
    for key, value in overrides.items():
        key = _ALIASES.get(key, key)
        if key in DBOptions.__dataclass_fields__:
            tsdb_opts = replace(tsdb_opts, **{key: value})
        elif key in EngineOptions.__dataclass_fields__:
            engine_opts = replace(engine_opts, **{key: value})
        else:
            raise TypeError(f"open() got an unknown option {key!r}")
    p = Path(path)
    keep_freed_memory()  # large query temporaries reuse heap memory (see util/malloc.py)
    return Database(open_db(p, tsdb_opts), Engine(engine_opts), p)
