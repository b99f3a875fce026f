"""DB: open, replay, lock, repair, delete, checkpoint, snapshot, runtime options."""

from __future__ import annotations

import os

import numpy as np
import pytest

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.errors import CorruptionError, LockedError
from signalfire.labels import Labels, Matcher
from signalfire.tsdb import DBOptions, open_db
from signalfire.tsdb.wal.checkpoint import list_checkpoints
from signalfire.tsdb.wal.segment import list_segments

H = 3_600_000
OPTS = DBOptions(fsync="never")
ALL = [Matcher.equal("__name__", "m")]


def _labels(n):
    return [Labels.from_strings("__name__", "m", "i", str(i)) for i in range(n)]


def _append(db, n, ts, value=None):
    with db.appender() as app:
        refs = app.refs(_labels(n))
        vals = np.arange(n, dtype=np.float64) + ts if value is None else np.full(n, value)
        return app.append_batch(refs, ts, vals)


def _dump(db, mint=MIN_TIME, maxt=MAX_TIME):
    q = db.querier(mint, maxt)
    ss = q.select(ALL)
    q.close()
    return {
        ls.get("i"): (ss.ts[a:b].tolist(), ss.values[a:b].view(np.uint64).tolist())
        for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])
    }


@pytest.fixture
def db(tmp_path):
    d = open_db(tmp_path / "data", OPTS)
    yield d
    d.close()


def test_reopen_replays_everything_bit_exact(tmp_path):
    path = tmp_path / "data"
    with open_db(path, OPTS) as db:
        for t in range(1000, 6000, 1000):
            _append(db, 20, t)
        with db.appender() as app:
            app.append_batch(app.refs(_labels(1)), 7000, np.array([float("nan")]))
        want = _dump(db)
    with open_db(path, OPTS) as db:
        assert _dump(db) == want
        assert db.replay_stats.samples == 101


def test_lock_refuses_second_open_and_no_lockfile_allows(tmp_path):
    path = tmp_path / "data"
    with open_db(path, OPTS), pytest.raises(LockedError, match="lock data directory"):
        open_db(path, OPTS)
    with open_db(path, OPTS):  # released on close
        pass
    a = open_db(tmp_path / "x", DBOptions(no_lockfile=True, fsync="never"))
    b = open_db(tmp_path / "x", DBOptions(no_lockfile=True, fsync="never"))
    a.close()
    b.close()
    assert not os.path.exists(tmp_path / "x" / "lock")


def test_corrupt_tail_raises_without_repair_and_is_cut_with_repair(tmp_path):
    path = tmp_path / "data"
    with open_db(path, OPTS) as db:
        for t in range(1, 11):
            _append(db, 3, t * 1000)
    seg = path / "wal" / "00000000"
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(size - 7)
    with pytest.raises(CorruptionError) as ei:
        open_db(path, OPTS, repair=False)
    assert ei.value.path == str(seg) and 0 < ei.value.offset < size
    assert f"{seg}" in str(ei.value)
    with open_db(path, OPTS) as db:  # repairs by default
        got = _dump(db)
        assert all(ts == [t * 1000 for t in range(1, 10)] for ts, _ in got.values())
        assert db.replay_stats.repaired and db.replay_stats.repaired[0].offset == ei.value.offset
    with open_db(path, OPTS, repair=False) as db:  # clean now
        assert len(_dump(db)["0"][0]) == 9


def test_delete_is_logged_and_survives_restart(tmp_path):
    path = tmp_path / "data"
    with open_db(path, OPTS) as db:
        for t in (1000, 2000, 3000):
            _append(db, 3, t)
        db.delete([Matcher.equal("i", "1")], 1500, 2500)
        _append(db, 3, 4000)
        want = _dump(db)
        assert want["1"][0] == [1000, 3000, 4000]
    with open_db(path, OPTS) as db:
        assert _dump(db) == want


