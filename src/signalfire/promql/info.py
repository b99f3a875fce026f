"""``info(v, {selector})``: enrich series with data labels of info metrics (experimental).

As Prometheus's ``promql/info.go``: the info series (``target_info`` unless the
selector names others with ``__name__`` matchers) are selected by the identifying
labels ``instance`` and ``job`` of the base series, evaluated as instant vectors at
the base's reference time (the step time moved by the ``@``/offset of the first
selector in the argument), and joined per step on (info metric name, identifying
labels). Data labels not already on the base series are added; with data-label
matchers only the labels they name are. A base series without a matching info series
is kept unchanged unless some data-label matcher rejects the empty string.

The per-step join is vectorised per base series: the chosen info series for every
step is an integer array, and each distinct combination becomes one output series.
"""

from __future__ import annotations

import numpy as np

from signalfire._types import I64, is_stale
from signalfire.errors import QueryError
from signalfire.labels import Labels
from signalfire.labels.labels import METRIC_NAME
from signalfire.labels.matcher import Matcher, MatchType
from signalfire.promql import ast
from signalfire.promql.values import EvalContext, StepMatrix
from signalfire.util.ragged import searchsorted_ragged

TARGET_INFO = "target_info"
IDENTIFYING_LABELS = ("instance", "job")


def _first_selector_path(e: ast.Expr) -> list[ast.Expr]:
    """Nodes from ``e`` down to the first vector selector, in pre-order (Prometheus Inspect)."""
    if isinstance(e, ast.VectorSelector):
        return [e]
    children: list[ast.Expr] = []
    if isinstance(e, ast.MatrixSelector):
        children = [e.vector]
    elif isinstance(e, ast.SubqueryExpr | ast.ParenExpr | ast.UnaryExpr):
        children = [e.expr]
    elif isinstance(e, ast.BinaryExpr):
        children = [e.lhs, e.rhs]
    elif isinstance(e, ast.AggregateExpr):
        children = [c for c in (e.param, e.expr) if c is not None]
    elif isinstance(e, ast.Call):
        children = list(e.args)
    for c in children:
        path = _first_selector_path(c)
        if path:
            return [e, *path]
    return []


def reference_times(expr: ast.Expr, ctx: EvalContext) -> I64:
    """When the base samples were taken: step times with the ``@`` and offsets on the way
    to the first selector applied (an inner ``@`` overrides, offsets add up)."""
    t = ctx.ts.astype(np.int64).copy()
    for n in _first_selector_path(expr):
        if not isinstance(n, ast.VectorSelector | ast.SubqueryExpr):
            continue
        if n.at is ast.AtKind.TIMESTAMP:
            t[:] = n.at_ms
        elif n.at is ast.AtKind.START:
            t[:] = ctx.start
        elif n.at is ast.AtKind.END:
            t[:] = ctx.end
        t -= ast.eval_duration(n.offset, ctx.step, ctx.end - ctx.start)
    return t


def _regex_quote(v: str) -> str:
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in v)


