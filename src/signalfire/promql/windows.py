"""Ragged-window primitives for the range-vector kernels.

A :class:`~signalfire.promql.values.RangeWindows` gives, for every (series, step)
cell, the half-open sample span ``[lo, hi)`` into flat ``ts``/``values`` arrays.
The range kernels (:mod:`range_functions`, :mod:`counter_functions`,
:mod:`trend_functions`) reduce each span to one number, for all cells at once, with
three tools:

- **prefix sums** (:func:`segment_prefix`): a sum over ``[lo, hi)`` is the difference
  of two inclusive prefix sums that restart at every series start, so errors
  committed in other series never leak in;
- **a column walk** (:class:`ColumnWalk`): for reductions that are inherently
  sequential (Kahan summation as Prometheus does it, Welford variance, linear
  regression, exponential smoothing) we step through *window positions*
  ``k = 0, 1, ...`` and update the state of every cell whose window is longer than
  ``k`` in one numpy operation. Cells are sorted by window length once, so the cells
  still active at step ``k`` are a prefix of that order and every update is a slice.
  The work is the total number of (cell, sample) pairs, done in C; the Python loop
  runs ``max window length`` times, never over cells or samples;
- **sorted windows** (:func:`sorted_windows`): quantiles and medians sort every
  window's samples in a padded matrix, one bucket of similar lengths at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from signalfire._types import F64, I64, Bool
from signalfire.util.deadline import checkpoint
from signalfire.util.ragged import series_index

#: Largest float64 below which every integer is exact.
_EXACT_INT = float(2**53)


def segment_prefix(values: F64, offsets: I64) -> tuple[F64, F64]:
    """Inclusive and exclusive prefix sums that restart at each series.

    Returns ``(incl, excl)``, both ``float64[N]``: ``incl[i]`` is the sum of the
    series' samples up to and including ``i``; ``excl[i]`` is the same up to ``i``
    exclusive and is bit-identical to ``incl[i - 1]`` inside a series (0 at a series
    start), so ``incl[hi - 1] - excl[lo]`` cancels every rounding error committed
    before ``lo``.
    """
    n = len(values)
    incl = np.empty(n, np.float64)
    excl = np.zeros(n, np.float64)
    if n == 0:
        return incl, excl
    lens = np.diff(offsets)
    S = len(lens)
    width = int(lens.max())
    if S * width == n:
        # Every series has the same length: a reshape is a free [S, width] view.
        np.cumsum(values.reshape(S, width), axis=1, out=incl.reshape(S, width))
        excl[1:] = incl[:-1]
        excl[offsets[:-1]] = 0.0
        return incl, excl
    # A padded [S, width] matrix lets np.cumsum restart at every row in one call;
    # when lengths vary too much for that to be cheap, loop over series instead
    # (each iteration is one cumsum over that series).
    if S * width <= 2 * n + 1024:
        sid = series_index(offsets)
        col = np.arange(n, dtype=np.int64) - offsets[sid]
        pad = np.zeros((S, width), np.float64)
        pad[sid, col] = values
        np.cumsum(pad, axis=1, out=pad)
        incl[:] = pad[sid, col]
    else:
        for i in range(S):
            a, b = int(offsets[i]), int(offsets[i + 1])
            if b > a:
                np.cumsum(values[a:b], out=incl[a:b])
    excl[1:] = incl[:-1]
    excl[offsets[:-1][lens > 0]] = 0.0
    return incl, excl


def window_sum(incl: F64, excl: F64, lo: I64, hi: I64) -> F64:
    """Sum over ``[lo, hi)`` from :func:`segment_prefix` arrays; 0 for empty windows."""
    nonempty = hi > lo
    out = np.zeros(lo.shape, np.float64)
    out[nonempty] = incl[hi[nonempty] - 1] - excl[lo[nonempty]]
    return out


class SparseColumn(NamedTuple):
    """A mostly-zero per-sample column (counter-reset corrections) by its non-zero entries:
    sorted flat sample positions and their values. Built without a dense float column."""

    pos: I64
    vals: F64

    @classmethod
    def from_dense(cls, values: F64) -> SparseColumn:
        nz = np.flatnonzero(values)
        return cls(nz, np.asarray(values, np.float64)[nz])


def sparse_window_sum(col: SparseColumn, lo: I64, hi: I64) -> F64:
    """Sum of the column over ``[lo, hi)`` per window.

    The non-zero entries (counter-reset corrections, typically few) enter a prefix
    sum; window bounds become positions in that short list by searchsorted. Windows
    never span two series, so no restart per series is needed. Infinite and NaN
    entries are counted apart, so an Inf in one window never turns another window's
    difference of prefix sums into Inf - Inf.
    """
    nz, vals = col
    out = np.zeros(len(lo), np.float64)
    if len(nz) == 0 or len(lo) == 0:
        return out
    finite = np.isfinite(vals)
    prefix = np.zeros(len(nz) + 1, np.float64)
    with np.errstate(over="ignore"):
        np.cumsum(np.where(finite, vals, 0.0), out=prefix[1:])
    a = np.searchsorted(nz, lo, side="left")
    b = np.maximum(np.searchsorted(nz, hi, side="left"), a)
    if not np.isfinite(prefix[-1]):
        # Finite corrections that overflow when added up: sum each window on its own.
        idx = np.empty(2 * len(lo), np.int64)
        idx[0::2], idx[1::2] = a, b
        sums = np.add.reduceat(np.append(vals, 0.0), idx)[0::2]
        return np.where(b > a, sums, 0.0)
    out = prefix[b] - prefix[a]
    if finite.all():
        return out
    p_inf, n_inf, nan = (int_prefix(m) for m in (vals == np.inf, vals == -np.inf, np.isnan(vals)))
    has_p, has_n, has_nan = ((p[b] - p[a]) > 0 for p in (p_inf, n_inf, nan))
    out = np.where(has_p, np.inf, out)
    out = np.where(has_n, -np.inf, out)
    return np.where(has_nan | (has_p & has_n), np.nan, out)


#: Windows with at most this many non-zero entries are added one entry at a time.
IN_ORDER_ROUNDS = 16


def add_sparse_in_order(acc: F64, col: SparseColumn, lo: I64, hi: I64) -> F64:
    """``acc + values[lo] + ... + values[hi-1]`` per window, added one entry at a time in
    time order, skipping zeros: the order of Prometheus's reset-correction loop.

    A difference of prefix sums (:func:`sparse_window_sum`) carries the rounding of every
    earlier entry, of other series too, so a window whose only correction cancels its
    drop would come out as 1e-15 instead of 0. Adding in order gives Prometheus's result
    bit for bit. One vectorised round per entry, so windows with more than
    ``IN_ORDER_ROUNDS`` non-zero entries (a gauge read as a counter) fall back to prefix sums.
    """
    out = np.array(acc, np.float64, copy=True)
    nz, vals = col
    if len(nz) == 0 or len(lo) == 0:
        return out
    a = np.searchsorted(nz, lo, side="left")
    k = np.maximum(np.searchsorted(nz, hi, side="left") - a, 0)
    many = k > IN_ORDER_ROUNDS
    if many.any():
        out[many] += sparse_window_sum(col, lo[many], hi[many])
        k = np.where(many, 0, k)
    for j in range(int(k.max(initial=0))):
        rows = np.flatnonzero(k > j)
        out[rows] += vals[a[rows] + j]
    return out


def int_prefix(flags: np.ndarray) -> I64:
    """``int64[N+1]`` exclusive prefix count, so a count over ``[a, b)`` is ``p[b] - p[a]``."""
    p = np.zeros(len(flags) + 1, np.int64)
    np.cumsum(flags, out=p[1:])
    return p


def kahan_inc(inc: F64, s: F64, c: F64) -> tuple[F64, F64]:
    """One step of Neumaier-compensated summation, elementwise, as Prometheus's ``kahansum.Inc``.

    The one home of this step: the range kernels and the sum/avg aggregations both call it.

    Once the running sum is infinite the compensation is reset to 0, so an overflow
    or an Inf input stays Inf (or NaN) instead of being "compensated" away.
    """
    t = s + inc
    big = np.abs(s) >= np.abs(inc)
    c = c + np.where(big, (s - t) + inc, (inc - t) + s)
    c[np.isinf(t)] = 0.0
    return t, c


class ColumnWalk:
    """Walk many windows in lockstep, one window position at a time.

    ``lo``/``hi`` are ``int64[C]`` spans of C cells. Iterating yields
    ``(k, n, idx)``: the cells ``0..n-1`` (in :attr:`order`) have a sample at window
    position ``k``, at flat index ``idx = lo_sorted[:n] + k``. State arrays of length
    C kept in this sorted order are updated with ``state[:n]``; :meth:`unsort` puts
    results back in the callers' cell order.
    """

    def __init__(self, lo: I64, hi: I64) -> None:
        lens = (hi - lo).astype(np.int64)
        self.order = np.argsort(-lens, kind="stable")
        self.lo = lo[self.order]
        self.lens = lens[self.order]
        self.C = len(lens)
        self.maxlen = int(self.lens[0]) if self.C else 0
        # n_active[k]: how many cells are longer than k (lens are sorted descending).
        self.n_active = np.searchsorted(-self.lens, -np.arange(self.maxlen), side="left")

    def __iter__(self) -> Iterator[tuple[int, int, I64]]:
        for k in range(self.maxlen):
            if k & 63 == 63:  # long windows: thousands of rounds, so the deadline is checked
                checkpoint()
            n = int(self.n_active[k])
            yield k, n, self.lo[:n] + k

    def last_index(self) -> I64:
        """Flat index of each (sorted) cell's last sample; only valid for non-empty cells."""
        return self.lo + self.lens - 1

    def unsort(self, arr: np.ndarray) -> np.ndarray:
        out = np.empty_like(arr)
        out[self.order] = arr
        return out