def test_truncate_head_checkpoints_and_drops_segments(tmp_path):
    path = tmp_path / "data"
    opts = DBOptions(fsync="never", wal_segment_size=300)
    with open_db(path, opts) as db:
        for t in range(1, 30):
            _append(db, 2, t * 1000)
        with db.appender() as app:
            app.append_batch(
                app.refs([Labels.from_strings("__name__", "m", "i", "gone")]), 1000, np.array([1.0])
            )
        assert len(list_segments(str(path / "wal"))) > 3
        db.truncate_head(10_000)
        _append(db, 2, 40_000)
        want = _dump(db)
        assert "gone" not in want and want["0"][0][0] == 10_000
        wal_dir = str(path / "wal")
        cps = list_checkpoints(wal_dir)
        assert len(cps) == 1 and all(s > cps[0] for s in list_segments(wal_dir))
    with open_db(path, opts) as db:
        assert _dump(db) == want
        assert db.replay_stats.checkpoint == cps[0]
        assert db.label_values("i") == ["0", "1"]


def test_snapshot_is_consistent_and_opens(db, tmp_path):
    _append(db, 5, 1000)
    _append(db, 5, 2000)
    dest = tmp_path / "snap"
    db.snapshot(str(dest))
    _append(db, 5, 3000)  # after the snapshot: not in it
    with open_db(dest, OPTS) as snap:
        got = _dump(snap)
    assert {k: v[0] for k, v in got.items()} == {str(i): [1000, 2000] for i in range(5)}


def test_out_of_order_window_at_runtime(db):
    _append(db, 1, 10 * H)
    assert _append(db, 1, 9 * H - 1).out_of_bounds == 1
    db.set_out_of_order_window(2 * H)
    assert db.out_of_order_window == 2 * H
    assert _append(db, 1, 9 * H - 1).appended == 1
    assert _append(db, 1, 7 * H).too_old == 1
    assert db.stats()["too_old_samples_total"] == 1
    m = db.metrics
    f = {"type": "float"}
    assert (
        m.sample_value("signalfire_tsdb_too_old_samples_total", f) == 1
        and m.sample_value("signalfire_tsdb_out_of_bound_samples_total", f) == 1
    )
    assert m.sample_value("signalfire_tsdb_head_series") == 1
    assert m.sample_value("signalfire_tsdb_out_of_order_time_window_seconds") == 2 * H / 1000
    assert all(d.name.startswith("signalfire_tsdb_") for d in m.describe())


def test_two_dbs_share_no_state(tmp_path):
    with open_db(tmp_path / "a", OPTS) as a, open_db(tmp_path / "b", OPTS) as b:
        _append(a, 2, 1000)
        _append(b, 3, 5000)
        assert len(_dump(a)) == 2 and len(_dump(b)) == 3
        assert a.stats()["num_series"] == 2 and b.stats()["max_time"] == 5000


def test_fsync_every_commit(tmp_path):
    with open_db(tmp_path / "d", DBOptions(fsync="commit")) as db:
        _append(db, 2, 1000)
    with open_db(tmp_path / "d", DBOptions(fsync="commit")) as db:
        assert len(_dump(db)) == 2


def test_closed_db_refuses_work(tmp_path):
    db = open_db(tmp_path / "d", OPTS)
    db.close()
    db.close()
    with pytest.raises(Exception, match="closed"):
        db.appender()


def test_label_names_and_values(db):
    _append(db, 2, 1000)
    assert db.label_names() == ["__name__", "i"]
    assert db.label_values("i", [Matcher.equal("i", "1")]) == ["1"]


def test_compactable_follows_prometheus_rule(db):
    _append(db, 1, 0)
    _append(db, 1, 3 * H)
    assert not db.compactable()
    _append(db, 1, 3 * H + 1)
    assert db.compactable()


def _fill_hours(db, hours, step=10 * 60_000, n=3):
    for t in range(0, hours * H, step):
        _append(db, n, t)


