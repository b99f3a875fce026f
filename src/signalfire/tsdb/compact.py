"""Compaction: which blocks to merge (the planner) and merging them (the compactor).

The planner follows Prometheus's ``LeveledCompactor.Plan``: overlapping blocks are
merged first; otherwise the newest block is left alone and, for each range after the
first (6h, 18h, ... by default), blocks inside one aligned range are merged once the
range is complete or lies before the newest block; finally a large enough block with
more than 5% of its series tombstoned is rewritten alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from signalfire._types import F64, I64
from signalfire.labels import Labels
from signalfire.storage import SeriesSet
from signalfire.tsdb.block import Block
from signalfire.tsdb.block_meta import BlockMeta
from signalfire.tsdb.block_write import WINDOW_MS, BlockWriter
from signalfire.util.ragged import ragged_arange

HOUR_MS = 3_600_000
#: Prometheus's default ranges for a 2h minimum block: 2h, 6h, 18h.
DEFAULT_RANGES = [2 * HOUR_MS * 3**i for i in range(3)]


def plan_compaction(metas: Sequence[BlockMeta], ranges: Sequence[int] | None = None) -> list[list[BlockMeta]]:
    """Groups of blocks to compact, in order; today at most one group.

    Compact the group, reopen the block list and plan again until nothing is left
    (as Prometheus's compaction loop). Each group is sorted by ``min_time``.
    """
    ranges = list(ranges) if ranges is not None else DEFAULT_RANGES
    blocks = sorted(metas, key=lambda m: (m.min_time, m.max_time, m.ulid))
    overlapping = _overlapping(blocks)
    if overlapping:
        return [overlapping]
    # The newest block stays out, giving a full block range for piecewise backups.
    candidates = blocks[:-1]
    group = _select_ranges(candidates, ranges)
    if group:
        return [group]
    # Blocks with many tombstones are rewritten alone once they are big enough.
    mid = ranges[len(ranges) // 2] if ranges else 0
    for m in reversed(candidates):
        if m.max_time - m.min_time < mid:
            if m.num_tombstones > 0 and m.num_tombstones >= m.num_series:
                return [[m]]
            break
        if m.num_tombstones / (m.num_series + 1) > 0.05:
            return [[m]]
    return []


def _overlapping(blocks: list[BlockMeta]) -> list[BlockMeta]:
    """The first run of blocks whose time ranges overlap (blocks sorted by min_time)."""
    if len(blocks) < 2:
        return []
    run: list[BlockMeta] = []
    global_maxt = blocks[0].max_time
    for prev, cur in itertools.pairwise(blocks):
        if cur.min_time < global_maxt:
            if not run:
                run.append(prev)
            run.append(cur)
        elif run:
            break
        global_maxt = max(global_maxt, cur.max_time)
    return run


def _split_by_range(blocks: list[BlockMeta], tr: int) -> list[list[BlockMeta]]:
    """Consecutive blocks that fall inside one aligned range ``[k*tr, (k+1)*tr)``."""
    parts: list[list[BlockMeta]] = []
    i = 0
    while i < len(blocks):
        t0 = (blocks[i].min_time // tr) * tr  # floor division aligns negative times too
        if blocks[i].max_time > t0 + tr:  # spans past its range: never grouped at this size
            i += 1
            continue
        group = []
        while i < len(blocks) and blocks[i].max_time <= t0 + tr:
            group.append(blocks[i])
            i += 1
        parts.append(group)
    return parts


def _select_ranges(blocks: list[BlockMeta], ranges: list[int]) -> list[BlockMeta]:
    if len(ranges) < 2 or not blocks:
        return []
    high_time = blocks[-1].min_time
    for tr in ranges[1:]:
        for part in _split_by_range(blocks, tr):
            mint, maxt = part[0].min_time, part[-1].max_time
            # A complete range, or one entirely before the newest candidate block.
            if len(part) > 1 and (maxt - mint == tr or maxt <= high_time):
                return part
    return []


class Ragged(NamedTuple):
    """One ragged batch of several series' samples: series ``gids[i]`` (ascending) owns
    ``[offsets[i], offsets[i+1])`` of ``ts``, ``values`` and ``st`` (start timestamps, or
    None when no sample has one)."""

    gids: I64
    offsets: I64
    ts: I64
    values: F64
    st: I64 | None


def merge_ragged(parts: Sequence[Ragged], *, overlapping: bool) -> Ragged:
    """Merge ragged batches by series id; at equal timestamps the earliest batch wins.

    Without ``overlapping`` the batches must be in time order with disjoint time
    ranges, so every sample's destination is computed directly (no sort); otherwise
    samples are sorted by (series, time, batch) and duplicates dropped.
    """
    if not parts:
        z = np.empty(0, np.int64)
        return Ragged(z, np.zeros(1, np.int64), z, np.empty(0, np.float64), None)
    gids = np.unique(np.concatenate([p.gids for p in parts]))
    G = len(gids)
    local = [np.searchsorted(gids, p.gids) for p in parts]  # each batch's series -> output row
    lens = [np.diff(p.offsets) for p in parts]
    ts = np.concatenate([p.ts for p in parts])
    vals = np.concatenate([np.asarray(p.values, np.float64) for p in parts])
    st = None
    if any(p.st is not None for p in parts):
        st = np.concatenate([p.st if p.st is not None else np.zeros(len(p.ts), np.int64) for p in parts])
    if overlapping:
        g = np.concatenate([np.repeat(lo, ln) for lo, ln in zip(local, lens)])
        batch = np.concatenate([np.full(len(p.ts), k, np.int64) for k, p in enumerate(parts)])
        order = np.lexsort((batch, ts, g))
        g, t = g[order], ts[order]
        keep = np.ones(len(t), np.bool_)
        keep[1:] = (g[1:] != g[:-1]) | (t[1:] != t[:-1])
        order = order[keep]
        counts = np.bincount(g[keep], minlength=G)
    else:
        # Row r gets batch 0's samples, then batch 1's, ...: scatter them straight there.
        per_batch = [np.bincount(lo, weights=ln, minlength=G).astype(np.int64) for lo, ln in zip(local, lens)]
        counts = np.sum(per_batch, axis=0)
        base = np.zeros(G, np.int64)
        np.cumsum(counts[:-1], out=base[1:])
        dest = np.empty(len(ts), np.int64)
        at = 0
        for lo, ln, c in zip(local, lens, per_batch):  # loop over batches: array work each
            n = int(ln.sum())
            dest[at : at + n] = ragged_arange(base[lo], ln)
            at += n
            base += c
        order = np.empty(len(ts), np.int64)
        order[dest] = np.arange(len(ts), dtype=np.int64)
    offsets = np.zeros(G + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Ragged(gids, offsets, ts[order], vals[order], st[order] if st is not None else None)


def merge_series_sets(sets: Sequence[SeriesSet], *, overlapping: bool) -> SeriesSet:
    """:func:`merge_ragged` over SeriesSets, matching series by label set."""
    all_labels = sorted({ls for s in sets for ls in s.labels})
    gid_of: dict[Labels, int] = {ls: i for i, ls in enumerate(all_labels)}
    parts: list[Ragged] = []
    for s in sets:
        g = np.fromiter((gid_of[ls] for ls in s.labels), np.int64, count=len(s.labels))
        parts.append(Ragged(g, s.offsets, s.ts, s.values, s.st))
    gids, offsets, ts, vals, st = merge_ragged(parts, overlapping=overlapping)
    return SeriesSet([all_labels[i] for i in gids.tolist()], offsets, ts, vals, st=st)


def compact_blocks(parent_dir: Path, blocks: Sequence[Block]) -> BlockMeta | None:
    """Merge ``blocks`` into one new block under ``parent_dir``; None when nothing is left.

    Tombstoned samples are dropped. Overlapping blocks are merged sample by sample
    (Prometheus's vertical compaction); at a timestamp held by several blocks the one
    created first (smallest ULID) wins, as in reads (see ``storage/merge.py``), so a
    compaction never changes what a query returns.
    The new block spans all inputs, has level ``max + 1``, the union of their sources
    and the inputs as parents. Works one 2h window at a time, so memory stays bounded
    by a window's samples whatever the block sizes. The inputs are left in place: the
    caller deletes them (also when None is returned, since then all their data was
    deleted).
    """
    if not blocks:
        return None
    metas = [b.meta for b in blocks]
    mint = min(m.min_time for m in metas)
    maxt = max(m.max_time for m in metas)
    by_time = sorted(range(len(blocks)), key=lambda i: metas[i].min_time)
    disjoint = all(metas[a].max_time <= metas[b].min_time for a, b in itertools.pairwise(by_time))
    read_order = by_time if disjoint else sorted(range(len(blocks)), key=lambda i: metas[i].ulid)
    # Every input series gets its row in the output, numbered in label order.
    block_labels = [b.index.series_labels(b.index.all_postings()) for b in blocks]
    all_labels = sorted({ls for lbls in block_labels for ls in lbls})
    gid_of: dict[Labels, int] = {ls: i for i, ls in enumerate(all_labels)}
    gmaps = [np.fromiter((gid_of[ls] for ls in lbls), np.int64, count=len(lbls)) for lbls in block_labels]
    writer = BlockWriter(
        Path(parent_dir), all_labels, min_time=mint, max_time=maxt,
        level=max(m.level for m in metas) + 1,
        sources=sorted({s for m in metas for s in m.sources}),
        parents=[m.ulid for m in metas],
    )  # fmt: skip
    queriers = [b.querier(m.min_time, m.max_time - 1) for b, m in zip(blocks, metas)]
    written = 0
    try:
        # Loop over the 2h windows that hold data (pieces never cross one); each step
        # reads, merges and writes one window of every block.
        windows = np.unique(np.concatenate([b.index.t["piece_mint"] // WINDOW_MS for b in blocks]))
        for w in windows.tolist():
            lo, hi = max(mint, w * WINDOW_MS), min(maxt - 1, (w + 1) * WINDOW_MS - 1)
            parts: list[Ragged] = []
            for k in read_order:
                if metas[k].min_time <= hi and metas[k].max_time > lo:
                    ids, off, ts, vals, st = queriers[k].read_series(blocks[k].index.all_postings(), lo, hi)
                    parts.append(Ragged(gmaps[k][ids], off, ts, vals, st))
            gids, offsets, ts, vals, st = merge_ragged(parts, overlapping=not disjoint)
            writer.add(gids, offsets, ts, vals, st)
            written += len(ts)
    except BaseException:
        writer.abort()
        raise
    finally:
        for q in queriers:
            q.close()
    if written == 0:
        writer.abort()
        return None
    return writer.finish()
