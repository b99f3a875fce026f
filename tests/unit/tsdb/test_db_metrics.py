"""The DB's self metrics: they follow appends, rejections, compaction and retention, a
scrape walks block folders without the DB lock, and a shared registry is shared safely."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import signalfire.tsdb.block as block_module
import signalfire.tsdb.db as db_module
from signalfire.errors import BadDataError
from signalfire.exposition import lint, parse_text
from signalfire.labels import Labels
from signalfire.metrics import Registry
from signalfire.storage import AppendStats
from signalfire.tsdb import DBOptions, open_db

H = 3_600_000
FLOAT = {"type": "float"}


def _value(reg: Registry, name: str, labels: dict[str, str] | None = None) -> float:
    v = reg.sample_value(name, labels)
    assert v is not None, name
    return v


def _append(db, series: list[int], ts: list[int]) -> AppendStats:
    with db.appender() as app:
        refs = app.refs([Labels.from_strings("__name__", "m", "i", str(i)) for i in series])
        return app.append_batch(refs, np.array(ts, np.int64), np.ones(len(ts)))


batches = st.lists(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4 * H)), min_size=1, max_size=8),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None)
@given(batches=batches, ooo=st.sampled_from([0, H]))
def test_metrics_follow_every_commit(tmp_path_factory, batches, ooo):
    """Whatever mix of in-order, out-of-order, too-old, out-of-bounds and duplicate
    samples is committed, the outcome counters equal what the appends reported, and the
    head gauges what was accepted."""
    opts = DBOptions(fsync="never", compaction_interval_ms=0, out_of_order_time_window=ooo)
    with open_db(tmp_path_factory.mktemp("d"), opts) as db:
        m = db.metrics
        total = AppendStats()
        accepted: list[int] = []
        for batch in batches:
            series = [s for s, _ in batch]
            ts = [t for _, t in batch]
            before = _value(m, "signalfire_tsdb_head_samples")
            stats = _append(db, series, ts)
            total.add(stats)
            assert _value(m, "signalfire_tsdb_head_samples") - before == stats.appended
            accepted += ts if stats.appended else []
        assert _value(m, "signalfire_tsdb_head_samples_appended_total", FLOAT) == total.appended
        assert _value(m, "signalfire_tsdb_out_of_order_samples_total", FLOAT) == total.out_of_order
        assert _value(m, "signalfire_tsdb_out_of_bound_samples_total", FLOAT) == total.out_of_bounds
        assert _value(m, "signalfire_tsdb_too_old_samples_total", FLOAT) == total.too_old
        assert _value(m, "signalfire_tsdb_duplicate_samples_total") == total.duplicate_conflict
        assert _value(m, "signalfire_tsdb_head_series") == len({s for b in batches for s, _ in b})
        assert _value(m, "signalfire_tsdb_head_max_time") == db.head.max_time
        assert _value(m, "signalfire_tsdb_out_of_order_time_window_seconds") == ooo / 1000
        assert lint(m.render()) == []


def _fill_hours(db, hours, step=10 * 60_000, n=3):
    for t in range(0, hours * H, step):
        _append(db, list(range(n)), [t] * n)


def test_compaction_and_retention_show_in_the_metrics(tmp_path):
    opts = DBOptions(fsync="never", retention_ms=10 * H, max_block_duration=18 * H, compaction_interval_ms=0)
    with open_db(tmp_path / "d", opts) as db:
        m = db.metrics
        _fill_hours(db, 30, step=30 * 60_000, n=2)
        assert _value(m, "signalfire_tsdb_blocks_loaded") == 0
        assert _value(m, "signalfire_tsdb_compactions_total") == 0
        assert _value(m, "signalfire_tsdb_storage_blocks_bytes") == 0
        written = db.compact()
        assert len(written) > len(db.blocks) > 0  # head cuts, then merges, then retention
        assert _value(m, "signalfire_tsdb_compactions_total") == len(written)
        assert _value(m, "signalfire_tsdb_compaction_duration_seconds_count") == len(written)
        buckets = [
            s.value for f in m.collect() for s in f.samples if s.labels.metric_name.endswith("seconds_bucket")
        ]
        assert buckets == sorted(buckets) and buckets[-1] == len(written)
        assert _value(m, "signalfire_tsdb_blocks_loaded") == len(db.blocks)
        assert _value(m, "signalfire_tsdb_storage_blocks_bytes") == sum(b.size_bytes() for b in db.blocks)
        cuts = _value(m, "signalfire_tsdb_head_truncations_total")
        assert cuts >= 1
        assert _value(m, "signalfire_tsdb_head_min_time") == db.head.min_time
        assert _value(m, "signalfire_tsdb_wal_segment_current") == db.wal.current_segment
        assert db.compaction_failures == 0 == _value(m, "signalfire_tsdb_compactions_failed_total")
        assert db.compact() == [] and _value(m, "signalfire_tsdb_compactions_total") == len(written)


def test_a_failed_background_compaction_is_counted(tmp_path, monkeypatch):
    opts = DBOptions(fsync="never", compaction_interval_ms=1)
    failed = threading.Event()

    def boom(self):
        failed.set()
        raise OSError("disk full")

    monkeypatch.setattr(db_module.DB, "compact", boom)
    with open_db(tmp_path / "d", opts) as db:
        assert failed.wait(10)
        db._stop.set()
        db._compactor.join()
        assert db.compaction_failures >= 1
        assert _value(db.metrics, "signalfire_tsdb_compactions_failed_total") == db.compaction_failures


def test_a_scrape_walks_block_folders_without_the_db_lock(tmp_path, monkeypatch):
    """Counted, not timed: at every directory walk a scrape makes, another thread can
    take the DB lock, so appends never wait for the walk."""
    opts = DBOptions(fsync="never", retention_ms=0, enable_compaction=False, compaction_interval_ms=0)
    with open_db(tmp_path / "d", opts) as db:
        _fill_hours(db, 7)
        db.compact()
        assert len(db.blocks) == 2
        free: list[bool] = []
        real = block_module.dir_size

        def spy(path: str) -> int:
            got: list[bool] = []

            def probe() -> None:
                if db._lock.acquire(blocking=False):
                    db._lock.release()
                    got.append(True)
                else:
                    got.append(False)

            t = threading.Thread(target=probe)
            t.start()
            t.join()
            free.append(got[0])
            return real(path)

        monkeypatch.setattr(block_module, "dir_size", spy)
        body = db.metrics.render()
        assert free == [True, True]
        assert b"signalfire_tsdb_storage_blocks_bytes " in body


def test_a_shared_registry_holds_one_db_at_a_time(tmp_path):
    """A server hands its registry to the DB: a second DB on it is refused before it
    keeps its folder locked, and a closed DB takes its families out."""
    reg = Registry()
    reg.counter("signalfire_http_requests_total", "Someone else's.")
    opts = DBOptions(fsync="never", compaction_interval_ms=0)
    a = open_db(tmp_path / "a", opts, registry=reg)
    assert a.metrics is reg
    with pytest.raises(BadDataError, match=r"signalfire_tsdb_.* is taken"):
        open_db(tmp_path / "b", opts, registry=reg)
    with open_db(tmp_path / "b", opts) as b:  # its folder was released
        assert b.metrics is not reg
    _append(a, [1], [1000])
    assert _value(reg, "signalfire_tsdb_head_series") == 1
    a.close()
    assert [d.name for d in reg.describe()] == ["signalfire_http_requests_total"]
    with open_db(tmp_path / "b", opts, registry=reg) as b:
        assert _value(reg, "signalfire_tsdb_head_series") == 0
        assert parse_text(reg.render()).metadata["signalfire_tsdb_head_series"].type == "gauge"
