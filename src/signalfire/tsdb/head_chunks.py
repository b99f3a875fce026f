"""Compressed head chunks: full slabs, cut and compressed many series at a time.

When series' open slabs fill up (``Head.chunk_samples``), the head cuts them together: the
samples of up to ``GROUP_SERIES`` series become one immutable *group*
(:class:`~signalfire.tsdb.head_group.ChunkGroup`, whose module holds the encodings), and
the slabs are emptied for reuse. :class:`HeadChunks` keeps the groups: their bounds as
arrays for pruning, the decoded-chunk cache, merging, removal, and the read plan.

Groups are *young* until their series hold ``MERGE_SAMPLES`` (120) samples on average;
then the young groups are decoded and written again ``GROUP_SERIES`` series at a time,
one run per series, so small cuts (the head cuts after a few dozen samples to keep the
raw slabs small) and cuts of few series end up as full-size, well-compressed chunks.

Reads decode whole groups (array work per group, no per-sample Python) and keep the
series asked for: :meth:`HeadChunks.plan` picks them, ``head_pieces`` decodes and merges.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from signalfire._types import F64, I64, MAX_TIME, MIN_TIME
from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.chunks.chunk_file import KIND_VALUES, DecodedChunk
from signalfire.tsdb.chunks.codec import seg_starts
from signalfire.tsdb.head_group import ChunkGroup, decode_ts, make_group
from signalfire.tsdb.head_pieces import Piece, PlanEntry, decode_plan, merge_pieces
from signalfire.util.ragged import ragged_arange, segment_ids

#: Series per compressed group: bounds what a read of one series decodes.
GROUP_SERIES = 128
#: Young groups (cut from slabs) are merged into larger ones once their series hold this
#: many samples on average: Prometheus's 120 samples per chunk.
MERGE_SAMPLES = 120


class HeadChunks:
    """The head's cut groups, oldest cut first, with their bounds as arrays for pruning."""

    def __init__(self, cache: ChunkCache | None = None) -> None:
        self.groups: list[ChunkGroup] = []
        # Decoded groups are kept in the database's chunk cache (a dashboard re-reads the
        # same recent hours); groups are immutable, so a serial number is a safe key.
        self._cache = cache
        self._owner = cache.new_owner() if cache is not None else 0
        self._closed = False
        self._serials = itertools.count()
        self._bounds: np.ndarray | None = None  # int64[G, 4]: mint, maxt, min ref, max ref
        self._index: tuple[I64, I64, I64, I64, int] | None = None  # see _ref_index
        self.num_samples = 0
        self.nbytes = 0
        self._series_chunks = 0
        # Groups from ``_young`` on were cut from slabs and not merged yet; per ref, how
        # many samples they hold, and in all (see ``_maybe_merge``).
        self._young = 0
        self._young_n = np.zeros(0, np.int64)
        self._young_series = 0
        self._young_samples = 0

    def add(self, refs: I64, counts: I64, ts: I64, values: F64, st: I64 | None) -> None:
        """Compress the samples of ``refs`` (sorted, unique; ragged by ``counts``) as young
        groups, merging the young groups when their series have enough samples."""
        first_new = len(self.groups)
        self._add(refs, counts, ts, values, st)
        if len(refs) == 0:
            return
        top = int(refs[-1]) + 1
        if top > len(self._young_n):
            grown = np.zeros(max(top, 2 * len(self._young_n)), np.int64)
            grown[: len(self._young_n)] = self._young_n
            self._young_n = grown
        self._young_series += int((self._young_n[refs] == 0).sum())
        self._young_n[refs] += counts
        self._young_samples += int(counts.sum())
        if self._young_samples >= MERGE_SAMPLES * self._young_series:
            if self._young < first_new:
                self._merge_young()
            else:  # only this cut is young, and it is large enough as it is
                self._young = len(self.groups)
                self._reset_young()

    def _merge_young(self) -> None:
        """Decode the young groups and write their series again as full-size groups: each
        series' runs become one, so small cuts (and cuts of few series, as a small scrape
        target gives) end up compressed like Prometheus's 120-sample chunks.

        Works GROUP_SERIES series at a time, so its temporaries stay small (one output
        group's worth) and the process does not keep a large freed heap around."""
        tail = self.groups[self._young :]
        del self.groups[self._young :]
        self.num_samples -= sum(int(g.counts.sum()) for g in tail)
        self.nbytes -= sum(g.nbytes for g in tail)
        self._series_chunks -= sum(len(g.refs) for g in tail)
        self._bounds = None
        self._index = None
        refs = np.flatnonzero(self._young_n).astype(np.int64)
        lo_ref = np.array([int(g.refs[0]) for g in tail], np.int64)
        hi_ref = np.array([int(g.refs[-1]) for g in tail], np.int64)
        cache: dict[int, tuple[I64, F64, I64 | None]] = {}
        for a in range(0, len(refs), GROUP_SERIES):
            window = refs[a : a + GROUP_SERIES]
            pieces: list[Piece] = []
            for gi in np.flatnonzero((hi_ref >= window[0]) & (lo_ref <= window[-1])).tolist():
                g = tail[gi]
                if gi not in cache:
                    cache[gi] = self.decoded(g, keep=False)
                ts, v, st = cache[gi]
                counts = g.counts.astype(np.int64)
                inside = (g.refs >= window[0]) & (g.refs <= window[-1])
                if hi_ref[gi] <= window[-1]:
                    del cache[gi]  # no later window needs it
                if not inside.all():
                    sample_in = np.repeat(inside, counts)
                    ts, v = ts[sample_in], v[sample_in]
                    st = None if st is None else st[sample_in]
                pieces.append(Piece(np.searchsorted(window, g.refs[inside]), counts[inside], ts, v, st))
            with_st = any(p.st is not None for p in pieces)
            offsets, ts, v, st = merge_pieces(window, np.arange(len(window), dtype=np.int64), pieces, with_st)
            self._add(window, np.diff(offsets), ts, v, st)
        self._forget(tail)
        self._young = len(self.groups)
        self._reset_young()

    def _reset_young(self) -> None:
        """Count the young groups' samples per ref again (after a merge or a removal)."""
        self._young_n[:] = 0
        tail = self.groups[self._young :]
        for g in tail:
            self._young_n[g.refs] += g.counts
        self._young_series = int(np.count_nonzero(self._young_n))
        self._young_samples = sum(int(g.counts.sum()) for g in tail)
        if not tail:
            self._young = len(self.groups)

    def _add(self, refs: I64, counts: I64, ts: I64, values: F64, st: I64 | None) -> None:
        starts = seg_starts(counts)
        for a in range(0, len(refs), GROUP_SERIES):
            b = min(a + GROUP_SERIES, len(refs))
            lo = int(starts[a])
            hi = int(starts[b - 1] + counts[b - 1])
            g = make_group(
                refs[a:b], counts[a:b], ts[lo:hi], values[lo:hi], None if st is None else st[lo:hi]
            )
            self._append(g)

    @property
    def num_series_chunks(self) -> int:
        """Chunks in Prometheus's sense: one per series per group."""
        return self._series_chunks

    def decoded(self, g: ChunkGroup, keep: bool = True) -> tuple[I64, F64, I64 | None]:
        """``g.decode()`` through the cache: read-only arrays, shared by concurrent readers.
        ``keep=False`` uses a cached decoding but does not add one (``g`` is going away)."""
        if self._cache is None:
            return g.decode()
        hit = self._cache.get(self._owner, g.serial)
        if hit is None:
            ts, v, st = g.decode()
            if not keep or g.gone:
                return ts, v, st
            hit = self._cache.put(self._owner, g.serial, DecodedChunk(KIND_VALUES, g.counts, v, st, ts))
            # A reader decodes after the head lock is released, so ``g`` may have left the
            # head meanwhile. ``_forget`` marks before it discards and this checks after it
            # puts: whichever runs second removes the entry, so none outlives its group.
            if g.gone or self._closed:
                self._cache.discard(self._owner, g.serial)
        assert hit.ts is not None and hit.values is not None
        return hit.ts, hit.values, hit.st

    def _forget(self, groups: list[ChunkGroup]) -> None:
        """Drop the cached decodings of groups that are no longer part of the head."""
        for g in groups:
            g.gone = True
            if self._cache is not None:
                self._cache.discard(self._owner, g.serial)

    def close(self) -> None:
        """Release this head's share of the cache (the database is closing)."""
        self._closed = True
        if self._cache is not None:
            self._cache.drop_owner(self._owner)

    def _append(self, g: ChunkGroup) -> None:
        if g.serial < 0:
            g.serial = next(self._serials)
        self.groups.append(g)
        self.num_samples += int(g.counts.sum())
        self.nbytes += g.nbytes
        self._series_chunks += len(g.refs)
        self._bounds = None
        self._index = None

    def bounds(self) -> np.ndarray:
        if self._bounds is None:
            b = np.empty((len(self.groups), 4), np.int64)
            for i, g in enumerate(self.groups):
                b[i] = (g.mint, g.maxt, g.refs[0], g.refs[-1])
            self._bounds = b
        return self._bounds

    def time_range(self) -> tuple[int, int]:
        if not self.groups:
            return MAX_TIME, MIN_TIME
        b = self.bounds()
        return int(b[:, 0].min()), int(b[:, 1].max())

    def candidates(self, sorted_refs: I64, mint: int, maxt: int) -> list[int]:
        """Groups that may hold samples of ``sorted_refs`` in ``[mint, maxt]``, oldest first."""
        if not self.groups or len(sorted_refs) == 0:
            return []
        b = self.bounds()
        ok = (
            (b[:, 1] >= mint) & (b[:, 0] <= maxt) & (b[:, 3] >= sorted_refs[0]) & (b[:, 2] <= sorted_refs[-1])
        )
        out: list[int] = np.flatnonzero(ok).tolist()
        return out

    def pieces(self, sorted_refs: I64, mint: int, maxt: int) -> list[Piece]:
        """Samples of ``sorted_refs`` in ``[mint, maxt]``, one :data:`Piece` per group that
        holds any, oldest cut first."""
        return decode_plan(self.plan(sorted_refs, mint, maxt), mint, maxt, self.decoded)

    def _ref_index(self) -> tuple[I64, I64, I64, I64, int]:
        """Every group's refs end to end as keys ``group * span + ref`` (int64, sorted:
        groups in order, refs sorted within each), where each group's slice starts
        (int64[G+1]), each ref's first sample within its group's decoded arrays, each
        ref's sample count, and ``span`` (above every ref). Built once per change of the
        group list, so :meth:`plan` finds a query's (group, ref) pairs with one search."""
        if self._index is None:
            G = len(self.groups)
            lens = np.array([len(g.refs) for g in self.groups], np.int64)
            off = np.zeros(G + 1, np.int64)
            np.cumsum(lens, out=off[1:])
            if G:
                refs = np.concatenate([g.refs.astype(np.int64) for g in self.groups])
                counts = np.concatenate([g.counts.astype(np.int64) for g in self.groups])
            else:
                refs = counts = np.empty(0, np.int64)
            starts = np.cumsum(counts) - counts
            starts -= np.repeat(starts[off[:-1][lens > 0]], lens[lens > 0])  # restart per group
            span = int(refs.max()) + 1 if len(refs) else 1
            keys = np.repeat(np.arange(G, dtype=np.int64) * span, lens) + refs
            self._index = (keys, off, starts, counts, span)
        return self._index

    def plan(self, sorted_refs: I64, mint: int, maxt: int) -> list[PlanEntry]:
        """The groups :meth:`pieces` would decode, each with its wanted series (see
        :data:`PlanEntry`). Cheap, and valid after the lock is released (groups are
        immutable), so :func:`decode_plan` can run without it.

        Proportional to the series wanted, not to the size of the head: a group is a
        candidate when its time range meets ``[mint, maxt]`` and a wanted ref lies within
        its ref range (a binary search of its bounds in ``sorted_refs``); then every
        (candidate, wanted ref in its range) pair is looked up at once among the groups'
        keys, so a metric of a few series spread over a large head costs a few searches
        per group it is in, not a search of every ref of those groups."""
        if not self.groups or len(sorted_refs) == 0:
            return []
        b = self.bounds()
        lo = np.searchsorted(sorted_refs, b[:, 2])
        hi = np.searchsorted(sorted_refs, b[:, 3], side="right")
        cands = np.flatnonzero((b[:, 1] >= mint) & (b[:, 0] <= maxt) & (hi > lo))
        if len(cands) == 0:
            return []
        keys, off, starts, counts, span = self._ref_index()
        nq = hi[cands] - lo[cands]
        qi = ragged_arange(lo[cands], nq)  # positions in sorted_refs, by candidate
        qg = np.repeat(cands, nq)
        q = qg * span + sorted_refs[qi]
        at = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
        found = keys[at] == q
        qi, qg, at = qi[found], qg[found], at[found]
        first = np.searchsorted(qg, cands)
        nwant = np.searchsorted(qg, cands, side="right") - first
        lens = off[cands + 1] - off[cands]
        whole = ((b[cands, 0] >= mint) & (b[cands, 1] <= maxt) & (nwant == lens)).tolist()
        starts_w, counts_w = starts[at], counts[at]
        cut = first.tolist()
        ends = (first + nwant).tolist()
        groups = self.groups
        out: list[PlanEntry] = []
        for k in np.flatnonzero(nwant).tolist():
            x, y = cut[k], ends[k]
            out.append(PlanEntry(groups[int(cands[k])], qi[x:y], starts_w[x:y], counts_w[x:y], whole[k]))
        return out

    def series_in_range(self, sorted_refs: I64, mint: int, maxt: int) -> np.ndarray:
        """Which of ``sorted_refs`` have a cut sample in ``[mint, maxt]``: a group inside the
        range answers from its refs, only a group straddling an end decodes timestamps."""
        return self.series_in_range_later(sorted_refs, mint, maxt)()

    def series_in_range_later(self, sorted_refs: I64, mint: int, maxt: int) -> Callable[[], np.ndarray]:
        """:meth:`series_in_range` in two steps: this call picks the candidate groups
        (under the head lock); the function returned decodes, and may run without it."""
        groups = [self.groups[gi] for gi in self.candidates(sorted_refs, mint, maxt)]
        return lambda: _series_in_range(groups, sorted_refs, mint, maxt)

    def remove(self, sorted_refs: I64 | None, mint: int, maxt: int) -> I64:
        """Drop samples in ``[mint, maxt]`` of ``sorted_refs`` (None: of every series);
        groups left empty go, others are re-encoded. Returns the ref of each removed sample."""
        removed: list[I64] = []
        probe = np.array([MIN_TIME, MAX_TIME], np.int64) if sorted_refs is None else sorted_refs
        hit = set(self.candidates(probe, mint, maxt))
        if not hit:
            return np.empty(0, np.int64)
        kept: list[ChunkGroup] = []
        old = 0  # kept groups from before the young ones (order is kept)
        for gi, g in enumerate(self.groups):
            if gi == self._young:
                old = len(kept)
            if gi not in hit:
                kept.append(g)
                continue
            owner = np.repeat(g.refs, g.counts)
            if sorted_refs is None and mint <= g.mint and g.maxt <= maxt:
                removed.append(owner)  # all of it (a head truncation): no decoding
                self._forget([g])
                continue
            ts, v, st = self.decoded(g)
            drop = (ts >= mint) & (ts <= maxt)
            if sorted_refs is not None:
                i = np.minimum(np.searchsorted(sorted_refs, g.refs), len(sorted_refs) - 1)
                drop &= np.repeat(sorted_refs[i] == g.refs, g.counts)
            if not drop.any():
                kept.append(g)
                continue
            self._forget([g])
            removed.append(owner[drop])
            keep = ~drop
            if keep.any():
                left = np.bincount(segment_ids(g.counts)[keep], minlength=len(g.refs))
                nz = left > 0
                kept.append(
                    make_group(g.refs[nz], left[nz], ts[keep], v[keep], None if st is None else st[keep])
                )
        if self._young >= len(self.groups):
            old = len(kept)
        self.groups = []
        self.num_samples = 0
        self.nbytes = 0
        self._series_chunks = 0
        self._bounds = None
        self._index = None
        for g in kept:
            self._append(g)
        self._young = old
        self._reset_young()
        return np.concatenate(removed) if removed else np.empty(0, np.int64)


def _series_in_range(groups: list[ChunkGroup], sorted_refs: I64, mint: int, maxt: int) -> np.ndarray:
    """:meth:`HeadChunks.series_in_range` over the candidate ``groups`` picked before."""
    out = np.zeros(len(sorted_refs), np.bool_)
    for g in groups:
        i = np.minimum(np.searchsorted(sorted_refs, g.refs), len(sorted_refs) - 1)
        want = sorted_refs[i] == g.refs
        if not want.any():
            continue
        if mint <= g.mint and g.maxt <= maxt:
            out[i[want]] = True
            continue
        counts = g.counts.astype(np.int64)
        ts = decode_ts(g.ts, counts)
        inside = (ts >= mint) & (ts <= maxt)
        hit = np.bincount(segment_ids(counts)[inside], minlength=len(counts)) > 0
        out[i[want & hit]] = True
    return out