def kahan_window_sum(values: F64, lo: I64, hi: I64) -> tuple[F64, F64]:
    """Per-cell ``(sum, compensation)`` of ``values[lo:hi]``, added in order as Prometheus does."""
    walk = ColumnWalk(lo, hi)
    s = np.zeros(walk.C, np.float64)
    c = np.zeros(walk.C, np.float64)
    for _, n, idx in walk:
        s[:n], c[:n] = kahan_inc(values[idx], s[:n], c[:n])
    return walk.unsort(s), walk.unsort(c)


def sum_with_error(values: F64, offsets: I64, lo: I64, hi: I64) -> tuple[F64, F64]:
    """Window sums of finite ``values`` by prefix sums, with an absolute error bound.

    The bound is 0 when every partial sum is an exact integer (below 2^53). Otherwise
    the error of ``incl[i]`` accumulates eps/2 * |incl[j]| per step j <= i; the errors
    before ``lo`` cancel in the difference, leaving those of steps lo+1..hi-1 plus
    one rounding, i.e. eps * (window sum of |prefix| + |result|).
    """
    incl, excl = segment_prefix(values, offsets)
    checkpoint()
    sums = window_sum(incl, excl, lo, hi)
    if len(values) == 0:
        return sums, np.zeros_like(sums)
    if bool(np.all(values == np.round(values))) and float(np.abs(values).sum()) < _EXACT_INT:
        return sums, np.zeros_like(sums)
    checkpoint()
    a_incl, a_excl = segment_prefix(np.abs(incl), offsets)
    checkpoint()
    spread = window_sum(a_incl, a_excl, lo, hi)
    return sums, np.finfo(np.float64).eps * (spread + np.abs(sums))


