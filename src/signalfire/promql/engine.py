"""The query engine: parse, evaluate at all steps at once, shape the result.

Instant and range queries share one code path: an instant query is a range query
with a single step. The engine never owns storage; it takes a ``Queryable`` per
query (as Prometheus's ``NewInstantQuery``/``NewRangeQuery``) and closes every
querier it opened before returning.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.errors import QueryError
from signalfire.labels import EMPTY_LABELS, Labels, Matcher
from signalfire.promql import ast
from signalfire.promql.evaluator import Evaluator
from signalfire.promql.features import DELAYED_NAME_REMOVAL
from signalfire.promql.limits import QueryLimits
from signalfire.promql.names import check_unique, merge_same_labels, strip_name
from signalfire.promql.result import QueryResult
from signalfire.promql.stats import QueryStats
from signalfire.promql.values import (
    EvalContext,
    EvalSettings,
    RangeWindows,
    ScalarSeries,
    StepMatrix,
    StringValue,
    Value,
)
from signalfire.storage import Annotations, SeriesSet
from signalfire.storage.interface import Querier, Queryable, SelectHints
from signalfire.util import deadline as _deadline
from signalfire.util.deadline import Deadline
from signalfire.util.ragged import ragged_arange


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Engine settings; flag names in comments.

    ``lookback_delta_ms`` (``--query.lookback-delta``), ``max_samples``
    (``--query.max-samples``), ``timeout_s`` (``--query.timeout``), ``features``
    (``--enable-feature``), ``query_log_file`` (``query_log_file`` in the global config),
    ``default_eval_interval_ms`` (the subquery step when ``[d:]`` omits it), ``max_steps``
    (the most evaluation times of a query or of one subquery; refused with
    :class:`~signalfire.errors.TooManyStepsError` before they are made, 0: no limit),
    ``parse_cache_size`` (how many parsed query texts the engine keeps, least recently used
    first out, so a rule or a dashboard refresh does not parse again; 0: no cache).
    """

    lookback_delta_ms: int = 300_000
    max_samples: int = 50_000_000
    timeout_s: float = 120
    features: frozenset[str] = frozenset()
    enable_at_modifier: bool = True
    enable_negative_offset: bool = True
    query_log_file: str | None = None
    default_eval_interval_ms: int = 60_000
    max_steps: int = 11_000_000
    parse_cache_size: int = 1024


#: Longest query text the parse cache keeps (characters); a longer one is parsed each time.
MAX_CACHED_TEXT = 16_384


def _parse_fresh(text: str, features: frozenset[str]) -> ast.Expr:
    """A newly built tree for ``text``: the parser with ``features`` enabled."""
    from signalfire.promql.parser import parse_expr

    return parse_expr(text, features=features)


class _Selector:
    """Opens queriers on demand and closes them all when the query ends.

    Keeps every selection's warnings (a secondary store that failed), so they reach the
    result whichever evaluation path made the selection.
    Every select gets the query's deadline, so a timeout or a cancel stops storage
    reads too.
    """

    def __init__(self, queryable: Queryable, deadline: Deadline):
        self.queryable = queryable
        self.deadline = deadline
        self.queriers: list[Querier] = []
        self.warnings = Annotations()

    def __call__(self, matchers: Sequence[Matcher], hints: SelectHints) -> SeriesSet:
        mint = hints.start if hints.start is not None else 0
        maxt = hints.end if hints.end is not None else mint
        self.deadline.check()
        q = self.queryable.querier(mint, maxt)
        self.queriers.append(q)
        ss = q.select(matchers, hints, self.deadline)
        self.warnings.merge(ss.warnings)
        return ss

    def close(self) -> None:
        for q in self.queriers:
            q.close()
        self.queriers.clear()


