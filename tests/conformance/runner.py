"""Execute test scripts against a real database opened with ``signalfire.open``.

One :class:`ScriptRunner` per ``.test`` file. Evals never change storage, so the state an
eval sees is exactly the loads since the last ``clear`` before it; the runner keeps one
open database per file and replays only what is missing, which lets pytest run every
eval as its own test (in order, or any order after a rebuild).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import signalfire
from conformance.compare import Outcome, check_eval
from conformance.notation import Histogram
from conformance.script import Clear, Command, Eval, Load, parse_file
from shared_data import CONFORMANCE
from signalfire.database import ALL_PROMQL_FEATURES
from signalfire.labels import Labels

CONFORMANCE_DIR = CONFORMANCE
PROMQLTEST_DIR = CONFORMANCE_DIR / "promqltest"

#: A.12: everything the upstream test engine turns on (the library's list of those flags).
FEATURES = ALL_PROMQL_FEATURES
LOOKBACK_MS = 5 * 60_000
MAX_SAMPLES = 10_000
#: Loads may reach back before earlier loads of other series; upstream's test storage takes
#: them, so the head must too. Retention must never delete test data.
DB_OPTIONS: dict[str, Any] = {
    "out_of_order_time_window": 100 * 365 * 86_400_000,
    "retention_ms": 0,
    "fsync": "never",
}
#: A.11.2 skips range mode for queries whose value depends on the query range.
_RANGE_DEPENDENT = ("start()", "end()", "range()", "step()")


def promqltest_files() -> list[Path]:
    """Every ``*.test`` file; fails loudly when the shared conformance data is missing."""
    if not PROMQLTEST_DIR.is_dir():
        raise FileNotFoundError(f"conformance data not found at {PROMQLTEST_DIR.resolve()}")
    files = sorted(PROMQLTEST_DIR.glob("*.test"))
    if not files:
        raise FileNotFoundError(f"no *.test files in {PROMQLTEST_DIR.resolve()}")
    return files


def open_database(path: Path) -> Any:
    """A database configured as upstream's test engine (A.12)."""
    return signalfire.open(
        path, features=FEATURES, lookback_delta_ms=LOOKBACK_MS, max_samples=MAX_SAMPLES, **DB_OPTIONS
    )


@dataclass(slots=True)
class CaseResult:
    reasons: list[str]
    native_histogram: str = ""  # why the case counts as a native-histogram case ("" if not)


@dataclass(slots=True)
class Segment:
    """What a case can see: the loads after the last ``clear`` before it."""

    start: int  # index of the first command after the clear
    loads: list[Load] = field(default_factory=list)

    def histogram_names(self) -> set[str]:
        return set().union(*(ld.histogram_metric_names() for ld in self.loads)) if self.loads else set()

    @property
    def has_histograms(self) -> bool:
        return any(ld.has_histograms for ld in self.loads)


_NAMELESS_SELECTOR = re.compile(r"(?:^|[^A-Za-z0-9_:\"'`}\]])\s*\{")


def native_histogram_reason(ev: Eval, seg: Segment) -> str:
    """Why ``ev`` depends on native histograms, or "" when it does not.

    A case depends on them when its expectation spells a histogram, or when the storage it
    sees holds histogram samples (``{{...}}`` or ``load_with_nhcb``) that its query may
    select: a histogram metric named in the query, or a selector without a metric name.
    """
    if ev.expects_histograms:
        return "expected result contains native histograms"
    if not seg.has_histograms:
        return ""
    for name in sorted(seg.histogram_names()):
        if re.search(rf"(?<![A-Za-z0-9_:]){re.escape(name)}(?![A-Za-z0-9_:])", ev.expr):
            return f"query selects {name}, loaded with native histogram samples"
    if _NAMELESS_SELECTOR.search(ev.expr) or "__name__" in ev.expr:
        return "query selects by labels only while native histogram samples are loaded"
    return ""


