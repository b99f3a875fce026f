"""Overlapping blocks and head against a plain merge (issue 14 §1).

Random histories of in-order scrapes, out-of-order writes (between stored samples and
on top of them, with other values), cuts, compactions, reopens and kills between a
block's rename and the WAL checkpoint leave blocks that overlap each other and the
head. ``select`` must equal :class:`~reference.tsdb_select.FirstWriteModel` (the same
writes applied to dictionaries: one sample per timestamp, the first write wins), and
``query_range`` must equal the same engine over a head holding only the model's
samples, which has no overlaps. Series counts sit on both sides of every batching size
the read path has (head groups of 128 series, runs of 16 and 48, block value chunks cut
small so one timestamp column serves several value columns); every value codec occurs
(integers, two-decimal gauges, arbitrary floats, decimals with exceptions, exceptions
enough to fall back to XOR) with and without start timestamps.
"""

from __future__ import annotations

import itertools
import os
import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.tsdb_select import FirstWriteModel, as_expected
from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher
from signalfire.promql.engine import Engine
from signalfire.tsdb import DB, DBOptions, block_write, open_db

MIN = 60_000
STEP = 15_000
#: Blocks fsync every file; tmpfs makes that free, so examples cost CPU, not disk waits.
SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
STALE = np.uint64(0x7FF0000000000002).view(np.float64)
SPECIALS = np.array([STALE, np.uint64(0x7FF8000000000001).view(np.float64), -0.0, np.inf, -np.inf])
SERIES_COUNTS = [1, 2, 15, 16, 17, 47, 48, 49, 127, 128, 129, 200]
EXPRS = ["m", "sum(m)", "rate(m[2m])", "max_over_time(m[1m])"]


def _labels(n: int) -> list[Labels]:
    return [Labels.from_strings("__name__", "m", "i", f"{i:03d}") for i in range(n)]


def _values(rng: np.random.Generator, series: np.ndarray) -> np.ndarray:
    """One value per entry of ``series``; the series number picks the value codec."""
    kind = series % 5
    n = len(series)
    v = np.round(rng.random(n) * 100, 2)  # kind 1: two-decimal gauges
    v = np.where(kind == 0, rng.integers(0, 10_000, n).astype(np.float64), v)
    v = np.where(kind == 2, rng.random(n), v)
    # Kinds 3 and 4: decimals with a few exceptions, and so many that XOR takes over.
    special = rng.random(n) < np.where(kind == 3, 0.05, np.where(kind == 4, 0.5, 0.0))
    return np.where(special, SPECIALS[rng.integers(0, len(SPECIALS), n)], v)


scrape = st.tuples(st.just("scrape"), st.integers(1, 24), st.integers(0, 100), st.integers(0, 100))
ooo = st.tuples(st.just("ooo"), st.integers(1, 300), st.integers(1, 100), st.integers(0, 2**32 - 1))
action = st.sampled_from([("compact",), ("compact",), ("crash",), ("reopen",), ("none",)])
#: Phases of a scrape, maybe out-of-order writes, then a cut/compaction, kill or reopen.
#: The first phase always persists blocks (13 scrapes make the head compactable), so the
#: out-of-order writes after it land in blocks.
first = st.tuples(st.just("scrape"), st.integers(13, 30), st.just(0), st.just(100))
phases = st.tuples(
    first, st.lists(st.tuples(scrape, st.one_of(ooo, st.none()), action), min_size=1, max_size=3)
).map(lambda fp: [fp[0], ("compact",)] + [op for p in fp[1] for op in p if op is not None])


class _Killed(Exception):
    pass


def _truncate_killed(self: DB, mint: int) -> None:
    raise _Killed


