"""Writing a block: a SeriesSet in, an immutable directory out (atomically).

Samples are cut into *pieces*: one series' samples inside one aligned time window
(:data:`WINDOW_MS`). Pieces of one window are packed, in series order, into value
chunks of about :data:`CHUNK_SAMPLES` samples. Timestamp columns are stored once per
distinct column: all series of one scrape target share their timestamps, so a
block of regular scrapes keeps one timestamp column per target and window instead of
one per series. Layouts: docs/format/block.md.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signalfire._types import I64
from signalfire.labels import Labels
from signalfire.storage import SeriesSet
from signalfire.tsdb.block_meta import BlockMeta, new_ulid, write_meta
from signalfire.tsdb.chunks.chunk_file import ChunkWriter, encode_ts_chunk, encode_value_chunk
from signalfire.tsdb.index.index_file import write_index
from signalfire.tsdb.tombstones import Tombstones, write_tombstones

#: Pieces never cross a multiple of this (2h, the head's chunk range).
WINDOW_MS = 2 * 3_600_000
#: Value and ts chunks are cut when they reach this many samples.
CHUNK_SAMPLES = 1 << 16
INDEX_FILE = "index"
CHUNKS_DIR = "chunks"
CHUNK_SEGMENT = "000001"


def ragged_arange(starts: I64, lens: I64) -> I64:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lens)])`` without the loop."""
    lens = np.asarray(lens, np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64)
    shift = np.asarray(starts, np.int64) - (np.cumsum(lens) - lens)
    out: I64 = np.repeat(shift, lens) + np.arange(total, dtype=np.int64)
    return out


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