class ScriptRunner:
    """Runs the evals of one file; keeps one open database for the current segment."""

    def __init__(self, path: Path, tmp_root: Path) -> None:
        self.path = path
        self.name = path.name
        self.commands: list[Command] = parse_file(path)
        self.tmp_root = tmp_root
        self.db: Any = None
        self.db_dir: Path | None = None
        self.segment_start = -1
        self.applied = 0  # commands [segment_start, applied) are in the open database
        self.load_errors: list[str] = []

    def evals(self) -> list[tuple[int, Eval]]:
        return [(i, c) for i, c in enumerate(self.commands) if isinstance(c, Eval)]

    def segment_of(self, index: int) -> Segment:
        start = 0
        for i in range(index):
            if isinstance(self.commands[i], Clear):
                start = i + 1
        seg = Segment(start)
        seg.loads = [c for c in self.commands[start:index] if isinstance(c, Load)]
        return seg

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.db_dir is not None:
            shutil.rmtree(self.db_dir, ignore_errors=True)
            self.db_dir = None

    def _reach(self, index: int) -> None:
        """Make the open database hold exactly the loads a command at ``index`` sees."""
        seg = self.segment_of(index)
        if self.db is None or seg.start != self.segment_start or self.applied > index:
            self.close()
            self.db_dir = Path(tempfile.mkdtemp(prefix=self.name + "-", dir=self.tmp_root))
            self.db = open_database(self.db_dir)
            self.segment_start = self.applied = seg.start
            self.load_errors = []
        for cmd in self.commands[self.applied : index]:
            if isinstance(cmd, Load):
                self._load(cmd)
        self.applied = index

    def _load(self, load: Load) -> None:
        """Append one load block as one batch (histogram positions are skipped)."""
        labels: list[Labels] = []
        series_idx: list[np.ndarray] = []
        ts: list[np.ndarray] = []
        values: list[np.ndarray] = []
        sts: list[np.ndarray] = []
        any_st = False
        for s in load.series:
            pos = [i for i, v in enumerate(s.items) if v is not None and not isinstance(v, Histogram)]
            if not pos:
                continue
            labels.append(s.labels)
            series_idx.append(np.full(len(pos), len(labels) - 1, np.int64))
            ts.append(np.asarray(pos, np.int64) * load.interval_ms)
            values.append(np.asarray([s.items[i] for i in pos], np.float64))
            st = s.st or [None] * len(s.items)
            any_st |= s.st is not None
            sts.append(
                np.asarray([0 if st[i] is None else i * load.interval_ms + st[i] for i in pos], np.int64)
            )
        if not labels:
            return
        idx = np.concatenate(series_idx)
        t = np.concatenate(ts)
        v = np.concatenate(values)
        order = np.lexsort((idx, t))  # time order across series, like a stream of scrapes
        with self.db.appender() as app:
            refs = np.asarray(app.refs(labels), np.int64)[idx[order]]
            if any_st:
                stats = app.append_batch(refs, t[order], v[order], st=np.concatenate(sts)[order])
            else:
                stats = app.append_batch(refs, t[order], v[order])
        rejected = getattr(stats, "rejected", 0)
        if rejected:
            self.load_errors.append(
                f"load at line {load.line}: storage rejected {rejected} samples ({stats})"
            )

    # ------------------------------------------------------------------ evaluation

    def run_case(self, index: int, range_check: bool = True, at_check: bool = True) -> CaseResult:
        ev = self.commands[index]
        assert isinstance(ev, Eval)
        seg = self.segment_of(index)
        nh = native_histogram_reason(ev, seg)
        self._reach(index)
        reasons = list(self.load_errors)
        out = self._query(ev)
        reasons += check_eval(ev, out)
        if not reasons and range_check and _range_mode_applies(ev):
            reasons += [f"[range mode, A.11.2] {r}" for r in self._range_mode(ev)]
        if not reasons and at_check and _at_check_applies(ev):
            reasons += self._at_invariance(ev)
        return CaseResult(reasons, nh)

    def _query(self, ev: Eval) -> Outcome:
        if ev.instant:
            at = ev.range_vector[1] if ev.range_vector else ev.end_ms
            return self._run(lambda: self.db.query(ev.expr, at / 1000))
        return self._run(
            lambda: self.db.query_range(ev.expr, ev.start_ms / 1000, ev.end_ms / 1000, ev.step_ms / 1000)
        )

    @staticmethod
    def _run(query: Callable[[], Any]) -> Outcome:
        try:
            res = query()
        except signalfire.SignalfireError as err:
            return Outcome(error=str(err))
        except Exception as err:  # a crash is a bug, never an accepted failure
            return Outcome(kind=f"crash ({type(err).__name__}: {err})")
        return outcome_from_result(res)

    def _at_invariance(self, ev: Eval) -> list[str]:
        """A.11.1: with ``@ t`` on every selector, the query gives the same answer at any time."""
        from signalfire.promql import parse_expr, to_string

        t = ev.range_vector[1] if ev.range_vector else ev.end_ms
        try:
            text = to_string(pin_selectors(parse_expr(ev.expr, features=FEATURES), t))
        except Exception as err:
            return [f"[@ invariance, A.11.1] cannot re-print the query: {type(err).__name__}: {err}"]
        times = [-1000, 0, 1000] if t == 0 else [-10 * t, 0, t // 5, t, 10 * t]
        reasons: list[str] = []
        for at in times:
            out = self._run(lambda at=at: self.db.query(text, at / 1000))
            for r in check_eval(ev, out, ignore_positions=True):
                reasons.append(f"[@ invariance, A.11.1] {text} evaluated at {at / 1000:g}s: {r}")
            if reasons:
                break
        if not reasons and _range_mode_applies(ev):
            # Pinned by @, the query is step-invariant: every step of a range query around t
            # must meet the instant expectation, not only the one at t.
            for step_t in (t - 60_000, t, t + 60_000):
                for r in self._range_mode(ev, text, step_t):
                    reasons.append(f"[@ invariance, range mode] {text} at {step_t / 1000:g}s: {r}")
        return reasons

    def _range_mode(self, ev: Eval, text: str | None = None, at: int | None = None) -> list[str]:
        """A.11.2: the query as a range query over t-1m..t+1m; the point at ``at`` (default t)
        must meet the instant expectation."""
        t = ev.end_ms
        at = t if at is None else at
        try:
            res = self.db.query_range(text or ev.expr, (t - 60_000) / 1000, (t + 60_000) / 1000, 60)
        except Exception as err:
            return [f"range query failed: {type(err).__name__}: {err}"]
        out = outcome_from_result(res)
        if out.kind != "matrix":
            return [f"range query returned {out.kind}"]
        at_t = [(lb, [p for p in pts if p[0] == at]) for lb, pts in out.series]
        at_t = [(lb, pts) for lb, pts in at_t if pts]
        if ev.scalar is not None:
            if len(at_t) != 1:
                return [f"expected one series for a scalar, got {len(at_t)}"]
            inst = Outcome(kind="scalar", scalar=at_t[0][1][0][1])
        else:
            inst = Outcome(kind="vector", series=at_t)
        return check_eval(ev, inst, check_annotations=False)


def pin_selectors(expr: Any, at_ms: int) -> Any:
    """Add ``@ at_ms`` as upstream's runner does for A.11.1, in place.

    Every vector selector, range selector and subquery without ``@`` gets one; a subquery
    (whether it had ``@`` or just got it) is a boundary: what is inside it is left alone,
    because pinning the inner selectors would change what the subquery computes.
    """
    from signalfire.promql import ast, iter_children

    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.SubqueryExpr):
            if node.at is ast.AtKind.NONE:
                node.at, node.at_ms = ast.AtKind.TIMESTAMP, at_ms
            continue
        if isinstance(node, ast.MatrixSelector):
            node = node.vector
        if isinstance(node, ast.VectorSelector):
            if node.at is ast.AtKind.NONE:
                node.at, node.at_ms = ast.AtKind.TIMESTAMP, at_ms
            continue
        stack.extend(iter_children(node))
    return expr


