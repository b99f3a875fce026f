"""Overlapping blocks and head (issue 14 §1): reads stay aligned and equal a plain merge.

The two ways in from the issue: out-of-order samples written into the range of a block
already persisted (no crash), and a kill between a block's rename and the WAL
checkpoint (the reopened head holds the block's samples again). Both need a compacted
block whose samples fill more than one value chunk, so it has fewer timestamp columns
than value columns. Which copy wins at a timestamp written twice is pinned down here
too: the first write, before and after cuts and compactions.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reference.tsdb_select import FirstWriteModel, as_expected
from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher
from signalfire.promql.engine import Engine
from signalfire.tsdb import DB, DBOptions, open_db
from signalfire.tsdb.block_meta import new_ulid

MIN = 60_000
H = 60 * MIN
STEP = 15_000
S = 200
OPTS = DBOptions(fsync="never", min_block_duration=10 * MIN, out_of_order_time_window=H, retention_ms=0)
ALL = [Matcher.equal("__name__", "m")]
LABELS = [Labels.from_strings("__name__", "m", "i", f"{i:03d}") for i in range(S)]


def _values(rng: np.random.Generator) -> np.ndarray:
    """Half the series two-decimal gauges, half arbitrary floats: both value codecs."""
    return np.where(np.arange(S) % 2 == 0, np.round(rng.random(S) * 100, 2), rng.random(S))


def _fill(db: DB, model: FirstWriteModel, start: int, end: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with db.appender() as app:
        refs = app.refs(LABELS)
        for t in range(start, end, STEP):
            v = _values(rng)
            app.append_batch(refs, t, v)
            model.write(LABELS, np.full(S, t), v)


def _check(db: DB, model: FirstWriteModel) -> None:
    """select over everything equals the model bit for bit; ``sum(m)`` over every minute
    equals the model's sums."""
    q = db.querier(MIN_TIME, MAX_TIME)
    try:
        ss = q.select(ALL)
    finally:
        q.close()
    ss.validate()
    assert as_expected(ss) == model.expected(ALL, MIN_TIME, MAX_TIME)
    t_end = max(max(pts) for pts in model.series.values())
    res = Engine().range_query(db, "sum(m)", 0, t_end, MIN)
    want = model.sums(range(0, t_end + 1, MIN), 5 * MIN)
    assert res.present[0].tolist() == [w is not None for w in want]
    np.testing.assert_allclose(res.values[0][res.present[0]], [w for w in want if w is not None], rtol=1e-12)


def test_out_of_order_samples_inside_a_compacted_block(tmp_path):
    db = open_db(tmp_path, OPTS)
    model = FirstWriteModel()
    try:
        _fill(db, model, 0, 2 * H)
        db.compact()
        assert any(b.meta.level > 1 for b in db.blocks)  # the multi-chunk compacted block
        # One sample per series between two persisted samples, within the OOO window.
        t = 2 * H - 40 * MIN + STEP // 2
        assert any(b.meta.min_time <= t < b.meta.max_time for b in db.blocks)
        with db.appender() as app:
            v = np.arange(S, dtype=np.float64) + 0.5
            assert app.append_batch(app.refs(LABELS), t, v).appended == S
        model.write(LABELS, np.full(S, t), v)
        _check(db, model)  # head overlapping blocks
        db.compact()
        _check(db, model)  # after the cut and the vertical compaction
        starts = sorted((b.meta.min_time, b.meta.max_time) for b in db.blocks)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(starts)), "blocks still overlap"
    finally:
        db.close()


class _Killed(Exception):
    pass


def test_kill_between_block_rename_and_wal_checkpoint(tmp_path, monkeypatch):
    db = open_db(tmp_path, OPTS)
    model = FirstWriteModel()
    _fill(db, model, 0, 2 * H)
    db.compact()
    _fill(db, model, 2 * H, 2 * H + 20 * MIN, seed=1)

    def killed(self, mint):
        raise _Killed

    # The block is renamed into place; the head is not truncated and the WAL not
    # checkpointed: on disk, what a kill -9 at that point leaves.
    monkeypatch.setattr(DB, "_truncate_locked", killed)  # the cut truncates under the locks
    with pytest.raises(_Killed):
        db.compact()
    monkeypatch.undo()
    db.close()
    db = open_db(tmp_path, OPTS)
    try:
        assert db.head.num_samples > 0
        _check(db, model)
        db.compact()
        _check(db, model)
    finally:
        db.close()


@pytest.mark.parametrize("compaction", [True, False], ids=["vertical-compaction", "overlapping-blocks-kept"])
def test_a_timestamp_written_twice_keeps_the_first_write_through_cuts_and_compactions(tmp_path, compaction):
    # Prometheus keeps "one sample from random overlapped ones" (storage/merge.go); here
    # the earliest write wins everywhere: the head refuses a second value for a
    # timestamp it holds, and reads and compactions keep the copy of the block cut
    # first (ULID order), before the head. So a query's answer never changes when a
    # block is cut or compacted.
    opts = OPTS.with_changes(out_of_order_time_window=10 * H, enable_compaction=compaction)
    db = open_db(tmp_path, opts)
    model = FirstWriteModel()
    try:
        _fill(db, model, 5 * MIN, 2 * H)  # the first block starts off-grid at 5m
        db.compact()
        # Rewrites at persisted timestamps; the first batch also writes before the first
        # block, so the block cut from it sorts first by min_time but was written later.
        for k, ts in enumerate([[MIN, 6 * MIN], [7 * MIN + 30_000], [2 * MIN, 6 * MIN, 8 * MIN]]):
            with db.appender() as app:
                refs = app.refs(LABELS)
                for t in ts:
                    app.append_batch(refs, t, np.full(S, -1.0 - k))
            for t in ts:
                model.write(LABELS, np.full(S, t), np.full(S, -1.0 - k))
            _check(db, model)
            db.compact()
            _check(db, model)
    finally:
        db.close()


def test_ulids_made_in_one_process_strictly_increase():
    ulids = [new_ulid() for _ in range(2000)]  # many share a millisecond
    assert ulids == sorted(set(ulids))