def _restrict(
    series: SeriesSet, min_time: int, max_time: int
) -> tuple[list[Labels], I64, I64, I64, I64 | None]:
    """Samples in ``[min_time, max_time)`` only, series left empty dropped."""
    ts = np.asarray(series.ts, np.int64)
    sid = np.repeat(np.arange(len(series.labels), dtype=np.int64), np.diff(series.offsets))
    keep = (ts >= min_time) & (ts < max_time)
    if len(ts) > 1:
        same = sid[1:] == sid[:-1]
        if np.any(same & (ts[1:] <= ts[:-1])):
            raise AssertionError("BUG: write_block got timestamps that do not increase within a series")
    counts = np.bincount(sid[keep], minlength=len(series.labels))
    alive = np.flatnonzero(counts > 0)
    offsets = np.zeros(len(alive) + 1, np.int64)
    np.cumsum(counts[alive], out=offsets[1:])
    st = np.asarray(series.st, np.int64)[keep] if series.st is not None else None
    values = np.asarray(series.values, np.float64)[keep]
    return [series.labels[i] for i in alive.tolist()], offsets, ts[keep], values, st  # type: ignore[return-value]


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
    parent_dir = Path(parent_dir)
    ulid = ulid or new_ulid()
    tmp = parent_dir / (ulid + ".tmp")
    final = parent_dir / ulid
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / CHUNKS_DIR).mkdir(parents=True)
    try:
        labels, offsets, ts, values, st = _restrict(_sorted_series(series), min_time, max_time)
        tables, n_pieces = _write_chunks(tmp / CHUNKS_DIR / CHUNK_SEGMENT, offsets, ts, values, st)
        write_index(tmp / INDEX_FILE, labels, tables)
        write_tombstones(tmp, Tombstones())
        meta = BlockMeta(
            ulid=ulid,
            min_time=min_time,
            max_time=max_time,
            num_series=len(labels),
            num_samples=len(ts),
            num_chunks=n_pieces,
            level=level,
            sources=tuple(sorted(set(sources))) if sources else (ulid,),
            parents=tuple(parents),
        )
        write_meta(tmp, meta)
        _fsync_dir(tmp / CHUNKS_DIR)
        _fsync_dir(tmp)
        os.replace(tmp, final)
        _fsync_dir(parent_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _write_chunks(
    path: Path, offsets: I64, ts: I64, values: np.ndarray, st: I64 | None
) -> tuple[dict[str, I64], int]:
    """Cut pieces, dedupe timestamp columns, write all chunks; returns the index tables."""
    S = len(offsets) - 1
    sid = np.repeat(np.arange(S, dtype=np.int64), np.diff(offsets))
    win = np.floor_divide(ts, WINDOW_MS)
    # Pieces: runs of equal (series, window), in series order.
    brk = np.ones(len(ts), np.bool_)
    if len(ts):
        brk[1:] = (sid[1:] != sid[:-1]) | (win[1:] != win[:-1])
    p_start = np.flatnonzero(brk).astype(np.int64)
    p_len = np.diff(np.append(p_start, len(ts)))
    p_series = sid[p_start]
    p_win = win[p_start]
    # Chunk order: by window, then series (a stable sort keeps series order).
    order = np.argsort(p_win, kind="stable")
    o_len = p_len[order]
    o_win = p_win[order]
    o_start = p_start[order]
    perm = ragged_arange(o_start, o_len)  # sample index in chunk order
    o_off = np.zeros(len(order) + 1, np.int64)
    np.cumsum(o_len, out=o_off[1:])
    v_chunk_of, v_pos = _cut(o_win, o_len)
    # Timestamp columns: identical (window, samples) pieces share one column.
    col_of, col_rep = _dedupe_columns(ts[perm], o_off, o_win)
    c_win = o_win[col_rep]
    c_len = o_len[col_rep]
    t_chunk_of, t_pos = _cut(c_win, c_len)
    n_v = int(v_chunk_of.max()) + 1 if len(v_chunk_of) else 0
    n_t = int(t_chunk_of.max()) + 1 if len(t_chunk_of) else 0
    vals_o = values[perm]
    ts_o = ts[perm]
    st_o = st[perm] if st is not None else None
    col_samples = ragged_arange(o_off[col_rep], c_len)
    ts_cols = ts_o[col_samples]
    col_off = np.zeros(len(col_rep) + 1, np.int64)
    np.cumsum(c_len, out=col_off[1:])
    refs = np.zeros(n_v + n_t, np.int64)
    writer = ChunkWriter(path)
    try:
        # Loop over chunks; each iteration encodes one chunk's whole columns.
        v_bounds = np.searchsorted(v_chunk_of, np.arange(n_v + 1))
        t_bounds = np.searchsorted(t_chunk_of, np.arange(n_t + 1))
        for c in range(n_t):
            a, b = int(t_bounds[c]), int(t_bounds[c + 1])
            refs[n_v + c] = writer.write(encode_ts_chunk(c_len[a:b], ts_cols[col_off[a] : col_off[b]]))
        for c in range(n_v):
            a, b = int(v_bounds[c]), int(v_bounds[c + 1])
            sa, sb = int(o_off[a]), int(o_off[b])
            rec = encode_value_chunk(o_len[a:b], vals_o[sa:sb], st_o[sa:sb] if st_o is not None else None)
            refs[c] = writer.write(rec)
    finally:
        writer.close()
    # Index tables, back in series order.
    inv = np.empty(len(order), np.int64)
    inv[order] = np.arange(len(order))
    piece_off = np.zeros(S + 1, np.int64)
    np.cumsum(np.bincount(p_series, minlength=S), out=piece_off[1:])
    last = p_start + p_len - 1
    tables = {
        "piece_off": piece_off,
        "piece_mint": ts[p_start] if len(ts) else np.empty(0, np.int64),
        "piece_maxt": ts[last] if len(ts) else np.empty(0, np.int64),
        "piece_chunk": v_chunk_of[inv],
        "piece_pos": v_pos[inv],
        "piece_tscol": col_of[inv],
        "tscol_chunk": t_chunk_of + n_v,
        "tscol_pos": t_pos,
        "chunk_ref": refs,
    }
    return tables, len(p_start)


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