def test_compact_cuts_aligned_blocks_and_keeps_every_sample(tmp_path):
    path = tmp_path / "data"
    opts = DBOptions(fsync="never", retention_ms=0, enable_compaction=False)
    with open_db(path, opts) as db:
        _fill_hours(db, 7)
        want = _dump(db)
        written = db.compact()
        assert len(written) == 2  # [0,2h) and [2h,4h); the head keeps 4h..7h (3h <= 1.5 ranges)
        assert [(b.meta.min_time, b.meta.max_time) for b in db.blocks] == [(0, 2 * H), (2 * H, 4 * H)]
        assert db.head.min_time == 4 * H and db.head.min_valid_time == 4 * H
        assert _dump(db) == want
        part = _dump(db, H, 5 * H)
        assert {k: v[0] for k, v in part.items()} == {
            k: [t for t in v[0] if H <= t <= 5 * H] for k, v in want.items()
        }
        assert _append(db, 1, 4 * H - 1).out_of_bounds == 1
    with open_db(path, opts) as db:
        assert _dump(db) == want
        assert len(db.blocks) == 2


def test_compact_merges_blocks_and_applies_time_retention(tmp_path):
    opts = DBOptions(fsync="never", retention_ms=10 * H, max_block_duration=18 * H)
    with open_db(tmp_path / "d", opts) as db:
        _fill_hours(db, 30, step=30 * 60_000, n=2)
        db.compact()
        metas = [b.meta for b in db.blocks]
        assert any(m.level > 1 for m in metas)
        newest = max(m.max_time for m in metas)
        assert all(newest - m.max_time < 10 * H for m in metas)
        got = _dump(db)
        assert got["0"][0][-1] == 30 * H - 30 * 60_000


def test_delete_reaches_blocks(tmp_path):
    with open_db(tmp_path / "d", DBOptions(fsync="never", retention_ms=0)) as db:
        _fill_hours(db, 7)
        db.compact()
        db.delete([Matcher.equal("i", "0")], 0, 5 * H)
        assert min(_dump(db)["0"][0]) > 5 * H
        assert min(_dump(db)["1"][0]) == 0


def test_snapshot_with_blocks_and_head(tmp_path):
    with open_db(tmp_path / "d", DBOptions(fsync="never", retention_ms=0)) as db:
        _fill_hours(db, 7)
        db.compact()
        want = _dump(db)
        dest = db.snapshot(tmp_path / "snap")
        _append(db, 3, 8 * H)
    with open_db(dest, OPTS) as snap:
        assert _dump(snap) == want
        assert len(snap.blocks) == 3


def test_open_removes_parents_left_by_interrupted_compaction(tmp_path):
    path = tmp_path / "d"
    with open_db(path, DBOptions(fsync="never", retention_ms=0, enable_compaction=False)) as db:
        _fill_hours(db, 9)
        db.compact()
        want = _dump(db)
        from signalfire.tsdb.compact import compact_blocks

        compact_blocks(path, db.blocks[:2])  # as if we crashed before deleting the inputs
    with open_db(path, DBOptions(fsync="never", retention_ms=0, enable_compaction=False)) as db:
        assert len(db.blocks) == 2 and db.blocks[0].meta.level == 2
        assert _dump(db) == want


def test_compaction_never_closes_a_block_under_an_open_querier(tmp_path):
    opts = DBOptions(fsync="never", retention_ms=0, max_block_duration=6 * H)
    with open_db(tmp_path / "d", opts.with_changes(enable_compaction=False)) as db:
        _fill_hours(db, 13)
        db.compact()
    with open_db(tmp_path / "d", opts) as db:
        q = db.querier(MIN_TIME, MAX_TIME)
        before = len(db.blocks)
        db.compact()  # merges the blocks q is reading and deletes them
        assert len(db.blocks) < before
        ss = q.select(ALL)  # still readable
        assert ss.num_samples == 3 * 13 * 6
        q.close()
        q.close()
        assert not db._doomed and not db._readers


