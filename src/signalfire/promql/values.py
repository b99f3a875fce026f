"""PromQL value types as the engine passes them between nodes.

Every expression is evaluated at all T steps of a query at once:

- :class:`StepMatrix` — an instant vector at every step: ``values[S, T]`` plus a
  separate ``present[S, T]`` mask (NaN is a legitimate value, never "absent").
- :class:`ScalarSeries` — a scalar at every step: ``values[T]``.
- :class:`StringValue` — a string literal.
- :class:`RangeWindows` — a range vector at every step, as ragged sample arrays plus
  window bounds per (series, step); what range functions (``rate``, ``*_over_time``) take.

An instant query is a range query with T = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.labels import Labels, Matcher
from signalfire.storage import Annotations, SeriesSet

if TYPE_CHECKING:
    from signalfire.promql import ast


@dataclass(slots=True)
class StepMatrix:
    """S series × T steps.

    ``labels[i]`` belongs to row i. ``drop_name[i]`` marks a series whose ``__name__``
    (with ``__type__``/``__unit__``) is to be removed; with delayed name removal the
    engine removes it at the end of evaluation, otherwise right away.
    """

    labels: list[Labels]
    values: F64  # float64[S, T]
    present: Bool  # bool[S, T]
    drop_name: Bool | None = None  # bool[S] or None (= all False)
    #: For the direct result of an instant selector: the timestamp (ms) of the sample
    #: picked at each step, so ``timestamp(x)`` can return it. None elsewhere.
    sample_ts: I64 | None = None  # int64[S, T] or None

    @property
    def num_series(self) -> int:
        return len(self.labels)

    @property
    def num_steps(self) -> int:
        return int(self.values.shape[1])

    def name_dropped(self) -> Bool:
        if self.drop_name is None:
            return np.zeros(len(self.labels), np.bool_)
        return self.drop_name

    @classmethod
    def empty(cls, T: int) -> StepMatrix:
        return cls([], np.empty((0, T), np.float64), np.zeros((0, T), np.bool_))

    def take(self, rows: Sequence[int] | I64) -> StepMatrix:
        """A new matrix with the given rows (copies)."""
        idx = np.asarray(rows, dtype=np.int64)
        dn = None if self.drop_name is None else self.drop_name[idx]
        return StepMatrix([self.labels[i] for i in idx.tolist()], self.values[idx], self.present[idx], dn)


@dataclass(slots=True)
class ScalarSeries:
    """A scalar at each of T steps."""

    values: F64  # float64[T]


@dataclass(slots=True)
class StringValue:
    value: str


@dataclass(slots=True)
class RangeWindows:
    """A range vector at every step.

    Samples of S series are ragged as in a SeriesSet (``offsets[S+1]``, ``ts[N]``,
    ``values[N]``, optional ``st[N]`` start timestamps). For series i at step j the window
    is the samples ``[lo[i, j], hi[i, j])`` (absolute indices into ``ts``/``values``), i.e.
    the samples with ``eval_ts[j] - range_ms < ts <= eval_ts[j]`` (left-open, 3.x).
    ``eval_ts`` already has offset and ``@`` applied. Stale markers have been removed.
    ``anchored``/``smoothed`` tell kernels which experimental selector modifier applies;
    with either, the window may also reach one sample outside, see the kernel docs.
    """

    labels: list[Labels]
    offsets: I64  # int64[S+1]
    ts: I64  # int64[N]
    values: F64  # float64[N]
    lo: I64  # int64[S, T]
    hi: I64  # int64[S, T]
    eval_ts: I64  # int64[T]
    range_ms: int
    st: I64 | None = None  # int64[N] start timestamps or None
    anchored: bool = False
    smoothed: bool = False
    drop_name: Bool | None = None  # bool[S]; set for subquery results whose name was dropped

    @property
    def num_series(self) -> int:
        return len(self.labels)


Value = StepMatrix | ScalarSeries | StringValue | RangeWindows


@dataclass(frozen=True, slots=True)
class EvalSettings:
    """Query-wide facts, the same for every node of one query, subqueries included.

    The one definition of these fields: each :class:`EvalContext` holds the query's
    settings, and the evaluator reads them from there. ``start``/``end``/``step`` are the
    query's own range, which ``step()``, ``range()`` and ``@ start()``/``@ end()`` refer to
    even inside a subquery (a context's fields of the same names are the range *it*
    evaluates). ``features`` holds the enabled ``--enable-feature`` names;
    ``default_step_ms`` is a subquery's step when it gives none.
    """

    start: int = 0
    end: int = 0
    step: int = 0
    query: str = ""
    lookback_ms: int = 5 * 60 * 1000
    features: frozenset[str] = frozenset()
    delayed_name_removal: bool = False
    default_step_ms: int = 60_000
    enable_at_modifier: bool = True
    enable_negative_offset: bool = True


_DEFAULT_SETTINGS = EvalSettings()


@dataclass(slots=True)
class EvalContext:
    """What a node evaluation may know: the steps it evaluates at, and the query's settings.

    ``ts`` are the T evaluation timestamps (ms) and ``start``/``end``/``step`` the range
    they came from: the query's, or a subquery's inner range (:meth:`with_steps`).
    ``annotations`` collects warnings and infos; use :meth:`warn`/:meth:`info` with the
    node that caused them so the ``(line:col)`` position is right.
    """

    ts: I64  # int64[T]
    start: int
    end: int
    step: int
    settings: EvalSettings = _DEFAULT_SETTINGS
    annotations: Annotations = field(default_factory=Annotations)
    #: Reads raw series from storage for functions that need it (``info()``):
    #: ``select(matchers, mint, maxt) -> SeriesSet``. Set by the engine.
    select: Callable[[Sequence[Matcher], int, int], SeriesSet] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def T(self) -> int:
        return len(self.ts)

    def with_steps(self, ts: I64, start: int, end: int, step: int) -> EvalContext:
        """The same query (settings, annotations, storage) evaluated at other steps."""
        return EvalContext(ts, start, end, step, self.settings, self.annotations, self.select, self.extra)

    def position(self, node: ast.Node | None) -> str:
        """``line:col`` (1-based, bytes) of ``node``'s start in the query text."""
        if node is None:
            return ""
        raw = self.settings.query.encode("utf-8", "surrogateescape")[: node.pos]
        line = raw.count(b"\n") + 1
        col = node.pos - (raw.rfind(b"\n") + 1) + 1
        return f"{line}:{col}"

    def warn(self, text: str, node: ast.Node | None = None) -> None:
        self.annotations.warn("PromQL warning: " + text, self.position(node))

    def info(self, text: str, node: ast.Node | None = None) -> None:
        self.annotations.info("PromQL info: " + text, self.position(node))
