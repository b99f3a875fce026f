"""Classic-histogram functions over ``le`` buckets: ``histogram_quantile(s)``, ``histogram_fraction``.

Series are grouped by their labels without ``le`` (and without ``__name__`` unless
name removal is delayed, as Prometheus keys them). A group becomes a padded
``[G, B, T]`` block of cumulative bucket counts sorted by upper bound, with an
``active`` mask for the buckets present at each step. Every algorithm then loops
over the bucket axis only (B is small, tens at most) with whole ``[G, T]`` arrays per
iteration, reproducing Prometheus's ``BucketQuantile``/``BucketFraction`` including
its monotonicity repair and small-delta tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signalfire._types import F64, Bool
from signalfire.labels import Labels
from signalfire.labels.labels import BUCKET_LABEL, METRIC_NAME
from signalfire.promql import ast
from signalfire.promql.values import EvalContext, StepMatrix

#: Relative difference below which neighbouring bucket counts are treated as equal.
SMALL_DELTA_TOLERANCE = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308
_MAX_F64 = float(np.finfo(np.float64).max)

MONOTONICITY_INFO = (
    "input to histogram_quantile needed to be fixed for monotonicity "
    "(see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
    "for metric name {name}"
)


def parse_le(s: str) -> float | None:
    """Go ``strconv.ParseFloat`` for bucket bounds; None when malformed."""
    if not s or s != s.strip() or "_" in s:
        return None
    try:
        return float(s)
    except ValueError:
        return None


@dataclass(slots=True)
class BucketBlock:
    """Buckets of G classic histograms at T steps; B slots per group, ascending bounds."""

    labels: list[Labels]  # per group: labels without ``le``
    names: list[str]  # per group: metric name for annotations
    upper: F64  # float64[G, B] (padding +Inf, inactive)
    counts: F64  # float64[G, B, T]
    active: Bool  # bool[G, B, T]


def bucket_block(sm: StepMatrix, ctx: EvalContext, node: ast.Node) -> BucketBlock:
    """Group ``sm``'s rows into histograms; warn about (and skip) rows with a bad ``le``."""
    keys: list[Labels] = []
    les: list[float] = []
    rows: list[int] = []
    for i, ls in enumerate(sm.labels):
        raw = ls.get(BUCKET_LABEL)
        le = parse_le(raw)
        if le is None or np.isnan(le):
            if sm.present[i].any():
                ctx.warn(
                    f'bucket label "le" is missing or has a malformed value of "{raw}" '
                    f'for metric name "{ls.get(METRIC_NAME)}"',
                    node,
                )
            continue
        key = ls.without(BUCKET_LABEL)
        if not ctx.settings.delayed_name_removal:
            key = key.without_metric_name()
        keys.append(key)
        les.append(le)
        rows.append(i)
    T = sm.values.shape[1]
    if not rows:
        return BucketBlock([], [], np.zeros((0, 0)), np.zeros((0, 0, T)), np.zeros((0, 0, T), np.bool_))
    group_of: dict[Labels, int] = {}
    gid = np.fromiter((group_of.setdefault(k, len(group_of)) for k in keys), np.int64, len(keys))
    le_arr = np.asarray(les, np.float64)
    row_arr = np.asarray(rows, np.int64)
    order = np.lexsort((le_arr, gid))
    gid, le_arr, row_arr = gid[order], le_arr[order], row_arr[order]
    # A new slot starts at each new group or new bound; equal bounds (le="1" and
    # le="1.0") share a slot and their counts add up, as coalesceBuckets does.
    new_slot = np.ones(len(gid), np.bool_)
    new_slot[1:] = (gid[1:] != gid[:-1]) | (le_arr[1:] != le_arr[:-1])
    slot_global = np.cumsum(new_slot) - 1
    group_start = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    first_slot_of_group = slot_global[group_start]
    slot = slot_global - first_slot_of_group[gid]
    G = len(group_of)
    B = int(slot.max()) + 1
    upper = np.full((G, B), np.inf)
    upper[gid, slot] = le_arr
    counts = np.zeros((G, B, T))
    active = np.zeros((G, B, T), np.bool_)
    present = sm.present[row_arr]
    if new_slot.all():
        # One series per (histogram, bound), the usual case: plain scatter.
        counts[gid, slot] = np.where(present, sm.values[row_arr], 0.0)
        active[gid, slot] = present
    else:
        np.add.at(counts, (gid, slot), np.where(present, sm.values[row_arr], 0.0))
        np.logical_or.at(active, (gid, slot), present)
    first_row = row_arr[group_start]
    labels = [sm.labels[r].without(BUCKET_LABEL) for r in first_row.tolist()]
    if not ctx.settings.delayed_name_removal:
        labels = [ls.without_metric_name() for ls in labels]
    names = [sm.labels[r].get(METRIC_NAME) for r in first_row.tolist()]
    return BucketBlock(labels, names, upper, counts, active)


