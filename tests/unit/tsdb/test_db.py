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
