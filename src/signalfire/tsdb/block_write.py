"""Writing a block: label sets and samples in, an immutable directory out (atomically).

:class:`BlockWriter` streams a block window by window (compaction uses it);
:func:`write_block` writes a whole SeriesSet through it (the head and backfill do).

Samples are cut into *pieces*: one series' samples inside one aligned time window
(:data:`WINDOW_MS`). Pieces of one window are packed, in series order, into value
chunks of about :data:`CHUNK_SAMPLES` samples. Timestamp columns are stored once per
distinct column: all series of one scrape target share their timestamps, so a
block of regular scrapes keeps one timestamp column per target and window instead of
one per series. Layouts: docs/format/block.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signalfire._types import F64, I64
from signalfire.labels import Labels
from signalfire.storage import SeriesSet
from signalfire.tsdb.block_meta import BlockMeta, new_ulid, write_meta
from signalfire.tsdb.chunks.chunk_file import ChunkWriter, encode_ts_chunk, encode_value_chunk
from signalfire.tsdb.index.index_file import write_index
from signalfire.tsdb.tombstones import Tombstones, write_tombstones
from signalfire.util.files import fsync_dir
from signalfire.util.ragged import ragged_arange

#: Pieces never cross a multiple of this (2h, the head's chunk range).
WINDOW_MS = 2 * 3_600_000
#: Value and ts chunks are cut when they reach this many samples.
CHUNK_SAMPLES = 1 << 16
INDEX_FILE = "index"
CHUNKS_DIR = "chunks"
CHUNK_SEGMENT = "000001"


#: Odd 64-bit multipliers, one per position modulo 64, for the column hash.
_HASH_MULT = (
    np.random.default_rng(0x5F1E).integers(0, 2**63, 64, dtype=np.uint64) << np.uint64(1)
) | np.uint64(1)


def _sorted_series(series: SeriesSet) -> SeriesSet:
    """The same set with series sorted by labels; duplicate label sets are a bug."""
    labels = list(series.labels)
    if all(labels[i] < labels[i + 1] for i in range(len(labels) - 1)):
        return series
    order = sorted(range(len(labels)), key=labels.__getitem__)
    if any(labels[order[i]] == labels[order[i + 1]] for i in range(len(order) - 1)):
        raise AssertionError("BUG: write_block got duplicate label sets")
    lens = np.diff(series.offsets)[order]
    idx = ragged_arange(series.offsets[:-1][order], lens)
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    st = series.st[idx] if series.st is not None else None
    return SeriesSet([labels[i] for i in order], offsets, series.ts[idx], series.values[idx], st=st)


class BlockWriter:
    """Streams one block to disk: label sets first, then samples window by window.

    ``labels`` are every series the block may hold, sorted and unique; :meth:`add`
    takes samples of some of them (by position in ``labels``), in non-decreasing 2h
    windows across calls; :meth:`finish` writes the index, tombstones and meta.json
    and renames the directory into place. Series that never got a sample are left
    out of the index. Memory stays bounded by one :meth:`add` call's data, which is
    what lets compaction merge large blocks window by window; a caller may as well
    split one window into batches of series (e.g. persisting a large head), as long
    as a series' samples arrive in time order. Identical timestamp columns are shared
    within one call only. Not thread-safe.
    """

    def __init__(
        self,
        parent_dir: Path,
        labels: Sequence[Labels],
        *,
        min_time: int,
        max_time: int,
        level: int = 1,
        sources: Sequence[str] = (),
        parents: Sequence[str] = (),
        ulid: str | None = None,
    ) -> None:
        self.parent_dir = Path(parent_dir)
        self.labels = list(labels)
        self.ulid = ulid or new_ulid()
        self.min_time, self.max_time = min_time, max_time
        self.level = level
        self.sources = tuple(sorted(set(sources))) if sources else (self.ulid,)
        self.parents = tuple(parents)
        self.tmp = self.parent_dir / (self.ulid + ".tmp")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        (self.tmp / CHUNKS_DIR).mkdir(parents=True)
        self._chunks = ChunkWriter(self.tmp / CHUNKS_DIR / CHUNK_SEGMENT)
        self._pieces: list[dict[str, I64]] = []
        self._tscols: list[tuple[I64, I64]] = []
        self._refs: list[int] = []
        self._n_cols = 0
        self._n_samples = 0
        self._last_window: int | None = None

    def add(self, sids: I64, offsets: I64, ts: I64, values: F64, st: I64 | None = None) -> None:
        """Add samples of series ``sids`` (ascending positions in ``labels``), ragged by ``offsets``.

        Samples outside ``[min_time, max_time)`` are dropped. Windows must not go back
        in time across calls (AssertionError otherwise).
        """
        sids = np.asarray(sids, np.int64)
        ts = np.asarray(ts, np.int64)
        lens = np.diff(offsets)
        owner = np.repeat(sids, lens)
        keep = (ts >= self.min_time) & (ts < self.max_time)
        if len(ts) > 1 and np.any((owner[1:] == owner[:-1]) & (ts[1:] <= ts[:-1])):
            raise AssertionError("BUG: block samples must increase in time within a series")
        if not keep.all():
            owner, ts, values = owner[keep], ts[keep], np.asarray(values)[keep]
            st = st[keep] if st is not None else None
        if len(ts) == 0:
            return
        first_win = int(np.floor_divide(ts.min(), WINDOW_MS))
        if self._last_window is not None and first_win < self._last_window:
            raise AssertionError("BUG: BlockWriter.add went back to an earlier window")
        self._last_window = int(np.floor_divide(ts.max(), WINDOW_MS))
        self._write_batch(owner, ts, np.asarray(values, np.float64), st)

    def _write_batch(self, owner: I64, ts: I64, values: F64, st: I64 | None) -> None:
        """Cut pieces, dedupe timestamp columns and write the chunks of one batch."""
        win = np.floor_divide(ts, WINDOW_MS)
        # Pieces: runs of equal (series, window), in series order.
        brk = np.ones(len(ts), np.bool_)
        brk[1:] = (owner[1:] != owner[:-1]) | (win[1:] != win[:-1])
        p_start = np.flatnonzero(brk).astype(np.int64)
        p_len = np.diff(np.append(p_start, len(ts)))
        p_win = win[p_start]
        # Chunk order: by window, then series (a stable sort keeps series order).
        order = np.argsort(p_win, kind="stable")
        o_len, o_win = p_len[order], p_win[order]
        perm = ragged_arange(p_start[order], o_len)  # sample index in chunk order
        o_off = np.zeros(len(order) + 1, np.int64)
        np.cumsum(o_len, out=o_off[1:])
        v_chunk_of, v_pos = _cut(o_win, o_len)
        ts_o = ts[perm]
        # Timestamp columns: identical (window, samples) pieces share one column.
        col_of, col_rep = _dedupe_columns(ts_o, o_off, o_win)
        c_len = o_len[col_rep]
        t_chunk_of, t_pos = _cut(o_win[col_rep], c_len)
        ts_cols = ts_o[ragged_arange(o_off[col_rep], c_len)]
        col_off = np.zeros(len(col_rep) + 1, np.int64)
        np.cumsum(c_len, out=col_off[1:])
        vals_o = values[perm]
        st_o = st[perm] if st is not None else None
        base = len(self._refs)
        n_v = int(v_chunk_of[-1]) + 1
        n_t = int(t_chunk_of[-1]) + 1
        # Loop over chunks; each iteration encodes one chunk's whole columns.
        v_bounds = np.searchsorted(v_chunk_of, np.arange(n_v + 1))
        for c in range(n_v):
            a, b = int(v_bounds[c]), int(v_bounds[c + 1])
            sa, sb = int(o_off[a]), int(o_off[b])
            rec = encode_value_chunk(o_len[a:b], vals_o[sa:sb], st_o[sa:sb] if st_o is not None else None)
            self._refs.append(self._chunks.write(rec))
        t_bounds = np.searchsorted(t_chunk_of, np.arange(n_t + 1))
        for c in range(n_t):
            a, b = int(t_bounds[c]), int(t_bounds[c + 1])
            self._refs.append(
                self._chunks.write(encode_ts_chunk(c_len[a:b], ts_cols[col_off[a] : col_off[b]]))
            )
        inv = np.empty(len(order), np.int64)
        inv[order] = np.arange(len(order))
        self._pieces.append(
            {
                "series": owner[p_start],
                "win": p_win,
                "mint": ts[p_start],
                "maxt": ts[p_start + p_len - 1],
                "chunk": base + v_chunk_of[inv],
                "pos": v_pos[inv],
                "tscol": self._n_cols + col_of[inv],
            }
        )
        self._tscols.append((base + n_v + t_chunk_of, t_pos))
        self._n_cols += len(col_rep)
        self._n_samples += len(ts)

    def finish(self) -> BlockMeta:
        """Write index, tombstones and meta.json, fsync, and rename the block into place."""
        try:
            self._chunks.close()
            pieces = {k: _cat([p[k] for p in self._pieces]) for k in _PIECE_KEYS}
            # Pieces in (series, window) order; series without pieces leave the index.
            order = np.lexsort((pieces["win"], pieces["series"]))
            pieces = {k: v[order] for k, v in pieces.items()}
            present = np.zeros(len(self.labels), np.bool_)
            present[pieces["series"]] = True
            new_id = np.cumsum(present) - 1
            S = int(present.sum())
            piece_off = np.zeros(S + 1, np.int64)
            np.cumsum(np.bincount(new_id[pieces["series"]], minlength=S), out=piece_off[1:])
            tables = {
                "piece_off": piece_off,
                "piece_mint": pieces["mint"],
                "piece_maxt": pieces["maxt"],
                "piece_chunk": pieces["chunk"],
                "piece_pos": pieces["pos"],
                "piece_tscol": pieces["tscol"],
                "tscol_chunk": _cat([c for c, _ in self._tscols]),
                "tscol_pos": _cat([p for _, p in self._tscols]),
                "chunk_ref": np.array(self._refs, np.int64),
            }
            labels = [self.labels[i] for i in np.flatnonzero(present).tolist()]
            write_index(self.tmp / INDEX_FILE, labels, tables)
            write_tombstones(self.tmp, Tombstones())
            meta = BlockMeta(
                ulid=self.ulid,
                min_time=self.min_time,
                max_time=self.max_time,
                num_series=S,
                num_samples=self._n_samples,
                num_chunks=len(order),
                level=self.level,
                sources=self.sources,
                parents=self.parents,
            )
            write_meta(self.tmp, meta)
            fsync_dir(self.tmp / CHUNKS_DIR)
            fsync_dir(self.tmp)
            os.replace(self.tmp, self.parent_dir / self.ulid)
            fsync_dir(self.parent_dir)
        except BaseException:
            self.abort()
            raise
        return meta

    def abort(self) -> None:
        """Drop the half-written block."""
        with contextlib.suppress(OSError):
            self._chunks.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


_PIECE_KEYS = ("series", "win", "mint", "maxt", "chunk", "pos", "tscol")


def _cat(arrays: list[I64]) -> I64:
    return np.concatenate(arrays).astype(np.int64, copy=False) if arrays else np.empty(0, np.int64)


def write_block(
    parent_dir: Path,
    series: SeriesSet,
    *,
    min_time: int,
    max_time: int,
    level: int = 1,
    sources: Sequence[str] = (),
    parents: Sequence[str] = (),
    ulid: str | None = None,
) -> BlockMeta:
    """Persist ``series`` as a new block under ``parent_dir`` and return its meta.

    Only samples in ``[min_time, max_time)`` are written (``max_time`` exclusive, as
    meta.json); series without samples there are left out. Series should arrive
    sorted by labels (they are sorted here otherwise); timestamps must increase within
    a series. The block is built in ``<ulid>.tmp``, every file fsynced, then renamed to
    ``<ulid>``, so a crash never leaves a half-written block under a block name.
    Level-1 blocks list themselves as their only source.
    """
    series = _sorted_series(series)
    w = BlockWriter(
        parent_dir, series.labels, min_time=min_time, max_time=max_time, level=level,
        sources=sources, parents=parents, ulid=ulid,
    )  # fmt: skip
    try:
        w.add(
            np.arange(len(series.labels), dtype=np.int64), series.offsets, series.ts, series.values, series.st
        )
    except BaseException:
        w.abort()
        raise
    return w.finish()


def _cut(win: I64, lens: I64) -> tuple[I64, I64]:
    """Assign consecutive items to chunks of about CHUNK_SAMPLES samples, never across windows.

    Returns (chunk number, position inside the chunk) per item.
    """
    n = len(lens)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    new_win = np.ones(n, np.bool_)
    new_win[1:] = win[1:] != win[:-1]
    # Samples before each item inside its window.
    cum = np.cumsum(lens) - lens
    win_base = np.maximum.accumulate(np.where(new_win, cum, 0))
    bucket = (cum - win_base) // CHUNK_SAMPLES
    new_chunk = new_win.copy()
    new_chunk[1:] |= bucket[1:] != bucket[:-1]
    chunk_of = np.cumsum(new_chunk) - 1
    first = np.flatnonzero(new_chunk)
    pos = np.arange(n, dtype=np.int64) - first[chunk_of]
    return chunk_of.astype(np.int64), pos.astype(np.int64)


def _dedupe_columns(ts: I64, off: I64, win: I64) -> tuple[I64, I64]:
    """Group identical timestamp columns; returns (column of each piece, representative piece).

    Columns are numbered in order of first appearance. A hash proposes the groups and
    an exact comparison confirms every member, so a collision only costs a column.
    """
    n = len(off) - 1
    lens = np.diff(off)
    # A position-weighted sum (wrapping uint64) with the first sample's time: cheap, and
    # only a proposal. Every piece has a sample, so reduceat needs no empty-segment care.
    pos = np.arange(len(ts), dtype=np.int64) - np.repeat(off[:-1], lens)
    weighted = ts.view(np.uint64) * _HASH_MULT[pos & 63]
    h = np.add.reduceat(weighted, off[:-1]) if n else np.zeros(0, np.uint64)
    h ^= ts[off[:-1]].view(np.uint64) if n else h
    # Representative = first piece with the same (window, length, hash).
    key = np.lexsort((np.arange(n), h, lens, win))
    ks = key
    same = np.zeros(n, np.bool_)
    if n > 1:
        same[1:] = (win[ks][1:] == win[ks][:-1]) & (lens[ks][1:] == lens[ks][:-1]) & (h[ks][1:] == h[ks][:-1])
    grp_first = np.maximum.accumulate(np.where(~same, np.arange(n), 0))
    rep = np.empty(n, np.int64)
    rep[ks] = ks[grp_first]
    # Exact check against the representative; mismatches keep their own column.
    rep_samples = ragged_arange(off[rep], lens)
    differs = np.logical_or.reduceat(ts != ts[rep_samples], off[:-1]) if n else np.zeros(0, np.bool_)
    rep[differs] = np.flatnonzero(differs)
    is_rep = rep == np.arange(n)
    col_number = np.cumsum(is_rep) - 1
    return col_number[rep].astype(np.int64), np.flatnonzero(is_rep).astype(np.int64)