def _almost_equal(a: F64, b: F64, eps: float) -> Bool:
    """Prometheus ``almost.Equal``: relative tolerance, absolute near zero.

    Written as ``diff < eps * |a|+|b|`` rather than dividing; the two differ only in
    rounding exactly at the tolerance.
    """
    with np.errstate(all="ignore"):
        abs_sum = np.abs(a) + np.abs(b)
        diff = np.abs(a - b)
        res = diff < eps * np.minimum(abs_sum, _MAX_F64)
        near_zero = (a == 0) | (b == 0) | (abs_sum < _MIN_NORMAL)
        res &= ~near_zero
        res |= near_zero & (diff < eps * _MIN_NORMAL)
    return np.asarray(res | (a == b) | (np.isnan(a) & np.isnan(b)), np.bool_)


@dataclass(slots=True)
class FixedBuckets:
    counts: F64  # [G, B, T] after the monotonicity repair
    forced: Bool  # [G, T] a real decrease had to be removed
    n_active: np.ndarray  # [G, T]
    last_upper: F64  # [G, T] upper bound of the highest present bucket
    observations: F64  # [G, T] count of the highest present bucket


def fix_monotonic(block: BucketBlock) -> FixedBuckets:
    """Remove decreases between successive present buckets (the envelope), silently
    flattening differences within the small-delta tolerance."""
    return _fix_dense(block) or _fix_by_bucket(block)


def _fix_dense(block: BucketBlock) -> FixedBuckets | None:
    """:func:`fix_monotonic` for the usual block, every bucket present at every step and no
    NaN count, in a few whole-block operations instead of a round per bucket: the envelope
    is then the running maximum over the buckets, unless a count lies within the tolerance
    of the envelope before it without equalling it (the repair would keep the envelope
    there, not raise it), in which case None sends the block to the round per bucket."""
    G, B, T = block.counts.shape
    counts = block.counts
    if B == 0 or not block.active.all() or np.isnan(counts).any():
        return None
    env = np.maximum.accumulate(counts, axis=1)
    prev, cur = env[:, :-1, :], counts[:, 1:, :]
    if (_almost_equal(prev, cur, SMALL_DELTA_TOLERANCE) & (cur != prev)).any():
        return None
    forced: Bool = np.asarray((cur < prev).any(axis=1))
    n_active = np.full((G, T), B, np.int64)
    last_upper = np.repeat(block.upper[:, B - 1 :], T, axis=1)
    return FixedBuckets(env, forced, n_active, last_upper, env[:, B - 1, :].copy())