class _History:
    """The DB under test, the model, and the time the scrapes have reached."""

    def __init__(self, path: str, opts: DBOptions, n_series: int, seed: int) -> None:
        self.path, self.opts = path, opts
        self.labels = _labels(n_series)
        self.db = open_db(path, opts)
        self.model = FirstWriteModel()
        self.rng = np.random.default_rng(seed)
        self.t = 0

    def write(self, idx: np.ndarray, ts: np.ndarray) -> None:
        values = _values(self.rng, idx)
        sts = np.where(self.rng.random(len(idx)) < 0.3, ts - 1000, 0) if self.rng.random() < 0.3 else None
        with self.db.appender() as app:
            refs = app.refs(self.labels)
            app.append_batch(refs[idx], ts, values, st=sts)
        got = [self.labels[i] for i in idx.tolist()]
        self.model.write(got, ts, values, np.zeros(len(idx), np.int64) if sts is None else sts)

    def apply(self, op: tuple) -> None:  # type: ignore[type-arg]
        S = len(self.labels)
        if op[0] == "scrape":  # in-order samples of a slice of the series, on a grid
            _, steps, a, b = op
            lo, hi = sorted((a * S // 100, b * S // 100 + 1))
            hi = min(hi, S)
            for _ in range(steps):
                self.t += STEP
                idx = np.arange(lo, hi, dtype=np.int64)
                self.write(idx, np.full(len(idx), self.t))
        elif op[0] == "ooo":  # on stored timestamps (rewrites) and between them
            _, count, back_pct, seed = op
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, S, count)
            # Anywhere in the last back_pct% of the time written so far: into blocks too.
            steps = self.t // STEP
            grid = (steps - rng.integers(0, max(1, steps * back_pct // 100) + 1, count)) * STEP
            ts = grid - np.where(rng.random(count) < 0.5, 0, rng.integers(1, STEP, count))
            self.write(idx, ts)
        elif op[0] == "compact":
            self.db.compact()
        elif op[0] == "none":
            pass
        elif op[0] == "reopen":
            self.db.close()
            self.db = open_db(self.path, self.opts)
        elif op[0] == "crash":  # a kill between a block's rename and the WAL checkpoint
            real = DB.truncate_head
            DB.truncate_head = _truncate_killed  # type: ignore[method-assign]
            try:
                self.db.compact()
            except _Killed:
                pass
            finally:
                DB.truncate_head = real  # type: ignore[method-assign]
            self.db.close()
            self.db = open_db(self.path, self.opts)

    def check_select(self, windows: list[tuple[int, int]]) -> None:
        """select over all time and ``windows``, all series and some, equals the model."""
        matchers = [
            [Matcher.equal("__name__", "m")],
            [Matcher.parse_type("=~", "i", "0.[02468]|1.*")],
        ]
        for ms, (mint, maxt) in itertools.product(matchers, [(MIN_TIME, MAX_TIME), *windows]):
            q = self.db.querier(mint, maxt)
            try:
                ss = q.select(ms)
            finally:
                q.close()
            ss.validate()
            assert as_expected(ss, with_st=True) == self.model.expected(ms, mint, maxt, with_st=True)

    def check_queries(self, windows: list[tuple[int, int]], step: int) -> None:
        """query_range equals the same engine over the model's samples alone."""
        with tempfile.TemporaryDirectory(dir=SHM) as clean_path:
            clean = _plain_db(clean_path, self.model)
            try:
                engine = Engine()
                for expr, (start, end) in itertools.product(EXPRS, windows):
                    got = engine.range_query(self.db, expr, start, end, step)
                    want = engine.range_query(clean, expr, start, end, step)
                    assert list(got.labels) == list(want.labels), expr
                    np.testing.assert_array_equal(got.present, want.present, err_msg=expr)
                    np.testing.assert_array_equal(
                        got.values[got.present].view(np.uint64),
                        want.values[want.present].view(np.uint64),
                        err_msg=expr,
                    )
            finally:
                clean.close()


def _plain_db(path: str, model: FirstWriteModel) -> DB:
    """A head holding exactly the model's samples, appended in order: no blocks, no overlap."""
    db = open_db(path, DBOptions(fsync="never", retention_ms=0))
    rows = model.rows()
    if rows:
        with db.appender() as app:
            refs = app.refs([ls for ls, _, _ in rows])
            lens = [len(ts) for _, ts, _ in rows]
            app.append_batch(
                np.repeat(refs, lens),
                np.concatenate([np.asarray(ts, np.int64) for _, ts, _ in rows]),
                np.concatenate([np.asarray(vs, np.float64) for _, _, vs in rows]),
                st=np.array([model.series[ls][t][1] for ls, ts, _ in rows for t in ts], np.int64),
            )
    return db


@settings(max_examples=15, deadline=None)
@given(
    n_series=st.sampled_from(SERIES_COUNTS),
    chunk_samples=st.sampled_from([16, 64, 1000, block_write.CHUNK_SAMPLES]),
    compaction=st.booleans(),
    operations=phases,
    seed=st.integers(0, 2**32 - 1),
    query=st.tuples(st.integers(0, 100), st.integers(0, 100), st.sampled_from([STEP, 37_000, MIN])),
)
def test_overlapping_blocks_and_head_read_as_a_plain_merge(
    n_series, chunk_samples, compaction, operations, seed, query
):
    opts = DBOptions(
        fsync="never",
        min_block_duration=2 * MIN,  # a cut every few scrapes, compactions to 6m and 18m
        max_block_duration=18 * MIN,
        retention_ms=0,
        out_of_order_time_window=10**12,  # every write is accepted, so the model holds
        enable_compaction=compaction,
    )
    real_chunk = block_write.CHUNK_SAMPLES
    block_write.CHUNK_SAMPLES = chunk_samples  # small chunks: several per timestamp column
    try:
        with tempfile.TemporaryDirectory(dir=SHM) as path:
            h = _History(path, opts, n_series, seed)
            try:
                for op in operations:
                    h.apply(op)
                    if op[0] in ("ooo", "crash") and h.model.series:
                        h.check_select([])  # the head (or a re-cut block) overlaps blocks now
                if not h.model.series:
                    return
                a, b, step = query
                lo, hi = sorted((a * h.t // 100, b * h.t // 100))
                windows = [(0, h.t), (lo, hi)]
                h.check_select(windows)
                h.check_queries(windows, step)
                if compaction:  # vertical compaction leaves blocks that do not overlap
                    h.db.compact()
                    spans = sorted((b.meta.min_time, b.meta.max_time) for b in h.db.blocks)
                    assert all(x[1] <= y[0] for x, y in itertools.pairwise(spans)), spans
                    h.check_select(windows)
                    h.check_queries(windows, step)
            finally:
                h.db.close()
    finally:
        block_write.CHUNK_SAMPLES = real_chunk