def info(node: ast.Call, base: StepMatrix, ctx: EvalContext) -> StepMatrix:
    data_matchers: dict[str, list[Matcher]] = {}
    name_matchers: list[Matcher] = []
    if len(node.args) > 1:
        sel = node.args[1]
        while isinstance(sel, ast.ParenExpr):
            sel = sel.expr
        if not isinstance(sel, ast.VectorSelector):
            raise QueryError("expected label selector as second argument of info()")
        for m in sel.matchers:
            data_matchers.setdefault(m.name, []).append(m)
            if m.name == METRIC_NAME:
                name_matchers.append(m)
    else:
        name_matchers = [Matcher.equal(METRIC_NAME, TARGET_INFO)]

    # Only negative __name__ matchers say which info metrics to leave out; the candidates
    # are still the info metrics, named ``*_info``.
    if name_matchers and all(m.is_negative for m in name_matchers):
        implicit = Matcher(MatchType.REGEX, METRIC_NAME, ".+_info")
        name_matchers.append(implicit)
        data_matchers[METRIC_NAME].append(implicit)
    # Info series themselves are passed through, never enriched.
    ignored = np.fromiter(
        (
            bool(name_matchers) and all(m.matches(ls.get(METRIC_NAME)) for m in name_matchers)
            for ls in base.labels
        ),
        np.bool_,
        base.num_series,
    )
    has_name_matcher = METRIC_NAME in data_matchers
    id_values: dict[str, set[str]] = {}
    for ls, ign in zip(base.labels, ignored.tolist()):
        if ign:
            continue
        for lname in IDENTIFYING_LABELS:
            v = ls.get(lname)
            if v:
                id_values.setdefault(lname, set()).add(v)
    select_matchers = [m for ms in data_matchers.values() for m in ms]
    data_matchers.pop(METRIC_NAME, None)

    info_labels: list[Labels] = []
    info_pick = np.zeros((0, ctx.T), np.int64)  # sample timestamp per (info series, step), -1 absent
    if id_values and ctx.select is not None:
        ms = [
            Matcher(MatchType.REGEX, n, "|".join(_regex_quote(v) for v in sorted(vals)))
            for n, vals in id_values.items()
        ]
        ms += select_matchers
        if not has_name_matcher:
            ms.insert(0, Matcher.equal(METRIC_NAME, TARGET_INFO))
        ref = reference_times(node.args[0], ctx)
        ss = ctx.select(ms, int(ref.min()) - ctx.settings.lookback_ms + 1, int(ref.max()))
        info_labels = list(ss.labels)
        info_pick = _instant_timestamps(ss.offsets, ss.ts, ss.values, ref, ctx.settings.lookback_ms)
    return _combine(base, ignored, info_labels, info_pick, data_matchers)


def instant_indices(offsets: I64, ts: I64, values: np.ndarray, ref: I64, lookback_ms: int) -> I64:
    """``int64[S, T]``: index of the sample an instant selector picks for each series at
    each reference time (newest in ``(t - lookback, t]``, not a stale marker), else -1."""
    S = len(offsets) - 1
    if S == 0 or len(ts) == 0:
        return np.full((S, len(ref)), -1, np.int64)
    idx = searchsorted_ragged(offsets, ts, ref, "right") - 1
    valid = idx >= offsets[:-1, None]
    safe = np.where(valid, idx, 0)
    valid &= ts[safe] > ref[None, :] - lookback_ms
    valid &= ~is_stale(values[safe])
    return np.where(valid, safe, -1)


def _instant_timestamps(offsets: I64, ts: I64, values: np.ndarray, ref: I64, lookback_ms: int) -> I64:
    """Like :func:`instant_indices`, but the picked samples' timestamps (-1 when none)."""
    idx = instant_indices(offsets, ts, values, ref, lookback_ms)
    if len(ts) == 0:
        return idx
    return np.where(idx >= 0, ts[np.maximum(idx, 0)], -1)


def _signature(name: str, ls: Labels) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple((n, ls.get(n)) for n in IDENTIFYING_LABELS if ls.get(n))