#: Relative error below which a prefix-sum result stands in for Prometheus's sequential one.
TRUST = 2.0**-40


def nonfinite_in_window(values: F64, lo: I64, hi: I64) -> Bool:
    bad = int_prefix(~np.isfinite(values))
    return (bad[hi] - bad[lo]) > 0


def fast_sums(values: F64, offsets: I64, lo: I64, hi: I64) -> tuple[F64, Bool]:
    """Window sums by prefix sums, plus a mask of the cells where they can be trusted.

    Trusted means: no Inf/NaN in the window and an error bound below 2^-40 of the
    result (or an exact integer sum). Callers recompute untrusted cells with the exact
    sequential algorithm (:func:`kahan_window_sum`), so results agree with Prometheus's
    Kahan summation to ~1e-12 while costing O(N + cells) in the common case.

    Large values that move little (bytes free on a disk: 1e11 give or take 1e8) make
    the running sums huge next to one window's sum, so their bound fails late in a
    long series; those cells are summed again from values minus the series' first value
    (:func:`_centred_sums`), which keeps the running sums small.
    """
    checkpoint()
    finite = np.isfinite(values)
    clean = np.where(finite, values, 0.0)
    sums, err = sum_with_error(clean, offsets, lo, hi)
    checkpoint()  # whole-array passes over every sample and cell: check between them
    ok = ~nonfinite_in_window(values, lo, hi) & np.isfinite(sums) & np.isfinite(err)
    trusted = ok & (err <= np.abs(sums) * TRUST)
    retry = np.flatnonzero(ok & ~trusted)
    if len(retry):
        c_sums, c_ok = _centred_sums(clean, offsets, lo[retry], hi[retry])
        sums[retry] = np.where(c_ok, c_sums, sums[retry])
        trusted[retry] = c_ok
    return sums, trusted


