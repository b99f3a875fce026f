"""Aggregation operators over the series axis, for all steps at once.

Rows get a group id from their grouping labels (a dict over series, never cells);
reductions are scatter-adds into [G, T] arrays, and the ordering operators
(``topk``, ``bottomk``, ``quantile``, ``limitk``) sort every step column at once with
rows kept contiguous per group.
"""

from __future__ import annotations

import hashlib

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.errors import QueryError
from signalfire.labels import METRIC_NAME, TYPE_LABEL, UNIT_LABEL, Labels, quote
from signalfire.promql import ast
from signalfire.promql.result import format_value
from signalfire.promql.values import EvalContext, ScalarSeries, StepMatrix, StringValue
from signalfire.promql.windows import kahan_inc
from signalfire.util import ragged
from signalfire.util.deadline import checkpoint

_NAME_LABELS = frozenset({METRIC_NAME, TYPE_LABEL, UNIT_LABEL})


def group_labels(node: ast.AggregateExpr, ls: Labels) -> Labels:
    """The labels a row contributes to its group's output series."""
    if node.without:
        drop = set(node.grouping) | _NAME_LABELS
        return Labels(tuple(p for p in ls if p[0] not in drop))
    keep = set(node.grouping)
    return Labels(tuple(p for p in ls if p[0] in keep))


def aggregate(node: ast.AggregateExpr, vec: StepMatrix, param: object, ctx: EvalContext) -> StepMatrix:
    """Evaluate ``node.op`` over ``vec``; ``param`` is the evaluated parameter, if any."""
    op = node.op
    keys = [group_labels(node, ls) for ls in vec.labels]
    ids, uniq = ragged.group_ids(keys)
    G = len(uniq)
    if op in ("topk", "bottomk", "limitk", "limit_ratio"):
        return _select_k(node, vec, ids, G, param, ctx)
    if op == "count_values":
        assert isinstance(param, StringValue)
        if not _valid_utf8(param.value):
            raise QueryError(f"invalid label name {quote(param.value)}")
        return _count_values(node, vec, ids, uniq, param.value)
    T = vec.values.shape[1]
    present = vec.present
    counts = ragged.group_count(ids, G, present)
    out_present = counts > 0
    if op == "sum":
        vals = kahan_group_sum(ids, G, vec.values, present)
    elif op == "avg":
        vals = _avg(ids, G, vec.values, present, counts)
    elif op == "count":
        vals = counts.astype(np.float64)
    elif op == "group":
        vals = np.ones((G, T), np.float64)
    elif op in ("min", "max"):
        red = np.fmax if op == "max" else np.fmin
        vals = ragged.group_reduce(red, ids, G, np.where(present, vec.values, np.nan), np.nan)
    elif op in ("stddev", "stdvar"):
        vals = _variance(ids, G, vec.values, present, counts)
        if op == "stddev":
            vals = np.sqrt(vals)
    elif op == "quantile":
        assert isinstance(param, ScalarSeries)
        vals = _quantile(ids, G, vec.values, present, counts, param.values, ctx, node)
    else:
        raise QueryError(f"unknown aggregation operator {op!r}")
    drop = None
    if not node.without and METRIC_NAME in node.grouping and vec.drop_name is not None:
        drop = np.zeros(G, np.bool_)
        np.logical_or.at(drop, ids, vec.drop_name)
    out = StepMatrix(list(uniq), vals, out_present, drop)
    return out


# ---------------------------------------------------------------- sums and moments


