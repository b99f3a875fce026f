"""WALWatcher: tails commits across segment rotations and checkpoints."""

from __future__ import annotations

import os

import numpy as np

from signalfire.labels import Labels
from signalfire.tsdb import DBOptions, open_db
from signalfire.tsdb.wal.watcher import WALWatcher

OPTS = DBOptions(fsync="never", wal_segment_size=400)


def _append(db, ts, names=("a", "b")):
    with db.appender() as app:
        refs = app.refs([Labels.from_strings("__name__", n) for n in names])
        app.append_batch(refs, ts, np.full(len(refs), float(ts)))


def test_watcher_delivers_new_commits_once(tmp_path):
    db = open_db(tmp_path / "d", OPTS)
    wal = os.path.join(db.path, "wal")
    _append(db, 1)
    w = WALWatcher(wal)  # starts at the end: knows the series, skips old samples
    assert sorted(ls.metric_name for ls in w.series.values()) == ["a", "b"]
    assert len(w.poll()) == 0
    for t in range(2, 30):
        _append(db, t)
    got = w.poll()
    assert got.ts.tolist() == [t for t in range(2, 30) for _ in range(2)]
    assert {w.series[r].metric_name for r in got.refs.tolist()} == {"a", "b"}
    _append(db, 30, names=("c",))
    got = w.poll()
    assert [ls.metric_name for ls in got.series.values()] == ["c"] and got.values.tolist() == [30.0]
    assert len(w.poll()) == 0
    db.close()


def test_watcher_from_start_and_across_checkpoints(tmp_path):
    db = open_db(tmp_path / "d", OPTS)
    wal = os.path.join(db.path, "wal")
    for t in range(1, 10):
        _append(db, t)
    w = WALWatcher(wal, start_at_end=False)
    assert len(w.poll()) == 18
    for t in range(10, 20):
        _append(db, t)
    db.truncate_head(15)  # checkpoint: the segments w had not read yet go away
    for t in range(20, 25):
        _append(db, t, names=("a", "b", "new"))
    got = w.poll()
    # As in Prometheus, a watcher that lags behind a checkpoint loses the samples of the
    # removed segments and carries on with the series it learns from the checkpoint.
    assert sorted(set(got.ts.tolist())) == list(range(20, 25))
    assert sorted(w.series[r].metric_name for r in set(got.refs.tolist())) == ["a", "b", "new"]
    db.close()


def test_watcher_leaves_a_record_being_written_for_later(tmp_path):
    db = open_db(tmp_path / "d", DBOptions(fsync="never"))
    wal = os.path.join(db.path, "wal")
    w = WALWatcher(wal)
    _append(db, 1)
    seg = os.path.join(wal, f"{db.wal.current_segment:08d}")
    with open(seg, "rb") as f:
        whole = f.read()
    db.close()
    with open(seg, "wb") as f:
        f.write(whole[:-5])
    assert len(w.poll()) == 0
    with open(seg, "ab") as f:
        f.write(whole[-5:])
    assert w.poll().ts.tolist() == [1, 1]