def _centred_sums(clean: F64, offsets: I64, lo: I64, hi: I64) -> tuple[F64, Bool]:
    """Window sums of finite values as ``Σ(v - v0) + n·v0`` (v0: the series' first value),
    with the bound of :func:`sum_with_error` plus the rounding of forming ``v - v0``, of
    ``n·v0`` and of the final addition."""
    lens = np.diff(offsets)
    first = np.zeros(len(lens), np.float64)
    has = lens > 0
    first[has] = clean[offsets[:-1][has]]
    shift = np.repeat(first, lens)
    centred = clean - shift
    c_sums, c_err = sum_with_error(centred, offsets, lo, hi)
    a_incl, a_excl = segment_prefix(np.abs(centred), offsets)
    spread_in = window_sum(a_incl, a_excl, lo, hi)
    base = (hi - lo).astype(np.float64) * shift[np.minimum(lo, max(len(shift) - 1, 0))] if len(shift) else 0.0
    sums = c_sums + base
    err = c_err + np.finfo(np.float64).eps * (spread_in + np.abs(base) + np.abs(sums))
    return sums, np.isfinite(sums) & (err <= np.abs(sums) * TRUST)


def exact_time_sums(ts: I64, t0: I64, offsets: I64, lo: I64, hi: I64) -> tuple[F64, Bool]:
    """Window sums of ``(ts - t0) / 1000`` (seconds from each sample's series start ``t0``)
    from exact int64 prefix sums: one rounding per result. ``ok`` is False everywhere when
    the integer sums could overflow (absurd time spans), for the caller's fallback."""
    d = ts - t0
    n = len(d)
    big = int(np.abs(d).max()) if n else 0
    if big and big * n >= 2**62:
        return np.zeros(len(lo)), np.zeros(len(lo), np.bool_)
    p = np.zeros(n + 1, np.int64)
    np.cumsum(d, out=p[1:])
    return (p[hi] - p[lo]).astype(np.float64) / 1e3, np.ones(len(lo), np.bool_)


def sorted_windows(values: F64, lo: I64, hi: I64, max_cells: int = 1 << 22) -> Iterator[tuple[I64, F64, I64]]:
    """Yield ``(cells, rows, nan_counts)`` with every window's samples sorted Go-style.

    ``cells`` are positions into ``lo``; ``rows[r, :len]`` holds cell ``cells[r]``'s
    samples sorted ascending with NaNs *first* (as Go's ``sort.Float64s`` and
    Prometheus's ``vectorByValueHeap`` order them), padded with +Inf after. Windows
    are grouped by length (powers of two) so padding stays under 2×; a bucket is
    split so one matrix holds at most ``max_cells`` floats.
    """
    lens = hi - lo
    nonempty = np.flatnonzero(lens > 0)
    if len(nonempty) == 0:
        return
    nan_prefix = int_prefix(np.isnan(values))
    nan_all = nan_prefix[hi] - nan_prefix[lo]
    last = max(len(values) - 1, 0)
    ext = values if len(values) else np.zeros(1)
    bucket = np.ceil(np.log2(lens[nonempty].astype(np.float64))).astype(np.int64)
    for b in np.unique(bucket):
        cells_b = nonempty[bucket == b]
        width = int(lens[cells_b].max())
        step = max(1, max_cells // max(width, 1))
        col = np.arange(width, dtype=np.int64)
        for start in range(0, len(cells_b), step):
            cells = cells_b[start : start + step]
            ln = lens[cells]
            idx = lo[cells][:, None] + col[None, :]
            np.minimum(idx, last, out=idx)
            rows = ext[idx]
            rows[col[None, :] >= ln[:, None]] = np.inf
            nan_counts = nan_all[cells]
            if nan_counts.any():
                # numpy sorts NaN last; sort them as -Inf markers, then write NaN into
                # the first nan_counts slots (-Inf originals and markers are alike).
                with_nan = np.flatnonzero(nan_counts)
                sub = rows[with_nan]
                sub[np.isnan(sub)] = -np.inf
                rows[with_nan] = sub
                rows.sort(axis=1)
                rows[col[None, :] < nan_counts[:, None]] = np.nan
            else:
                rows.sort(axis=1)
            yield cells, rows, nan_counts