def kahan_group_sum(ids: I64, G: int, values: F64, present: Bool) -> F64:
    """Per-group sums with Neumaier-compensated summation, like Prometheus's ``kahanSumInc``.

    The plain scatter-add is exact enough unless large terms cancel; only the groups
    where that may matter are summed again, row by row in rank order (one numpy step
    per rank, vectorised over groups and steps).
    """
    masked = np.where(present, values, 0.0)
    plain = ragged.group_reduce(np.add, ids, G, masked)
    with np.errstate(all="ignore"):
        mag = ragged.group_reduce(np.add, ids, G, np.abs(masked))
        n = np.bincount(ids, minlength=G).astype(np.float64)[:, None]
        risky = np.isfinite(mag) & (mag * n * 2.0**-52 > np.abs(plain) * 1e-9)
    if not risky.any():
        return plain
    groups = np.flatnonzero(risky.any(axis=1))
    sel = np.isin(ids, groups)
    rows = np.flatnonzero(sel)
    gid = ids[rows]
    order = np.argsort(gid, kind="stable")
    rows, gid = rows[order], gid[order]
    starts = np.searchsorted(gid, groups)
    ends = np.searchsorted(gid, groups, side="right")
    s = np.zeros((len(groups), values.shape[1]), np.float64)
    c = np.zeros_like(s)
    with np.errstate(all="ignore"):
        for r in range(int((ends - starts).max())):
            if r & 63 == 63:  # one round per series of the largest group: check the deadline
                checkpoint()
            has = starts + r < ends
            gi = np.flatnonzero(has)
            s[gi], c[gi] = kahan_inc(masked[rows[starts[gi] + r]], s[gi], c[gi])
        fixed = np.where(np.isinf(s), s, s + c)
    plain[groups] = np.where(risky[groups], fixed, plain[groups])
    return plain


def _avg(ids: I64, G: int, values: F64, present: Bool, counts: I64) -> F64:
    """Direct mean (compensated sum / count); where the sum overflows on finite inputs,
    the mean of pre-divided values instead (Prometheus switches to an incremental mean)."""
    with np.errstate(all="ignore"):
        total = kahan_group_sum(ids, G, values, present)
        mean = total / counts
        overflow = np.isinf(total)
        if overflow.any():
            inf_in = np.zeros((G, values.shape[1]), np.bool_)
            np.logical_or.at(inf_in, ids, present & np.isinf(values))
            redo = overflow & ~inf_in
            if redo.any():
                scaled = values / np.maximum(counts[ids], 1)
                alt = kahan_group_sum(ids, G, scaled, present)
                mean = np.where(redo, alt, mean)
    return mean


def _variance(ids: I64, G: int, values: F64, present: Bool, counts: I64) -> F64:
    """Population variance by the shifted two-pass method.

    Values are first shifted by one member of their group (the group maximum), so equal
    inputs give exactly 0, as Prometheus's incremental (Welford) form does.
    """
    with np.errstate(all="ignore"):
        shift = ragged.group_reduce(np.fmax, ids, G, np.where(present, values, np.nan), np.nan)
        x = np.where(present, values - shift[ids], 0.0)
        mean = kahan_group_sum(ids, G, x, present) / counts
        dev = np.where(present, x - mean[ids], 0.0)
        return ragged.group_reduce(np.add, ids, G, dev * dev) / counts


# ---------------------------------------------------------------- ordering operators


def _sorted_columns(
    ids: I64, values: F64, present: Bool, descending: bool, nan_last: bool = True
) -> tuple[I64, I64]:
    """Row order per step column: by group, present rows first, then by value.

    NaN sorts after every number for topk/bottomk ("sorted away") and before every
    number for quantile, as Go's sort of Prometheus's heaps does; absent rows come last in
    their group, in no particular order. Returns ``order`` int64[S, T] and the group start
    offsets int64[G+1] (the same for every column).
    """
    S = values.shape[0]
    nan = np.isnan(values)
    key = -values if descending else values
    # Work on [T, S], so each column's sort runs over contiguous memory. One stable sort by
    # value gives each row its rank in the column (NaN keyed as 0, ties by row); then one
    # sort of a unique int64 key (group, tier, rank) puts groups, then present numbers /
    # present NaNs / absent rows, in order, in place of four stable sorts.
    key_t = np.ascontiguousarray(np.where(nan, 0.0, key).T)
    by_value = np.argsort(key_t, axis=1, kind="stable")
    rank = np.empty_like(by_value)
    np.put_along_axis(rank, by_value, np.arange(S, dtype=by_value.dtype)[None, :], axis=1)
    nan_tier = 1 if nan_last else 0
    tier = np.where(present, np.where(nan, nan_tier, 1 - nan_tier), 2).T
    composite = (ids[None, :].astype(np.int64) * 3 + tier) * S + rank
    order = np.argsort(composite, axis=1).T
    starts = np.searchsorted(np.sort(ids), np.arange(int(ids.max(initial=-1)) + 2))
    return order, starts.astype(np.int64)


