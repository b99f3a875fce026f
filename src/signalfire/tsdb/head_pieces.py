"""Reading cut chunk groups: the read plan, its decoding into pieces, and their merge.

``HeadChunks.plan`` picks, under the head lock, the groups a read needs (one
:class:`PlanEntry` each); :func:`decode_plan` decodes them, possibly after the lock is
released (groups are immutable), keeping the samples asked for as :class:`Piece` runs;
:func:`merge_pieces` interleaves the pieces of several groups and the slabs into one
ragged set per series (:class:`Samples`). All of it is array work per group, no
per-sample Python.

The records are named tuples: cheap to build and unpack on these paths, and read by
field name, so another column (native histograms) is one more field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from signalfire._types import F64, I64
from signalfire.tsdb.head_group import ChunkGroup
from signalfire.util.ragged import clip_runs, occurrence, ragged_arange, segment_ids


class Samples(NamedTuple):
    """Ragged samples of several series: series i owns ``[offsets[i], offsets[i+1])``."""

    offsets: I64
    ts: I64
    values: F64
    st: I64 | None


class Piece(NamedTuple):
    """Runs of samples of several series, each series at most once, runs one after another."""

    #: Position of each series in the ``sorted_refs`` asked for.
    pos: I64
    #: Samples of each series' run.
    lens: I64
    ts: I64
    values: F64
    st: I64 | None


class PlanEntry(NamedTuple):
    """One group to read, and for each of its wanted series the position in the query's
    sorted refs, where its samples start in the decoded group and how many there are."""

    group: ChunkGroup
    pos: I64
    starts: I64
    counts: I64
    #: Read whole: every series wanted, all inside the range.
    whole: bool


class _FewRuns(NamedTuple):
    """A group of few wanted series, decoded, waiting in :func:`decode_plan` to be cut
    together with the others like it."""

    pos: I64
    starts: I64
    counts: I64
    ts: I64
    values: F64
    st: I64 | None


#: Up to this many wanted series in a group, each is cut with its own searchsorted and
#: the pieces of all such groups are joined into one, instead of a vectorised cut per group.
_FEW_RUNS = 16


def decode_plan(
    plan: list[PlanEntry],
    mint: int,
    maxt: int,
    decode: Callable[[ChunkGroup], tuple[I64, F64, I64 | None]] = ChunkGroup.decode,
) -> list[Piece]:
    """Decode the groups of a :meth:`HeadChunks.plan` (with ``decode``, e.g.
    :meth:`HeadChunks.decoded`), keeping the samples asked for.

    Only the wanted series are cut to the range, by a binary search of their own samples
    (a series' samples are contiguous and sorted in its group), so reading a few series
    or a short range costs nothing in the size of a group. A query for a handful of
    series per group (one metric of many targets) touches every group for a few runs:
    those runs are sliced whole and collected, then cut together into a single piece,
    so the cost per group is a few slices, not a dozen array operations."""
    out: list[Piece] = []
    few: list[_FewRuns] = []  # groups of few runs, in order
    pending: set[int] = set()  # positions of the series in ``few``

    def flush() -> None:
        # Pieces keep plan order (oldest cut first) and hold each series once: a series
        # with runs in several of these groups gets one piece per repeat, in order.
        if not few:
            return
        pos = np.concatenate([f.pos for f in few])
        lens = np.concatenate([f.counts for f in few])
        runs = [(a, n, f) for f in few for a, n in zip(f.starts.tolist(), f.counts.tolist())]
        ts = np.concatenate([f.ts[a : a + n] for a, n, f in runs])
        vals = np.concatenate([f.values[a : a + n] for a, n, f in runs])
        st = None
        if any(f.st is not None for f in few):
            st = np.concatenate(
                [f.st[a : a + n] if f.st is not None else np.zeros(n, np.int64) for a, n, f in runs]
            )
        few.clear()
        pending.clear()
        lo, hi = clip_runs(ts, np.cumsum(lens) - lens, lens, mint, maxt)
        n = hi - lo
        nz = np.flatnonzero(n > 0)
        if len(nz) == 0:
            return
        pos, lo, n = pos[nz], lo[nz], n[nz]
        repeat = occurrence(pos)
        for k in range(int(repeat.max()) + 1):
            sel = np.flatnonzero(repeat == k)
            out.append(_gather(pos[sel], lo[sel], n[sel], ts, vals, st))

    for e in plan:
        pos, starts, counts = e.pos, e.starts, e.counts
        ts, v, st = decode(e.group)
        if not e.whole and len(pos) <= _FEW_RUNS:
            few.append(_FewRuns(pos, starts, counts, ts, v, st))
            pending.update(pos.tolist())
            continue
        if pending and not pending.isdisjoint(pos.tolist()):
            flush()  # older runs of these series first, so merge_pieces need not sort
        if e.whole:
            out.append(Piece(pos, counts, ts, v, st))  # the whole group: no cutting
            continue
        lo_a, hi_a = clip_runs(ts, starts, counts, mint, maxt)
        lens = hi_a - lo_a
        nz = np.flatnonzero(lens > 0)
        if len(nz) == 0:
            continue
        out.append(_gather(pos[nz], lo_a[nz], lens[nz], ts, v, st))
    flush()
    return out


def _gather(pos: I64, lo: I64, n: I64, ts: I64, v: F64, st: I64 | None) -> Piece:
    """The samples ``[lo, lo + n)`` of each run, as the piece of the series at ``pos``."""
    idx = ragged_arange(lo, n)
    return Piece(pos, n, ts[idx], v[idx], None if st is None else st[idx])


def merge_pieces(sorted_refs: I64, sorted_rank: I64, pieces: list[Piece], with_st: bool) -> Samples:
    """Ragged samples of ``len(sorted_refs)`` output series from ``pieces``.

    Output series ``sorted_rank[i]`` is the series ``sorted_refs[i]``. Pieces come oldest
    first, so placing each series' runs one after another keeps time order; only where a
    run does not start after the run before it (out-of-order samples older than a cut
    chunk) are the series sorted, the first stored sample winning at equal times.
    """
    nseries = len(sorted_refs)
    counts = np.zeros(nseries, np.int64)
    for p in pieces:
        counts[sorted_rank[p.pos]] += p.lens  # positions are unique within a piece
    offsets = np.zeros(nseries + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    ts = np.empty(total, np.int64)
    vals = np.empty(total, np.float64)
    st = np.zeros(total, np.int64) if with_st else None
    cursor = offsets[:-1].copy()
    joins = []
    for p in pieces:
        rk = sorted_rank[p.pos]
        d0 = cursor[rk]
        dst = ragged_arange(d0, p.lens)
        ts[dst] = p.ts
        vals[dst] = p.values
        if st is not None and p.st is not None:
            st[dst] = p.st
        cursor[rk] += p.lens
        joins.append(d0[d0 > offsets[rk]])  # runs placed after an earlier run
    if len(joins) > 1:
        j = np.concatenate(joins)
        if len(j) and np.any(ts[j - 1] >= ts[j]):
            return _sort_series(segment_ids(counts), ts, vals, st, nseries)
    return Samples(offsets, ts, vals, st)


def _sort_series(seg: I64, ts: I64, vals: F64, st: I64 | None, nseries: int) -> Samples:
    """Sort each series by time, keeping the first of repeated timestamps (rare path)."""
    order = np.lexsort((ts, seg))  # stable: earlier-stored samples first at equal times
    seg, ts = seg[order], ts[order]
    keep = np.ones(len(ts), np.bool_)
    keep[1:] = (ts[1:] != ts[:-1]) | (seg[1:] != seg[:-1])
    sel = order[keep]
    counts = np.bincount(seg[keep], minlength=nseries).astype(np.int64)
    offsets = np.zeros(nseries + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Samples(offsets, ts[keep], vals[sel], None if st is None else st[sel])