class Engine:
    """Evaluates PromQL over any ``Queryable``. Thread-safe: each query has its own state."""

    def __init__(self, options: EngineOptions | None = None):
        self.options = options or EngineOptions()
        self._log_lock = threading.Lock()
        #: Parsed trees by ``(text, features)``, bounded, least recently used out first
        #: (``functools.lru_cache`` is thread-safe). Errors are not kept: a bad query is
        #: parsed again each time, as its error must be raised each time. The trees are
        #: shared between queries, so nothing may change them after the parse: the
        #: evaluator only reads them, and :meth:`parse` hands callers their own tree.
        self._parse_cached = functools.lru_cache(maxsize=max(0, self.options.parse_cache_size))(_parse_fresh)

    # ------------------------------------------------------------ public API

    def parse(self, expr: str) -> ast.Expr:
        """Parse ``expr`` with this engine's enabled features (raises PromQLParseError).

        Always a new tree, never the cached one the queries share, so the caller may change
        it (:func:`~signalfire.promql.add_at_modifiers` does, in place).
        """
        return _parse_fresh(expr, self.options.features)

    def _parsed(self, expr: str) -> ast.Expr:
        """The shared, read-only tree of ``expr`` (see ``_parse_cached``); texts longer than
        :data:`MAX_CACHED_TEXT` are parsed each time, so the bound on entries bounds memory."""
        if len(expr) > MAX_CACHED_TEXT:
            return _parse_fresh(expr, self.options.features)
        return self._parse_cached(expr, self.options.features)

    def instant_query(
        self,
        queryable: Queryable,
        expr: str,
        t_ms: int,
        *,
        cancel: threading.Event | None = None,
        lookback_delta_ms: int | None = None,
    ) -> QueryResult:
        """Evaluate ``expr`` at ``t_ms``: a vector, scalar, string, or (for a range-vector
        expression) a matrix with the raw samples of each series' window.

        Setting ``cancel`` from another thread stops the query with QueryCanceledError;
        ``lookback_delta_ms`` overrides the engine's lookback for this query (the API's
        ``lookback_delta`` parameter).
        """
        t0 = time.perf_counter()
        node = self._parsed(expr)
        parse_s = time.perf_counter() - t0
        return self._run(
            queryable, node, expr, int(t_ms), int(t_ms), 0, True, parse_s, cancel, lookback_delta_ms
        )

    def range_query(
        self,
        queryable: Queryable,
        expr: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        *,
        cancel: threading.Event | None = None,
        lookback_delta_ms: int | None = None,
    ) -> QueryResult:
        """Evaluate ``expr`` at ``start, start+step, ..., <= end``; always a matrix."""
        if step_ms <= 0:
            raise QueryError(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        if end_ms < start_ms:
            raise QueryError("end timestamp must not be before start time")
        t0 = time.perf_counter()
        node = self._parsed(expr)
        parse_s = time.perf_counter() - t0
        return self._run(
            queryable,
            node,
            expr,
            int(start_ms),
            int(end_ms),
            int(step_ms),
            False,
            parse_s,
            cancel,
            lookback_delta_ms,
        )

    def query_ast(
        self,
        queryable: Queryable,
        node: ast.Expr,
        start_ms: int,
        end_ms: int,
        step_ms: int = 0,
        text: str = "",
    ) -> QueryResult:
        """Evaluate an already-parsed tree (instant when ``start_ms == end_ms`` and step 0)."""
        instant = step_ms == 0
        return self._run(queryable, node, text, int(start_ms), int(end_ms), int(step_ms), instant, 0.0)

    # ------------------------------------------------------------ lifecycle

    def _run(
        self,
        queryable: Queryable,
        node: ast.Expr,
        text: str,
        start: int,
        end: int,
        step: int,
        instant: bool,
        parse_s: float,
        cancel: threading.Event | None = None,
        lookback_delta_ms: int | None = None,
    ) -> QueryResult:
        opts = self.options
        lookback = opts.lookback_delta_ms if not lookback_delta_ms else int(lookback_delta_ms)
        t_begin = time.perf_counter()
        limits = QueryLimits(
            max_samples=opts.max_samples,
            max_steps=opts.max_steps,
            deadline=Deadline.after(opts.timeout_s, cancel),
        )
        if not (MIN_TIME <= start <= MAX_TIME and MIN_TIME <= end <= MAX_TIME):
            raise QueryError("query time out of range: times are int64 milliseconds")
        limits.check_steps(1 if instant else (end - start) // step + 1)
        ts = np.array([start], np.int64) if instant else np.arange(start, end + 1, step, dtype=np.int64)
        delayed = DELAYED_NAME_REMOVAL in opts.features
        settings = EvalSettings(
            start=start,
            end=end,
            step=step,
            query=text,
            lookback_ms=lookback,
            features=opts.features,
            delayed_name_removal=delayed,
            default_step_ms=opts.default_eval_interval_ms,
            enable_at_modifier=opts.enable_at_modifier,
            enable_negative_offset=opts.enable_negative_offset,
        )
        ctx = EvalContext(ts=ts, start=start, end=end, step=step, settings=settings)
        stats = QueryStats(timestamps=ts, samples_per_step=np.zeros(len(ts), np.int64))
        stats.parse_s = parse_s
        selector = _Selector(queryable, limits.deadline)
        ev = Evaluator(selector, limits, stats)
        try:
            t_eval = time.perf_counter()
            with _deadline.active(limits.deadline):
                value = ev.evaluate(node, ctx)
            stats.eval_s = time.perf_counter() - t_eval
            result = _shape(value, ts, instant, delayed)
        finally:
            selector.close()
        stats.peak_samples = max(stats.peak_samples, limits.peak)
        stats.total_s = time.perf_counter() - t_begin + parse_s
        result.stats = stats
        ctx.annotations.merge(selector.warnings)
        result.warnings = ctx.annotations.warning_list()
        result.infos = ctx.annotations.info_list()
        if opts.query_log_file:
            self._log(text, start, end, step, instant, stats)
        return result

    def _log(self, text: str, start: int, end: int, step: int, instant: bool, stats: QueryStats) -> None:
        """Append one JSON line in Prometheus's query-log shape."""

        def iso(t_ms: int) -> str:
            return (
                _dt.datetime.fromtimestamp(t_ms / 1000, _dt.UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            )

        params: dict[str, Any] = {"query": text, "start": iso(start), "end": iso(end), "step": step // 1000}
        if instant:
            params = {"query": text, "start": iso(start), "end": iso(end), "step": 0}
        entry = {
            "params": params,
            "stats": {"timings": stats.to_json()["timings"], "samples": stats.to_json()["samples"]},
            "ts": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        line = json.dumps(entry, separators=(",", ":"))
        assert self.options.query_log_file is not None
        with self._log_lock, open(self.options.query_log_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")


# ---------------------------------------------------------------- result shaping


def _shape(value: Value, ts: np.ndarray, instant: bool, delayed: bool) -> QueryResult:
    """Turn the root value into a QueryResult, finishing delayed ``__name__`` removal."""
    T = len(ts)
    if isinstance(value, ScalarSeries):
        vals = np.asarray(value.values, np.float64).reshape(1, T)
        if instant:
            return QueryResult("scalar", [EMPTY_LABELS], vals, np.ones((1, T), np.bool_), ts)
        return QueryResult("matrix", [EMPTY_LABELS], vals, np.ones((1, T), np.bool_), ts)
    if isinstance(value, StringValue):
        if not instant:
            raise QueryError(
                'invalid expression type "string" for range query, must be Scalar or instant Vector'
            )
        return QueryResult(
            "string", [], np.empty((0, T)), np.zeros((0, T), np.bool_), ts, string_value=value.value
        )
    if isinstance(value, RangeWindows):
        if not instant:
            raise QueryError(
                'invalid expression type "range vector" for range query, must be Scalar or instant Vector'
            )
        return _matrix_of_windows(value, ts, delayed)
    assert isinstance(value, StepMatrix)
    sm = value
    if delayed and sm.drop_name is not None and sm.drop_name.any():
        labels = [strip_name(ls) if d else ls for ls, d in zip(sm.labels, sm.drop_name.tolist())]
        sm = StepMatrix(labels, sm.values, sm.present, None)
        if not instant:
            sm = merge_same_labels(sm)
    # Rows are gathered once, in their final order; an instant vector whose rows are all
    # present (the usual case) is passed on as it is.
    keep = sm.present.any(axis=1)
    rows: np.ndarray | None = None
    if keep.all():
        labels = list(sm.labels)
    else:
        rows = np.flatnonzero(keep)
        labels = [sm.labels[i] for i in rows.tolist()]
    if instant:
        check_unique(labels)
        if rows is None:
            return QueryResult("vector", labels, sm.values, sm.present, ts)
        return QueryResult("vector", labels, sm.values[rows], sm.present[rows], ts)
    order = sorted(range(len(labels)), key=labels.__getitem__)
    idx = np.asarray(order, np.int64)
    if rows is not None:
        idx = rows[idx]
    return QueryResult("matrix", [labels[i] for i in order], sm.values[idx], sm.present[idx], ts)


def _matrix_of_windows(rw: RangeWindows, ts: np.ndarray, delayed: bool) -> QueryResult:
    """An instant query of a range vector: each series' samples in its (single) window."""
    lo, hi = rw.lo[:, 0], rw.hi[:, 0]
    n = hi - lo
    keep = np.flatnonzero(n > 0)
    labels: list[Labels] = []
    for i in keep.tolist():
        ls = rw.labels[i]
        if rw.drop_name is not None and rw.drop_name[i]:
            ls = strip_name(ls)
        labels.append(ls)
    check_unique(labels)
    counts = n[keep]
    offsets = np.zeros(len(keep) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    idx = ragged_arange(lo[keep], counts)
    order = sorted(range(len(labels)), key=labels.__getitem__)
    if order != list(range(len(labels))):
        return _matrix_of_windows_sorted(labels, offsets, rw.ts[idx], rw.values[idx], order, ts)
    ss = SeriesSet(labels, offsets, rw.ts[idx], rw.values[idx])
    T = len(ts)
    return QueryResult(
        "matrix", labels, np.empty((len(labels), 0)), np.zeros((len(labels), T), np.bool_), ts, ss
    )


def _matrix_of_windows_sorted(
    labels: list[Labels],
    offsets: np.ndarray,
    sts: np.ndarray,
    svs: np.ndarray,
    order: list[int],
    ts: np.ndarray,
) -> QueryResult:
    from signalfire.storage.series_set import series_set_from_lists

    per_ts = [sts[offsets[i] : offsets[i + 1]] for i in range(len(labels))]
    per_vs = [svs[offsets[i] : offsets[i + 1]] for i in range(len(labels))]
    ss = series_set_from_lists(labels, per_ts, per_vs)
    T = len(ts)
    return QueryResult(
        "matrix", list(ss.labels), np.empty((len(labels), 0)), np.zeros((len(labels), T), np.bool_), ts, ss
    )