def test_size_retention_keeps_newest_blocks(tmp_path):
    with open_db(tmp_path / "d", DBOptions(fsync="never", retention_ms=0, enable_compaction=False)) as db:
        _fill_hours(db, 13)
        db.compact()
        sizes = [b.size_bytes() for b in db.blocks]
    budget = sum(sizes[-2:]) + 1
    opts = DBOptions(fsync="never", retention_ms=0, retention_bytes=budget, enable_compaction=False)
    with open_db(tmp_path / "d", opts) as db:
        db.compact()
        assert 1 <= len(db.blocks) <= 2
        assert db.blocks[-1].meta.max_time == 10 * H


def test_snapshot_while_writing_sees_a_commit_boundary(tmp_path):
    import threading
    import time

    db = open_db(tmp_path / "d", OPTS)
    stop = threading.Event()
    done: list[int] = []

    def writer():
        b = 0
        while not stop.is_set() and b < 5000:
            with db.appender() as app:
                app.append_batch(app.refs(_labels(8)), b * 1000, np.full(8, float(b)))
            done.append(b)
            b += 1

    t = threading.Thread(target=writer)
    t.start()
    while len(done) < 50 and t.is_alive():
        time.sleep(0.001)
    dest = db.snapshot(tmp_path / "snap")
    stop.set()
    t.join()
    db.close()
    with open_db(dest, OPTS) as snap:
        got = _dump(snap)
    batches = got["0"][0]
    assert len(batches) >= 50 and batches == [b * 1000 for b in range(len(batches))]
    assert all(v[0] == batches for v in got.values()) and len(got) == 8


def test_background_compaction(tmp_path):
    import time

    from signalfire.tsdb import DB

    db = DB.open(tmp_path / "d", DBOptions(fsync="never", retention_ms=0, compaction_interval_ms=20))
    try:
        _fill_hours(db, 7)
        deadline = time.monotonic() + 10
        while len(db.blocks) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(db.blocks) == 2 and db.compaction_failures == 0
        assert _dump(db)["0"][0] == list(range(0, 7 * H, 10 * 60_000))
    finally:
        db.close()


def test_series_recreated_after_gc_replays(tmp_path):
    path = tmp_path / "d"
    with open_db(path, OPTS) as db:
        _append(db, 2, 1000)
        _append(db, 1, 5000)
        db.head.truncate(2000)  # GC of i=1 without a checkpoint (as after a crash-time open)
        _append(db, 2, 6000)  # i=1 comes back under a new ref
        assert _dump(db)["1"][0] == [6000]
    with open_db(path, OPTS) as db:
        # The in-memory-only truncation is not in the WAL, so 1000 comes back; the point
        # is that the re-created series' samples land on the same series.
        assert {k: v[0] for k, v in _dump(db).items()} == {"0": [1000, 5000, 6000], "1": [1000, 6000]}
        assert db.replay_stats.unknown_refs == 0


