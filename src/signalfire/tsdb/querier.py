"""Reading a block: matchers to postings to pieces to decoded chunks to a SeriesSet.

Everything after the postings is whole-array work: the pieces of all selected series
are gathered with one ragged arange, each needed chunk is decoded once (a loop over
chunks), and samples are cut to the time range and tombstones with masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from signalfire._types import I64
from signalfire.errors import CorruptionError
from signalfire.labels import Matcher
from signalfire.storage import SelectHints, SeriesSet
from signalfire.tsdb.block_write import ragged_arange
from signalfire.tsdb.index.postings import select_postings

if TYPE_CHECKING:
    from signalfire.tsdb.block import Block


class BlockQuerier:
    """A :class:`signalfire.storage.Querier` over one block and ``[mint, maxt]`` (ms, inclusive).

    Returned arrays are fresh copies (decoded from compressed chunks), so they stay
    valid after :meth:`close`. Label names and values come from the index and are not
    narrowed by the time range (as Prometheus's block querier). Not thread-safe; open
    one querier per thread.
    """

    def __init__(self, block: Block, mint: int, maxt: int) -> None:
        self.block = block
        self.mint = mint
        self.maxt = maxt
        self._closed = False

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        """Series matching every matcher with their samples in ``[mint, maxt]``, sorted by labels.

        Tombstoned samples are left out; series left without samples are dropped. With
        ``hints.func == "series"`` only label sets are returned (no samples are decoded).
        """
        self._check_open()
        mint, maxt = self.mint, self.maxt
        if hints is not None:
            mint = max(mint, hints.start) if hints.start is not None else mint
            maxt = min(maxt, hints.end) if hints.end is not None else maxt
        index = self.block.index
        ids = select_postings(index, matchers)
        if hints is not None and hints.func == "series":
            _, owner = self._pieces(ids, mint, maxt)
            keep = np.unique(owner)
            zero = np.zeros(len(keep) + 1, np.int64)
            return SeriesSet(
                index.series_labels(ids[keep]), zero, np.empty(0, np.int64), np.empty(0, np.float64)
            )
        alive, offsets, ts, values, st = self.read_series(ids, mint, maxt)
        return SeriesSet(index.series_labels(alive), offsets, ts, values, st=st)

    def read_series(self, ids: I64, mint: int, maxt: int) -> tuple[I64, I64, I64, np.ndarray, I64 | None]:
        """Samples of block series ``ids`` (sorted) in ``[mint, maxt]`` without tombstoned ones.

        Returns (ids that kept samples, offsets, ts, values, st or None): the ragged
        arrays of a SeriesSet without building label sets, for compaction.
        """
        pieces, owner = self._pieces(ids, mint, maxt)
        ts, values, st, lens = self._load(pieces)
        sample_owner = np.repeat(owner, lens)
        keep_sample = (ts >= mint) & (ts <= maxt)
        tomb = self.block.tombstones
        if tomb:
            off = np.zeros(len(ids) + 1, np.int64)
            np.cumsum(np.bincount(sample_owner, minlength=len(ids)), out=off[1:])
            keep_sample &= ~tomb.deleted_mask(ids, off, ts)
        counts = np.bincount(sample_owner[keep_sample], minlength=len(ids))
        alive = np.flatnonzero(counts > 0)
        offsets = np.zeros(len(alive) + 1, np.int64)
        np.cumsum(counts[alive], out=offsets[1:])
        st_kept = st[keep_sample] if st is not None else None
        return ids[alive], offsets, ts[keep_sample], values[keep_sample], st_kept

    def _pieces(self, ids: I64, mint: int, maxt: int) -> tuple[I64, I64]:
        """Pieces of series ``ids`` overlapping ``[mint, maxt]`` in (series, time) order, with owners."""
        t = self.block.index.t
        p_first = t["piece_off"][ids]
        p_count = t["piece_off"][ids + 1] - p_first
        pieces = ragged_arange(p_first, p_count)
        owner = np.repeat(np.arange(len(ids), dtype=np.int64), p_count)
        live = (t["piece_mint"][pieces] <= maxt) & (t["piece_maxt"][pieces] >= mint)
        return pieces[live], owner[live]

    def _load(self, pieces: I64) -> tuple[I64, np.ndarray, I64 | None, I64]:
        """Samples of ``pieces`` concatenated in order: (ts, values, st or None, piece lengths)."""
        t = self.block.index.t
        cols = t["piece_tscol"][pieces]
        vals, st, v_start, lens = self._gather(t["piece_chunk"][pieces], t["piece_pos"][pieces], values=True)
        ts, _, t_start, t_lens = self._gather(t["tscol_chunk"][cols], t["tscol_pos"][cols], values=False)
        if not np.array_equal(lens, t_lens):
            bad = int(t["tscol_chunk"][cols][np.argmax(lens != t_lens)])
            raise CorruptionError(
                str(self.block.chunks.path), int(t["chunk_ref"][bad]), "ts column length mismatch"
            )
        vi = ragged_arange(v_start, lens)
        ti = ragged_arange(t_start, lens)
        return ts[ti], vals[vi], (st[vi] if st is not None else None), lens

    def _gather(self, chunk: I64, pos: I64, *, values: bool) -> tuple[np.ndarray, I64 | None, I64, I64]:
        """Decode each distinct chunk once and locate every (chunk, position) run in them.

        Returns (concatenated data, concatenated st or None, start of each run in the
        data, length of each run).
        """
        uniq, inv = np.unique(chunk, return_inverse=True)
        data: list[np.ndarray] = []
        sts: list[np.ndarray | None] = []
        counts: list[I64] = []
        for c in uniq.tolist():  # loop over distinct chunks; each decodes whole columns
            dec = self.block.chunk(c)
            col = dec.values if values else dec.ts
            if col is None:
                kind = "value" if values else "ts"
                ref = int(self.block.index.t["chunk_ref"][c])
                raise CorruptionError(str(self.block.chunks.path), ref, f"not a {kind} chunk")
            data.append(col)
            sts.append(dec.st)
            counts.append(dec.counts)
        if not data:
            z = np.empty(0, np.int64)
            return (np.empty(0, np.float64) if values else z), None, z, z
        # Run r of chunk j sits at sum(samples of chunks < j) + sum(counts of runs < r in j).
        n_runs = np.array([len(c) for c in counts], np.int64)
        run_base = np.zeros(len(counts), np.int64)
        np.cumsum(n_runs[:-1], out=run_base[1:])
        all_counts = np.concatenate(counts)
        run_start = np.cumsum(all_counts) - all_counts
        flat = run_base[inv] + pos
        if len(flat) and (np.any(pos >= n_runs[inv]) or np.any(pos < 0)):
            bad = int(uniq[inv[np.argmax(pos >= n_runs[inv])]])
            ref = int(self.block.index.t["chunk_ref"][bad])
            raise CorruptionError(str(self.block.chunks.path), ref, "piece position beyond its chunk")
        st = None
        if any(x is not None for x in sts):
            st = np.concatenate(
                [x if x is not None else np.zeros(len(d), np.int64) for x, d in zip(sts, data)]
            )
        return np.concatenate(data), st, run_start[flat], all_counts[flat]

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Label names of the series matching ``matchers`` (all names without matchers), sorted."""
        self._check_open()
        index = self.block.index
        if not matchers:
            return index.label_names()
        ids = select_postings(index, matchers)
        syms = np.unique(index.pair_names(ids))
        return sorted(index.symbol(int(s)) for s in syms)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Sorted distinct values of ``name`` among the series matching ``matchers``."""
        self._check_open()
        index = self.block.index
        values = index.label_value_list(name)
        if not matchers:
            return list(values)
        ids = select_postings(index, matchers)
        pids, vidx = index.value_postings(name)
        hit = np.unique(vidx[np.isin(pids, ids)])
        return [values[int(i)] for i in hit]

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise AssertionError("BUG: querier used after close()")

    def __enter__(self) -> BlockQuerier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
