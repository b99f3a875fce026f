"""The library object: one TSDB plus one PromQL engine, what ``signalfire.open()`` returns.

It stands above :mod:`signalfire.tsdb` and :mod:`signalfire.promql` so neither imports
the other. Two databases in one process share no state.

Reads go through a :class:`~signalfire.storage.fanout.FanoutStorage`: the tsdb is its
primary, and :meth:`Database.add_secondary` adds more stores (remote read, another
database) whose failures become warnings instead of errors.

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

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from signalfire._types import F64, I64, MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher
from signalfire.metrics import Registry
from signalfire.promql import (
    Engine,
    EngineOptions,
    QueryResult,
    check_resolution,
    features,
    parse_metric_selector,
)
from signalfire.storage import (
    Annotations,
    Appender,
    AppendStats,
    FanoutQuerier,
    FanoutStorage,
    Queryable,
    SeriesSet,
)
from signalfire.tsdb import DB, DBOptions, open_db
from signalfire.util.malloc import keep_freed_memory
from signalfire.util.timeutil import DurationLike, TimeLike, duration_to_ms, to_ms

if TYPE_CHECKING:
    import pandas as pd

#: Every feature flag the conformance suite turns on (defined in :mod:`signalfire.promql.features`).
ALL_PROMQL_FEATURES = features.CONFORMANCE


@dataclass(frozen=True, slots=True)
class DatabaseOptions:
    """Options of :func:`open`; ``tsdb`` and ``engine`` are passed through unchanged.

    ``keep_freed_memory`` tunes the C allocator of the whole process so large query
    temporaries reuse freed heap memory (:func:`signalfire.util.malloc.keep_freed_memory`):
    faster large queries for more resident memory. Off by default, because a library
    must not change process-wide settings its host did not ask for; a server or a
    benchmark that owns its process turns it on.
    """

    tsdb: DBOptions = field(default_factory=DBOptions)
    engine: EngineOptions = field(default_factory=EngineOptions)
    keep_freed_memory: bool = False


SeriesLike = Labels | Mapping[str, str]


def _as_labels(s: SeriesLike) -> Labels:
    return s if isinstance(s, Labels) else Labels.from_dict(s)


class Database:
    """A signalfire database opened on a folder: append, select, query, snapshot, close.

    Thread-safety: queries may run concurrently with appends; each ``appender()`` is
    used by one thread once.

    ``storage`` is what every read goes through: ``tsdb`` as the primary plus the
    secondaries of :meth:`add_secondary`. Writes, deletes, snapshots and compaction are the
    tsdb's alone.
    """

    def __init__(self, db: DB, engine: Engine, path: Path) -> None:
        self.tsdb = db
        self.storage = FanoutStorage(db)
        self.engine = engine
        self.path = path

    @property
    def metrics(self) -> Registry:
        """The registry of this database's self metrics (``signalfire_tsdb_*``; see
        ``docs/self-metrics.md``): its own unless one was given to :func:`open`."""
        return self.tsdb.metrics

    def render_metrics(self, *, openmetrics: bool = False) -> bytes:
        """The self metrics as a ``/metrics`` body: text format 0.0.4, or OpenMetrics."""
        return self.tsdb.metrics.render(openmetrics=openmetrics)

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

    def add_secondary(self, queryable: Queryable) -> None:
        """Read ``queryable`` beside the tsdb in every later select, label lookup and query.

        It is read on a best-effort basis, as Prometheus reads remote-read endpoints: its
        samples are merged with the tsdb's (the same sample from both is kept once; where
        they disagree at a timestamp, the tsdb's value wins), and when it fails its part is
        left out and the failure becomes a warning - in a query result's ``warnings``, a
        SeriesSet's ``warnings``, or a :class:`RuntimeWarning` from :meth:`label_names` and
        :meth:`label_values`. Timeouts and cancellation still fail the query. Another
        :class:`Database` is a Queryable; the caller keeps closing what it adds.
        """
        self.storage.add_secondary(queryable)

    def querier(self, mint: int = MIN_TIME, maxt: int = MAX_TIME) -> FanoutQuerier:
        """A storage querier over ``[mint, maxt]`` ms; close it when done. Its ``warnings``
        collect the failures of secondary stores (see :meth:`add_secondary`)."""
        return self.storage.querier(mint, maxt)

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
        """Label names of the matching series (of all series without a selector), sorted."""
        q = self.querier()
        try:
            names = q.label_names(self._matchers(selector) if selector else ())
        finally:
            q.close()
        _warn(q.warnings)
        return names

    def label_values(self, name: str, selector: str | Sequence[Matcher] = ()) -> list[str]:
        """Values of label ``name`` among the matching series, sorted."""
        q = self.querier()
        try:
            values = q.label_values(name, self._matchers(selector) if selector else ())
        finally:
            q.close()
        _warn(q.warnings)
        return values

    # ------------------------------------------------------------------ PromQL

    def query(self, expr: str, time: TimeLike) -> QueryResult:
        """Evaluate ``expr`` at one time (seconds since the epoch, datetime or datetime64)."""
        return self.engine.instant_query(self.storage, expr, to_ms(time))

    def query_range(self, expr: str, start: TimeLike, end: TimeLike, step: DurationLike) -> QueryResult:
        """Evaluate ``expr`` at ``start, start+step, ... <= end``.

        Refused as Prometheus's HTTP API refuses it (BadDataError) when that would be more
        than 11,000 points per series; see :func:`signalfire.promql.check_resolution`.
        """
        start_ms, end_ms, step_ms = to_ms(start), to_ms(end), duration_to_ms(step)
        check_resolution(start_ms, end_ms, step_ms)
        return self.engine.range_query(self.storage, expr, start_ms, end_ms, step_ms)

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


def _warn(annotations: Annotations) -> None:
    """Secondary stores' failures, for the calls whose result has no room for warnings."""
    for text in annotations.warning_list():
        warnings.warn(text, RuntimeWarning, stacklevel=3)


#: Friendlier spellings accepted by :func:`open`.
_ALIASES = {"out_of_order_time_window_ms": "out_of_order_time_window"}


def open(
    path: str | Path,
    options: DatabaseOptions | None = None,
    *,
    registry: Registry | None = None,
    **overrides: Any,
) -> Database:
    """Open (or create) a database in ``path``.

    Keyword overrides go to the TSDB options or the engine options by name, e.g.
    ``retention_ms=``, ``out_of_order_time_window_ms=``, ``lookback_delta_ms=``,
    ``max_samples=``, ``features=frozenset({...})``, or to :class:`DatabaseOptions`
    (``keep_freed_memory=True``). Self metrics go into ``registry`` when given (a
    server's), else into the database's own (``Database.metrics``).
    """
    opts = options or DatabaseOptions()
    tsdb_opts, engine_opts = opts.tsdb, opts.engine
    for key, value in overrides.items():
        key = _ALIASES.get(key, key)
        if key == "keep_freed_memory":
            opts = replace(opts, keep_freed_memory=bool(value))
        elif key in DBOptions.__dataclass_fields__:
            tsdb_opts = replace(tsdb_opts, **{key: value})
        elif key in EngineOptions.__dataclass_fields__:
            engine_opts = replace(engine_opts, **{key: value})
        else:
            raise TypeError(f"open() got an unknown option {key!r}")
    p = Path(path)
    if opts.keep_freed_memory:
        keep_freed_memory()  # process-wide: large query temporaries reuse heap memory
    return Database(open_db(p, tsdb_opts, registry=registry), Engine(engine_opts), p)