_TIME_DEPENDENT_CALL = re.compile(
    r"\b(?:time|timestamp|predict_linear|minute|hour|day_of_week|day_of_month|day_of_year"
    r"|days_in_month|month|year|start|end|range|step)\s*\("
)


def _at_check_applies(ev: Eval) -> bool:
    """A.11.1 skips expressions whose value depends on the evaluation time itself."""
    return ev.instant and _TIME_DEPENDENT_CALL.search(ev.expr) is None


def _range_mode_applies(ev: Eval) -> bool:
    if not ev.instant or ev.expects_fail or ev.ordered or ev.string is not None or ev.range_vector:
        return False
    return not any(f in ev.expr for f in _RANGE_DEPENDENT)


def outcome_from_result(res: Any) -> Outcome:
    """Adapt the database's QueryResult to the comparison's plain :class:`Outcome`."""
    kind = str(res.result_type)
    kind = kind.rsplit(".", 1)[-1].lower()
    out = Outcome(kind=kind, warnings=list(res.warnings or ()), infos=list(res.infos or ()))
    if kind == "scalar":
        out.scalar = float(res.scalar)
    elif kind == "string":
        out.string = str(res.string)
    elif kind == "vector":
        t = int(res.timestamps[0]) if len(res.timestamps) else 0
        values, present = np.asarray(res.values), np.asarray(res.present)
        for i, lb in enumerate(res.labels):
            if present[i].any():
                j = int(np.argmax(present[i]))
                out.series.append((lb, [(t, float(values[i, j]))]))
    elif kind == "matrix" and getattr(res, "series", None) is not None:
        ss = res.series
        for i, lb in enumerate(ss.labels):
            a, b = int(ss.offsets[i]), int(ss.offsets[i + 1])
            out.series.append((lb, list(zip(ss.ts[a:b].tolist(), ss.values[a:b].tolist()))))
    elif kind == "matrix":
        ts = np.asarray(res.timestamps).tolist()
        values, present = np.asarray(res.values), np.asarray(res.present)
        for i, lb in enumerate(res.labels):
            cols = np.flatnonzero(present[i]).tolist()
            out.series.append((lb, [(ts[j], float(values[i, j])) for j in cols]))
    return out