def _quantile(
    ids: I64,
    G: int,
    values: F64,
    present: Bool,
    counts: I64,
    q: F64,
    ctx: EvalContext,
    node: ast.AggregateExpr,
) -> F64:
    bad = q[(q < 0) | (q > 1) | np.isnan(q)]
    if len(bad):
        ctx.warn(f"quantile value should be between 0 and 1, got {_go_g(float(bad[0]))}", node.param)
    T = values.shape[1]
    if len(ids) == 0:
        return np.full((G, T), np.nan)
    order, starts = _sorted_columns(ids, values, present, descending=False, nan_last=False)
    sorted_vals = np.take_along_axis(values, order, axis=0)
    n = counts.astype(np.float64)
    with np.errstate(all="ignore"):
        rank = q[None, :] * (n - 1)
        lower = np.maximum(0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
        base = starts[:G, None]
        cols = np.arange(T)[None, :]
        li = np.clip(base + np.nan_to_num(lower).astype(np.int64), 0, len(ids) - 1)
        ui = np.clip(base + np.nan_to_num(upper).astype(np.int64), 0, len(ids) - 1)
        res = sorted_vals[li, cols] * (1 - weight) + sorted_vals[ui, cols] * weight
    res = np.where(q[None, :] < 0, -np.inf, res)
    res = np.where(q[None, :] > 1, np.inf, res)
    return np.where(np.isnan(q)[None, :], np.nan, res)


def _k_param(node: ast.AggregateExpr, param: object, ctx: EvalContext) -> F64:
    assert isinstance(param, ScalarSeries)
    k = param.values
    if np.isnan(k).any():
        raise QueryError("Ratio value is NaN" if node.op == "limit_ratio" else "Parameter value is NaN")
    return k


def _select_k(
    node: ast.AggregateExpr, vec: StepMatrix, ids: I64, G: int, param: object, ctx: EvalContext
) -> StepMatrix:
    """topk / bottomk / limitk / limit_ratio: keep input rows (with their labels)."""
    op = node.op
    T = vec.values.shape[1]
    S = len(vec.labels)
    kv = _k_param(node, param, ctx)
    if op == "limit_ratio":
        r = kv
        if ((r < -1) | (r > 1)).any():
            bad = float(r[(r < -1) | (r > 1)][0])
            ctx.warn(
                f"ratio value should be between -1 and 1, got {_go_g(bad)}, capping to {_go_g(np.sign(bad))}",
                node.param,
            )
            r = np.clip(r, -1, 1)
        ratios = np.array([_hash_ratio(ls) for ls in vec.labels], np.float64)[:, None]
        keep = np.where(r[None, :] >= 0, ratios < r[None, :], ratios >= 1 + r[None, :])
        return _rows_kept(vec, vec.present & keep, None)
    if S == 0:
        return vec
    k = np.clip(np.nan_to_num(kv, posinf=2**62, neginf=0), 0, 2**62).astype(np.int64)
    if op in ("topk", "bottomk") and G == 1 and T > 1:
        chosen_fast = _select_k_single_group(vec, k, descending=op == "topk")
        if chosen_fast is not None:
            return _rows_kept(vec, chosen_fast, None)
    if op == "limitk":
        key = np.zeros_like(vec.values)
        order, starts = _sorted_columns(ids, key, vec.present, descending=False)
    else:
        order, starts = _sorted_columns(ids, vec.values, vec.present, descending=op == "topk")
    pos = np.arange(S)[:, None] - starts[ids[order]]
    chosen_sorted = pos < k[None, :]
    chosen = np.zeros((S, T), np.bool_)
    np.put_along_axis(chosen, order, chosen_sorted, axis=0)
    chosen &= vec.present
    row_order = None
    if T == 1:
        row_order = order[:, 0]
    return _rows_kept(vec, chosen, row_order)


def _select_k_single_group(vec: StepMatrix, k: I64, descending: bool) -> Bool | None:
    """The rows topk/bottomk keep when there is one group and k is the same at every
    step, without sorting: a partition finds each column's k-th key; rows before it are
    kept and ties with it are kept in row order, up to k, which is exactly the prefix the
    full stable sort of :func:`_sorted_columns` would choose. None when k is not constant
    or not below the row count."""
    S = vec.values.shape[0]
    kk = int(k[0])
    if not (0 < kk < S) or (k != kk).any():
        return None
    key = -vec.values if descending else vec.values
    nan = np.isnan(key)
    # Absent and NaN cells are keyed +Inf: where the k-th key is finite none of them is chosen.
    key_t = np.ascontiguousarray(np.where(vec.present & ~nan, key, np.inf).T)
    kth = np.partition(key_t, kk - 1, axis=1)[:, kk - 1 : kk]
    less = key_t < kth
    ties = key_t == kth
    room = kk - less.sum(axis=1, keepdims=True)
    chosen_t = less | (ties & (np.cumsum(ties, axis=1) <= room))
    short = np.flatnonzero(kth[:, 0] == np.inf)
    if len(short):
        # Columns with fewer than k finite keys: all of those, then (in row order) numbers
        # keyed +Inf, then NaNs, as the sort's tiers order them; absent rows never.
        finite = key_t[short] < np.inf
        present_t = vec.present.T[short]
        nan_t = nan.T[short] & present_t
        inf_t = present_t & ~nan_t & ~finite
        left = kk - finite.sum(axis=1, keepdims=True)
        take_inf = inf_t & (np.cumsum(inf_t, axis=1) <= left)
        left = left - take_inf.sum(axis=1, keepdims=True)
        take_nan = nan_t & (np.cumsum(nan_t, axis=1) <= left)
        chosen_t[short] = finite | take_inf | take_nan
    return np.asarray(chosen_t.T)


def _rows_kept(vec: StepMatrix, present: Bool, row_order: I64 | None) -> StepMatrix:
    rows: Bool = np.asarray(present.any(axis=1))
    idx = np.flatnonzero(rows) if row_order is None else row_order[rows[row_order]]
    dn = None if vec.drop_name is None else vec.drop_name[idx]
    return StepMatrix([vec.labels[i] for i in idx.tolist()], vec.values[idx], present[idx], dn)


def _hash_ratio(ls: Labels) -> float:
    """A stable pseudo-random number in [0, 1) per label set (for ``limit_ratio``)."""
    raw = "\xff".join(f"{n}\xff{v}" for n, v in ls).encode("utf-8", "surrogateescape")
    h = int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")
    return h / 2.0**64


def _count_values(
    node: ast.AggregateExpr, vec: StepMatrix, ids: I64, uniq: list[Labels], label: str
) -> StepMatrix:
    """Count rows per (group, value) at each step; the value becomes label ``label``."""
    T = vec.values.shape[1]
    rows, cols = np.nonzero(vec.present)
    vals = vec.values[rows, cols]
    # Normalise NaNs (any payload) so equal-looking values group together.
    bits = np.where(np.isnan(vals), np.nan, vals).view(np.int64)
    # Dense value ids first, then one int64 key per (group, value): two 1-d uniques are far
    # cheaper than a unique over row pairs.
    vals_u, vinv = np.unique(bits, return_inverse=True)
    pair = ids[rows] * len(vals_u) + vinv.reshape(-1)
    pair_u, inv = np.unique(pair, return_inverse=True)
    inv = inv.reshape(-1)
    uk = np.stack([pair_u // max(len(vals_u), 1), vals_u[pair_u % max(len(vals_u), 1)]])
    counts = np.zeros((len(pair_u), T), np.float64)
    np.add.at(counts, (inv, cols), 1.0)
    labels = []
    for g, b in zip(uk[0].tolist(), uk[1].tolist()):
        v = float(np.array([b], np.int64).view(np.float64)[0])
        labels.append(uniq[g].set(label, format_value(v)))
    # Different groups can end with the same labels when ``label`` overwrites a grouping
    # label; Prometheus then counts them together.
    lids, luniq = ragged.group_ids(labels)
    total = np.zeros((len(luniq), T), np.float64)
    np.add.at(total, lids, counts)
    return StepMatrix(luniq, total, total > 0)


def _valid_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _go_g(v: float) -> str:
    """Go's ``%g`` for the few numbers that appear in messages."""
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    s = repr(float(v))
    if s.endswith(".0"):
        s = s[:-2]
    return s