def _combine(
    base: StepMatrix,
    ignored: np.ndarray,
    info_labels: list[Labels],
    info_pick: I64,
    data_matchers: dict[str, list[Matcher]],
) -> StepMatrix:
    T = base.values.shape[1]
    # For each signature (info name + identifying labels), the newest info series per step.
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]] = {}
    for i, ls in enumerate(info_labels):
        groups.setdefault(_signature(ls.get(METRIC_NAME), ls), []).append(i)
    chosen: dict[tuple[str, tuple[tuple[str, str], ...]], I64] = {}
    for sig, members in groups.items():
        member_ts = info_pick[members]  # [m, T]
        best = member_ts.argmax(axis=0)
        best_ts = member_ts[best, np.arange(T)]
        ties = (member_ts == best_ts[None, :]).sum(axis=0) > 1
        if (ties & (best_ts >= 0)).any():
            j = int(np.flatnonzero(ties & (best_ts >= 0))[0])
            tied = np.flatnonzero(member_ts[:, j] == best_ts[j])[:2].tolist()
            dup = [info_labels[members[k]] for k in tied]
            raise QueryError(
                f"found duplicate series for info metric: existing {dup[0]} @ {best_ts[j]}, "
                f"new {dup[1]} @ {best_ts[j]}"
            )
        chosen[sig] = np.where(best_ts >= 0, np.asarray(members, np.int64)[best], -1)
    info_names = sorted({sig[0] for sig in groups})
    must_match = any(not m.matches("") for ms in data_matchers.values() for m in ms)

    out_labels: list[Labels] = []
    out_rows: list[tuple[int, np.ndarray]] = []  # (base row, step mask)
    drop = base.name_dropped()
    out_drop: list[bool] = []
    for r, ls in enumerate(base.labels):
        if ignored[r]:
            out_labels.append(ls)
            out_rows.append((r, base.present[r]))
            out_drop.append(bool(drop[r]))
            continue
        picks = [chosen[s] for s in (_signature(n, ls) for n in info_names) if s in chosen]
        combo = np.stack(picks) if picks else np.full((1, T), -1, np.int64)
        # Each distinct combination of info series over the steps is one output series.
        keys, inverse = np.unique(combo.T, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for k, key in enumerate(keys):
            steps = base.present[r] & (inverse == k)
            if not steps.any():
                continue
            matched = [int(i) for i in key.tolist() if i >= 0]
            if not matched and must_match:
                continue
            out_labels.append(_enrich(ls, [info_labels[i] for i in matched], data_matchers))
            out_rows.append((r, steps))
            out_drop.append(bool(drop[r]))
    return _assemble(base, out_labels, out_rows, out_drop)


def _enrich(ls: Labels, infos: list[Labels], data_matchers: dict[str, list[Matcher]]) -> Labels:
    added: dict[str, str] = {}
    have = dict(ls)
    for info_ls in infos:
        for n, v in info_ls:
            if n == METRIC_NAME or (data_matchers and n not in data_matchers):
                continue
            if added.get(n, v) != v:
                raise QueryError(f"conflicting label: {n}")
            if n in have:
                continue
            added[n] = v
    if not added:
        return ls
    return Labels.from_dict({**have, **added})


def _assemble(
    base: StepMatrix, labels: list[Labels], rows: list[tuple[int, np.ndarray]], drop: list[bool]
) -> StepMatrix:
    T = base.values.shape[1]
    index: dict[Labels, int] = {}
    out_vals: list[np.ndarray] = []
    out_present: list[np.ndarray] = []
    out_drop: list[bool] = []
    for ls, (r, steps), d in zip(labels, rows, drop):
        k = index.get(ls)
        if k is None:
            index[ls] = len(out_vals)
            out_vals.append(np.where(steps, base.values[r], 0.0))
            out_present.append(steps.copy())
            out_drop.append(d)
            continue
        if (out_present[k] & steps).any():
            raise QueryError("vector cannot contain metrics with the same labelset")
        out_vals[k] = np.where(steps, base.values[r], out_vals[k])
        out_present[k] |= steps
    if not out_vals:
        return StepMatrix.empty(T)
    return StepMatrix(list(index), np.stack(out_vals), np.stack(out_present), np.asarray(out_drop, np.bool_))


def start_timestamp(node: ast.Call, ctx: EvalContext) -> StepMatrix:
    """``start_timestamp(selector)``: the start timestamp (seconds) of the sample the selector
    picks at each step, 0 when the sample has none. Only a plain selector carries start
    timestamps; any other expression yields nothing."""
    arg = node.args[0]
    while isinstance(arg, ast.ParenExpr):
        arg = arg.expr
    if not isinstance(arg, ast.VectorSelector) or ctx.select is None:
        return StepMatrix.empty(ctx.T)
    ref = reference_times(arg, ctx)
    ss = ctx.select(arg.matchers, int(ref.min()) - ctx.settings.lookback_ms + 1, int(ref.max()))
    idx = instant_indices(ss.offsets, ss.ts, ss.values, ref, ctx.settings.lookback_ms)
    present = idx >= 0
    st = ss.st if ss.st is not None else np.zeros(len(ss.ts), np.int64)
    vals = np.where(present, st[np.maximum(idx, 0)] / 1000.0, 0.0) if len(st) else np.zeros(idx.shape)
    rows = np.flatnonzero(present.any(axis=1))
    labels = [ss.labels[i] for i in rows.tolist()]
    return StepMatrix(labels, vals[rows], present[rows], np.ones(len(rows), np.bool_))