def test_failed_wal_write_is_cut_and_later_commits_survive(tmp_path, monkeypatch):
    from signalfire.errors import StorageError
    from signalfire.tsdb.wal import segment

    path = tmp_path / "d"
    with open_db(path, OPTS) as db:
        _append(db, 2, 1000)
        real = segment.os.write

        def half_then_fail(fd, data):
            real(fd, bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(segment.os, "write", half_then_fail)
        with pytest.raises(StorageError, match="No space left"):
            _append(db, 2, 2000)
        monkeypatch.setattr(segment.os, "write", real)
        _append(db, 2, 3000)
    with open_db(path, OPTS, repair=False) as db:
        assert _dump(db)["0"][0] == [1000, 3000]


@pytest.mark.parametrize("meanwhile", ["ooo-append", "delete"])
def test_cut_runs_without_the_lock_and_redoes_when_its_range_changed(tmp_path, monkeypatch, meanwhile):
    import signalfire.tsdb.db as db_mod

    opts = DBOptions(fsync="never", retention_ms=0, enable_compaction=False, out_of_order_time_window=24 * H)
    db = open_db(tmp_path / "d", opts)
    _fill_hours(db, 7)
    real = db_mod.write_block
    calls = []

    def write_block(*a, **kw):
        calls.append(kw["max_time"])
        if len(calls) == 1:  # while the first block is written, without the DB lock
            if meanwhile == "ooo-append":
                assert _append(db, 3, 30 * 60_000 + 1).appended == 3  # inside [0, 2h)
                assert _append(db, 3, -5).appended == 3  # before the head's start
            else:
                db.delete([Matcher.equal("i", "2")], 0, H)
        return real(*a, **kw)

    monkeypatch.setattr(db_mod, "write_block", write_block)
    want = _dump(db) if meanwhile == "delete" else None
    db.compact()
    got = _dump(db)
    if meanwhile == "ooo-append":
        assert 30 * 60_000 + 1 in got["0"][0] and -5 in got["1"][0]
        assert db.blocks[0].meta.min_time == -5
    else:
        assert min(got["2"][0]) > H and min(got["1"][0]) == 0
        assert got["0"] == want["0"]
    assert calls[0] == calls[1] == 2 * H  # the first block was written twice
    db.close()


def test_commit_after_close_is_a_storage_error(tmp_path):
    from signalfire.errors import StorageError

    db = open_db(tmp_path / "d", OPTS)
    app = db.appender()
    app.append_batch(app.refs(_labels(1)), 1000, np.array([1.0]))
    db.close()
    with pytest.raises(StorageError, match="closed"):
        app.commit()


def test_start_timestamps_survive_replay_checkpoint_and_blocks(tmp_path):
    path = tmp_path / "d"
    opts = DBOptions(fsync="never", retention_ms=0)
    with open_db(path, opts) as db:
        for t in range(0, 7 * H, 30 * 60_000):
            with db.appender() as app:
                app.append_batch(app.refs(_labels(2)), t, np.array([1.0, 2.0]), st=np.array([t - 5, 0]))
        db.compact()
        assert db.blocks
    with open_db(path, opts) as db:
        q = db.querier(MIN_TIME, MAX_TIME)
        ss = q.select(ALL)
        q.close()
    assert ss.st is not None
    a, b = ss.offsets[0], ss.offsets[1]
    assert (ss.st[a:b] == ss.ts[a:b] - 5).all() and (ss.st[b:] == 0).all()


def test_checkpoint_is_written_without_blocking_appends(tmp_path, monkeypatch):
    import threading

    import signalfire.tsdb.db as db_mod

    db = open_db(tmp_path / "d", OPTS)
    _append(db, 2, 1000)
    real = db_mod.write_checkpoint
    appended = []

    def write_checkpoint(*a, **kw):
        t = threading.Thread(target=lambda: appended.append(_append(db, 2, 9000).appended))
        t.start()
        t.join(timeout=10)
        assert not t.is_alive(), "an append waited for the checkpoint"
        return real(*a, **kw)

    monkeypatch.setattr(db_mod, "write_checkpoint", write_checkpoint)
    db.truncate_head(500)
    assert appended == [2]
    db.close()
    with open_db(tmp_path / "d", OPTS) as db:  # checkpoint + the append logged after it
        assert {k: v[0] for k, v in _dump(db).items()} == {"0": [1000, 9000], "1": [1000, 9000]}
        assert db.replay_stats.checkpoint >= 0


@pytest.mark.slow
def test_concurrent_writers_compaction_and_readers(tmp_path):
    """Two writers, a compaction loop and a reader race; nothing is lost or torn."""
    import threading

    opts = DBOptions(
        fsync="never",
        retention_ms=0,
        min_block_duration=60_000,
        max_block_duration=540_000,
        compaction_interval_ms=5,
    )
    db = open_db(tmp_path / "d", opts)
    step, batches = 2_000, 400
    errors: list[BaseException] = []
    accepted: dict[int, list[int]] = {0: [], 1: []}

    def writer(w):
        try:
            labels = [Labels.from_strings("__name__", "m", "w", str(w), "i", str(i)) for i in range(10)]
            for b in range(batches):
                with db.appender() as app:
                    stats = app.append_batch(app.refs(labels), b * step, np.full(10, float(b)))
                # A writer that falls 30s (half a block range) behind the other is out of
                # bounds, as in Prometheus: whole batches, never parts of one.
                assert stats.appended in (0, 10) and stats.appended + stats.out_of_bounds == 10
                if stats.appended:
                    accepted[w].append(b)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    def reader(stop):
        try:
            while not stop.is_set():
                q = db.querier(MIN_TIME, MAX_TIME)
                ss = q.select(ALL)
                q.close()
                for _, ts, vals in (ss.series(i) for i in range(len(ss))):
                    assert (np.diff(ts) > 0).all() and (vals == ts // step).all()
        except BaseException as err:
            errors.append(err)

    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    r = threading.Thread(target=reader, args=(stop,))
    for t in [*threads, r]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    assert not errors, errors
    db.compact()
    assert db.blocks
    q = db.querier(MIN_TIME, MAX_TIME)
    ss = q.select(ALL)
    q.close()
    db.close()
    for ls, ts, _ in (ss.series(i) for i in range(len(ss))):
        assert ts.tolist() == [b * step for b in accepted[int(ls.get("w"))]]
    assert len(ss) == 20 and len(accepted[0]) + len(accepted[1]) > batches
    with open_db(tmp_path / "d", opts.with_changes(compaction_interval_ms=0)) as again:
        q = again.querier(MIN_TIME, MAX_TIME)
        assert q.select(ALL).ts.tolist() == ss.ts.tolist()
        q.close()


@pytest.mark.slow
def test_concurrent_deletes_and_snapshots_with_writes(tmp_path):
    """Deletes of one series and snapshots race a writer and background compaction."""
    import threading

    opts = DBOptions(
        fsync="never",
        retention_ms=0,
        min_block_duration=60_000,
        max_block_duration=540_000,
        compaction_interval_ms=5,
    )
    db = open_db(tmp_path / "d", opts)
    step, batches = 2_000, 300
    errors: list[BaseException] = []
    labels = [Labels.from_strings("__name__", "m", "i", str(i)) for i in range(5)]

    def writer():
        try:
            for b in range(batches):
                with db.appender() as app:
                    assert app.append_batch(app.refs(labels), b * step, np.full(5, float(b))).appended == 5
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=writer)
    t.start()
    snaps = []
    k = 0
    while t.is_alive():
        db.delete([Matcher.equal("i", "4")], MIN_TIME, MAX_TIME)
        if k % 5 == 0 and len(snaps) < 4:
            snaps.append(db.snapshot(tmp_path / f"snap{k}"))
        k += 1
    t.join()
    assert not errors, errors
    db.delete([Matcher.equal("i", "4")], MIN_TIME, MAX_TIME)
    db.compact()
    got = _dump(db)
    db.close()
    assert "4" not in got
    assert all(v[0] == [b * step for b in range(batches)] for v in got.values()) and len(got) == 4
    for snap in snaps:
        with open_db(snap, OPTS) as s:
            view = _dump(s)
        lens = {k: len(v[0]) for k, v in view.items() if k != "4"}
        if not lens:  # taken before the writer's first commit: empty is that boundary
            continue
        assert len(set(lens.values())) == 1  # a commit boundary: all series equally long
        n = next(iter(lens.values()))
        assert all(v[0] == [b * step for b in range(n)] for k, v in view.items() if k != "4")