def _fix_by_bucket(block: BucketBlock) -> FixedBuckets:
    """:func:`fix_monotonic` one bucket at a time, for blocks with absent buckets or NaN."""
    G, B, T = block.counts.shape
    fixed = block.counts.copy()
    prev = np.full((G, T), np.nan)
    started = np.zeros((G, T), np.bool_)
    forced = np.zeros((G, T), np.bool_)
    last_upper = np.full((G, T), np.nan)
    obs = np.zeros((G, T))
    for b in range(B):
        act = block.active[:, b, :]
        cur = block.counts[:, b, :]
        first = act & ~started
        upd = act & started
        same = cur == prev
        small = _almost_equal(prev, cur, SMALL_DELTA_TOLERANCE) & ~same
        dec = ~same & ~small & (cur < prev)
        fixed[:, b, :] = np.where(upd & (small | dec), prev, cur)
        forced |= upd & dec
        prev = np.where(first | (upd & ~same & ~small & ~dec), cur, prev)
        started |= act
        last_upper = np.where(act, block.upper[:, b][:, None], last_upper)
        obs = np.where(act, fixed[:, b, :], obs)
    n_active = block.active.sum(axis=1)
    return FixedBuckets(fixed, forced, n_active, last_upper, obs)


def bucket_quantile(q: F64, block: BucketBlock, fb: FixedBuckets) -> tuple[F64, Bool, Bool]:
    """φ-quantile per (group, step); ``q`` is ``[T]``. Returns (values, present, forced)."""
    G, _, T = block.counts.shape
    qq = np.broadcast_to(q[None, :], (G, T))
    rank = qq * fb.observations
    with np.errstate(all="ignore"):
        if block.active.all():
            res = _quantile_dense(rank, block, fb)
        else:
            res = _quantile_by_bucket(rank, block, fb)
    valid = (fb.last_upper == np.inf) & (fb.n_active >= 2) & (fb.observations != 0)
    res = np.where(valid, res, np.nan)
    forced = fb.forced & valid & ~np.isnan(qq) & (qq >= 0) & (qq <= 1)
    res = np.where(qq < 0, -np.inf, np.where(qq > 1, np.inf, res))
    res = np.where(np.isnan(qq), np.nan, res)
    return res, fb.n_active >= 1, forced


def _quantile_dense(rank: F64, block: BucketBlock, fb: FixedBuckets) -> F64:
    """:func:`bucket_quantile`'s interpolation when every bucket is present at every step,
    in whole-block operations: the first bucket below the top whose count reaches the rank
    (a comparison and an ``argmax`` over the buckets), interpolated from the bucket before
    it with the same arithmetic as :func:`_quantile_by_bucket`; a rank in the top bucket
    gives the second-highest bound. (Blocks of under two buckets give NaN later.)"""
    G, B, T = block.counts.shape
    if B < 2:
        return np.zeros((G, T))
    c = fb.counts
    hit = c[:, : B - 1, :] >= rank[:, None, :]
    any_hit = hit.any(axis=1)
    b = hit.argmax(axis=1)
    gi = np.arange(G)[:, None]
    ti = np.arange(T)[None, :]
    pb = np.maximum(b - 1, 0)
    u, cb = block.upper[gi, b], c[gi, b, ti]
    pu, pc = block.upper[gi, pb], c[gi, pb, ti]
    val_first = np.where(u <= 0, u, u * (rank / cb))
    val_mid = pu + (u - pu) * ((rank - pc) / (cb - pc))
    top = np.broadcast_to(block.upper[:, B - 2][:, None], (G, T))
    return np.where(any_hit, np.where(b == 0, val_first, val_mid), top)


