"""Reading a block: matchers to postings to pieces to decoded chunks to a SeriesSet.

Everything after the postings is whole-array work: the pieces of all selected series
are found with one ragged arange, each needed chunk is decoded once (a loop over
chunks, through the block's cache), every piece becomes a run (column, start, length)
of a decoded column, the pieces crossing the range ends are trimmed (one search per
distinct timestamp column, shared by many series), and the runs are copied out in one
pass. Tombstones, when the block has any, are a mask over the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from signalfire._types import I64
from signalfire.errors import CorruptionError
from signalfire.labels import Matcher
from signalfire.storage import RunSet, SelectHints, SeriesSet, concat_runs
from signalfire.tsdb.index.postings import select_postings
from signalfire.util.deadline import NO_DEADLINE, Deadline
from signalfire.util.ragged import ragged_arange, segment_ids

if TYPE_CHECKING:
    from signalfire.tsdb.block import Block

#: A select checks its deadline before every this many decoded chunks (a chunk holds
#: whole columns of many series, so this is a few milliseconds of decoding).
_CHUNKS_PER_CHECK = 16


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

    def select(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> SeriesSet:
        """Series matching every matcher with their samples in ``[mint, maxt]``, sorted by labels.

        Tombstoned samples are left out; series left without samples are dropped. With
        ``hints.func == "series"`` only label sets are returned (no samples are decoded).
        ``deadline`` is checked between groups of decoded chunks.
        """
        self._check_open()
        dl = deadline or NO_DEADLINE
        dl.check()
        mint, maxt = self._range(hints)
        ids = select_postings(self.block.index, matchers)
        if hints is not None and hints.func == "series":
            return self._labels_only(ids, mint, maxt)
        alive, offsets, ts, values, st = self.read_series(ids, mint, maxt, dl)
        return SeriesSet(self.block.index.series_labels(alive), offsets, ts, values, st=st)

    def select_runs(
        self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline: Deadline | None = None
    ) -> RunSet:
        """:meth:`select` as runs of the decoded (cached, read-only) chunk columns.

        For a merge, which then copies every sample once. The columns stay valid while
        the block is open. Blocks with tombstones and labels-only selects fall back to
        :meth:`select`.
        """
        self._check_open()
        dl = deadline or NO_DEADLINE
        if self.block.tombstones or (hints is not None and hints.func == "series"):
            return RunSet.of(self.select(matchers, hints, dl))
        dl.check()
        mint, maxt = self._range(hints)
        ids = select_postings(self.block.index, matchers)
        owner, t_cols, t_slot, t_start, v_cols, st_cols, v_slot, v_start, lens = self._runs(
            ids, mint, maxt, dl
        )
        keep = lens > 0
        owner = owner[keep]
        alive, run_counts = np.unique(owner, return_counts=True)
        run_off = np.zeros(len(alive) + 1, np.int64)
        np.cumsum(run_counts, out=run_off[1:])
        return RunSet(
            self.block.index.series_labels(ids[alive]),
            run_off,
            lens[keep],
            t_cols,
            t_slot[keep],
            t_start[keep],
            v_cols,
            v_slot[keep],
            v_start[keep],
            st_cols or None,
        )

    def _range(self, hints: SelectHints | None) -> tuple[int, int]:
        mint, maxt = self.mint, self.maxt
        if hints is not None:
            mint = max(mint, hints.start) if hints.start is not None else mint
            maxt = min(maxt, hints.end) if hints.end is not None else maxt
        return mint, maxt

    def _labels_only(self, ids: I64, mint: int, maxt: int) -> SeriesSet:
        _, owner = self._pieces(ids, mint, maxt)
        keep = np.unique(owner)
        zero = np.zeros(len(keep) + 1, np.int64)
        labels = self.block.index.series_labels(ids[keep])
        return SeriesSet(labels, zero, np.empty(0, np.int64), np.empty(0, np.float64))

    def read_series(
        self, ids: I64, mint: int, maxt: int, deadline: Deadline = NO_DEADLINE
    ) -> tuple[I64, I64, I64, np.ndarray, I64 | None]:
        """Samples of block series ``ids`` (sorted) in ``[mint, maxt]`` without tombstoned ones.

        Returns (ids that kept samples, offsets, ts, values, st or None): the ragged
        arrays of a SeriesSet without building label sets, for compaction. Fresh arrays,
        never views of the (cached) decoded chunks.
        """
        owner, t_cols, t_slot, t_start, v_cols, st_cols, v_slot, v_start, lens = self._runs(
            ids, mint, maxt, deadline
        )
        deadline.check()
        ts = concat_runs(t_cols, t_slot, t_start, lens, np.int64)
        values = concat_runs(v_cols, v_slot, v_start, lens, np.float64)
        st = concat_runs(st_cols, v_slot, v_start, lens, np.int64) if st_cols else None
        counts = np.bincount(owner, weights=lens, minlength=len(ids)).astype(np.int64)
        tomb = self.block.tombstones
        if tomb and len(ts):
            off = np.zeros(len(ids) + 1, np.int64)
            np.cumsum(counts, out=off[1:])
            keep_sample = ~tomb.deleted_mask(ids, off, ts)
            counts = np.bincount(np.repeat(owner, lens)[keep_sample], minlength=len(ids))
            ts, values = ts[keep_sample], values[keep_sample]
            st = st[keep_sample] if st is not None else None
        alive = np.flatnonzero(counts > 0)
        offsets = np.zeros(len(alive) + 1, np.int64)
        np.cumsum(counts[alive], out=offsets[1:])
        return ids[alive], offsets, ts, values, st

    def _runs(self, ids: I64, mint: int, maxt: int, deadline: Deadline = NO_DEADLINE) -> tuple[Any, ...]:
        """Every piece of ``ids`` in range as a run of decoded columns, trimmed to the range.

        Returns (owner position in ``ids``, ts columns, ts slot, ts start, value columns,
        st columns or [], value slot, value start, length); runs may be empty after the
        trim. Pieces come in (series, time) order.
        """
        pieces, owner = self._pieces(ids, mint, maxt)
        t = self.block.index.t
        v_cols, st_cols, v_slot, v_start, lens = self._locate(
            t["piece_chunk"][pieces], t["piece_pos"][pieces], True, deadline
        )
        tscol = t["piece_tscol"][pieces]
        t_cols, _, t_slot, t_start, t_lens = self._locate(
            t["tscol_chunk"][tscol], t["tscol_pos"][tscol], False, deadline
        )
        if not np.array_equal(lens, t_lens):
            bad = int(t["tscol_chunk"][tscol][np.argmax(lens != t_lens)])
            raise CorruptionError(
                str(self.block.chunks.path), int(t["chunk_ref"][bad]), "ts column length mismatch"
            )
        # Only pieces crossing mint or maxt need cutting; their ts columns are shared by
        # many series, so each distinct column is searched once.
        cut = (t["piece_mint"][pieces] < mint) | (t["piece_maxt"][pieces] > maxt)
        if cut.any():
            lo, hi = _cut_columns(t_cols, tscol[cut], t_slot[cut], t_start[cut], t_lens[cut], mint, maxt)
            v_start[cut] += lo
            t_start[cut] += lo
            lens[cut] = hi - lo
        return owner, t_cols, t_slot, t_start, v_cols, st_cols, v_slot, v_start, lens

    def _pieces(self, ids: I64, mint: int, maxt: int) -> tuple[I64, I64]:
        """Pieces of series ``ids`` overlapping ``[mint, maxt]`` in (series, time) order, with owners."""
        t = self.block.index.t
        p_first = t["piece_off"][ids]
        p_count = t["piece_off"][ids + 1] - p_first
        pieces = ragged_arange(p_first, p_count)
        owner = segment_ids(p_count)
        live = (t["piece_mint"][pieces] <= maxt) & (t["piece_maxt"][pieces] >= mint)
        return pieces[live], owner[live]

    def _locate(
        self, chunk: I64, pos: I64, values: bool, deadline: Deadline = NO_DEADLINE
    ) -> tuple[list[np.ndarray], list[np.ndarray], I64, I64, I64]:
        """Decode each distinct chunk once and locate every (chunk, position) run in it.

        Returns (decoded columns, their start-timestamp columns - empty when no chunk
        has any, slot of each run's column, start inside it, length). ``deadline`` is
        checked every :data:`_CHUNKS_PER_CHECK` chunks.
        """
        uniq, inv = np.unique(chunk, return_inverse=True)
        inv = inv.reshape(-1).astype(np.int64, copy=False)
        cols: list[np.ndarray] = []
        sts: list[np.ndarray | None] = []
        counts: list[I64] = []
        for k, c in enumerate(uniq.tolist()):  # loop over distinct chunks; each decodes whole columns
            if k % _CHUNKS_PER_CHECK == 0:
                deadline.check()
            dec = self.block.chunk(c)
            col = dec.values if values else dec.ts
            if col is None:
                kind = "value" if values else "ts"
                ref = int(self.block.index.t["chunk_ref"][c])
                raise CorruptionError(str(self.block.chunks.path), ref, f"not a {kind} chunk")
            cols.append(col)
            sts.append(dec.st)
            counts.append(dec.counts)
        z = np.empty(0, np.int64)
        if not cols:
            return [], [], z, z, z
        # Run r of chunk j starts at sum(counts of runs < r in j) inside chunk j's column.
        n_runs = np.array([len(c) for c in counts], np.int64)
        run_base = np.zeros(len(counts), np.int64)
        np.cumsum(n_runs[:-1], out=run_base[1:])
        all_counts = np.concatenate(counts)
        run_start = np.cumsum(all_counts) - all_counts
        run_start -= np.repeat(run_start[run_base], n_runs)
        pos = np.asarray(pos, np.int64)
        if len(pos) and (np.any(pos >= n_runs[inv]) or np.any(pos < 0)):
            bad = int(uniq[inv[np.argmax((pos >= n_runs[inv]) | (pos < 0))]])
            ref = int(self.block.index.t["chunk_ref"][bad])
            raise CorruptionError(str(self.block.chunks.path), ref, "piece position beyond its chunk")
        flat = run_base[inv] + pos
        st_cols: list[np.ndarray] = []
        if any(x is not None for x in sts):
            st_cols = [x if x is not None else np.zeros(len(d), np.int64) for x, d in zip(sts, cols)]
        return cols, st_cols, inv, run_start[flat], all_counts[flat].astype(np.int64)

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


def _cut_columns(
    cols: list[np.ndarray], col_id: I64, slot: I64, start: I64, lens: I64, mint: int, maxt: int
) -> tuple[I64, I64]:
    """For runs of ts columns, the sub-run ``[lo, hi)`` inside ``[mint, maxt]`` (per run).

    Runs of the same column (``col_id``) share one search: the distinct columns' samples
    are gathered once and counted below ``mint`` and up to ``maxt``.
    """
    uniq, first, inv = np.unique(col_id, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    ulens = lens[first]
    ts = concat_runs(cols, slot[first], start[first], ulens, np.int64)
    seg = segment_ids(ulens)
    lo = np.bincount(seg, weights=ts < mint, minlength=len(uniq)).astype(np.int64)
    hi = np.bincount(seg, weights=ts <= maxt, minlength=len(uniq)).astype(np.int64)
    return lo[inv], hi[inv]