def _quantile_by_bucket(rank: F64, block: BucketBlock, fb: FixedBuckets) -> F64:
    """:func:`bucket_quantile`'s interpolation one bucket at a time, counting only the
    buckets present at each step."""
    G, B, T = block.counts.shape
    res = np.full((G, T), np.nan)
    done = np.zeros((G, T), np.bool_)
    prev_u = np.zeros((G, T))
    prev_c = np.zeros((G, T))
    k = np.zeros((G, T), np.int64)
    with np.errstate(all="ignore"):
        for b in range(B):
            act = block.active[:, b, :]
            u = np.broadcast_to(block.upper[:, b][:, None], (G, T))
            c = fb.counts[:, b, :]
            is_last = act & (k == fb.n_active - 1)
            cand = act & ~is_last & ~done & (c >= rank)
            # The lowest bucket interpolates from 0, unless its bound is <= 0.
            val_first = np.where(u <= 0, u, u * (rank / c))
            val_mid = prev_u + (u - prev_u) * ((rank - prev_c) / (c - prev_c))
            res = np.where(cand, np.where(k == 0, val_first, val_mid), res)
            done |= cand
            # Rank in the +Inf bucket: the second-highest bound.
            at_top = is_last & ~done
            res = np.where(at_top, prev_u, res)
            done |= at_top
            prev_u = np.where(act, u, prev_u)
            prev_c = np.where(act, c, prev_c)
            k += act
    return res


def bucket_fraction(lower: F64, upper: F64, block: BucketBlock) -> tuple[F64, Bool]:
    """Fraction of observations in ``[lower, upper]`` per (group, step).

    The lowest bucket is taken to start at 0 when its bound is positive; observations
    in a bucket with an infinite bound count as sitting at that infinity, so a bound
    falling inside such a bucket takes none of it.
    """
    G, B, T = block.counts.shape
    lo = np.broadcast_to(lower[None, :], (G, T))
    hi = np.broadcast_to(upper[None, :], (G, T))
    rank = np.zeros((G, T))
    lo_rank = np.zeros((G, T))
    hi_rank = np.zeros((G, T))
    lo_set = np.zeros((G, T), np.bool_)
    hi_set = np.zeros((G, T), np.bool_)
    prev_u = np.full((G, T), np.nan)
    k = np.zeros((G, T), np.int64)
    total = np.zeros((G, T))
    last_upper = np.full((G, T), np.nan)
    with np.errstate(all="ignore"):
        for b in range(B):
            act = block.active[:, b, :]
            u = np.broadcast_to(block.upper[:, b][:, None], (G, T))
            c = block.counts[:, b, :]
            lb = np.where(k == 0, np.where(u > 0, 0.0, -np.inf), prev_u)

            def interp(v: F64, lb: F64 = lb, u: F64 = u, c: F64 = c, r: F64 = rank) -> F64:
                lin = r + (c - r) * (v - lb) / (u - lb)
                return np.where(lb == -np.inf, c, np.where(u == np.inf, r, lin))

            hit_lo = act & ~lo_set & (lb >= lo)
            lo_rank = np.where(hit_lo, rank, lo_rank)
            lo_set |= hit_lo
            hit_hi = act & ~hi_set & (lb >= hi)
            hi_rank = np.where(hit_hi, rank, hi_rank)
            hi_set |= hit_hi
            in_lo = act & ~lo_set & (lb < lo) & (u > lo)
            lo_rank = np.where(in_lo, interp(lo), lo_rank)
            lo_set |= in_lo
            in_hi = act & ~hi_set & (lb < hi) & (u > hi)
            hi_rank = np.where(in_hi, interp(hi), hi_rank)
            hi_set |= in_hi
            rank = np.where(act, c, rank)
            prev_u = np.where(act, u, prev_u)
            total = np.where(act, c, total)
            last_upper = np.where(act, u, last_upper)
            k += act
        lo_rank = np.where(~lo_set | (lo_rank > total), total, lo_rank)
        hi_rank = np.where(~hi_set | (hi_rank > total), total, hi_rank)
        res = (hi_rank - lo_rank) / total
    res = np.where(lo >= hi, 0.0, res)
    bad = (total == 0) | np.isnan(lo) | np.isnan(hi) | (last_upper != np.inf)
    res = np.where(bad, np.nan, res)
    n_active = block.active.sum(axis=1)
    return res, n_active >= 1
