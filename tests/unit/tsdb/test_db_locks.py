"""The lock model (docs/storage.md, "Locks and concurrency"): slow work never holds the lock
writers need.

Each test stops one thread at a gate inside its slow phase (decoding, a directory walk, a WAL
write) and counts how many operations a second thread completes meanwhile. Under a lock held
across that phase the count stays at zero until the gate's timeout, so the tests count, they
do not time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import signalfire.tsdb.head as head_mod
import signalfire.tsdb.head_chunks as head_chunks_mod
import signalfire.tsdb.snapshot as snapshot_mod
from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher
from signalfire.storage import SelectHints
from signalfire.tsdb import DBOptions, open_db
from signalfire.tsdb.block import Block
from signalfire.tsdb.wal.segment import WAL

TIMEOUT = 10.0  # only reached when the code under test blocks (a failure)
H = 3_600_000
ALL = [Matcher.equal("__name__", "m")]
OPTS = DBOptions(fsync="never")


def _labels(n: int) -> list[Labels]:
    return [Labels.from_strings("__name__", "m", "i", str(i)) for i in range(n)]


def _commit(db: Any, n: int, ts: int) -> None:
    with db.appender() as app:
        app.append_batch(app.refs(_labels(n)), ts, np.full(n, float(ts)))


def _select(db: Any, mint: int = MIN_TIME, maxt: int = MAX_TIME) -> Any:
    q = db.querier(mint, maxt)
    try:
        return q.select(ALL)
    finally:
        q.close()


def _gate(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> SimpleNamespace:
    """Patch ``owner.name`` so its first call from ``gate.thread`` waits at the gate (until
    ``gate.release`` is set) before doing its work."""
    real = getattr(owner, name)
    gate = SimpleNamespace(entered=threading.Event(), release=threading.Event(), thread=None)

    def held(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is gate.thread and not gate.entered.is_set():
            gate.entered.set()
            gate.release.wait(3 * TIMEOUT)  # _meanwhile releases it: after its own timeout
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, held)
    return gate


def _meanwhile(gate: SimpleNamespace, slow: Callable[[], Any], fast: Callable[[int], Any], n: int) -> Any:
    """Run ``slow`` in a thread until it waits at ``gate``; then run ``fast(0..n-1)`` in
    another and assert all ``n`` complete while ``slow`` is held. Returns ``slow()``'s result
    and the results of ``fast``."""
    out: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run_slow() -> None:
        try:
            out["slow"] = slow()
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    fast_done: list[Any] = []

    def run_fast() -> None:
        try:
            for i in range(n):
                fast_done.append(fast(i))
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=run_slow)
    gate.thread = t
    t.start()
    assert gate.entered.wait(TIMEOUT), "the slow operation never reached its slow phase"
    w = threading.Thread(target=run_fast)
    w.start()
    w.join(TIMEOUT)
    finished = len(fast_done)
    gate.release.set()
    t.join()
    w.join()
    assert not errors, errors
    assert finished == n, f"only {finished} of {n} operations completed while the other was held"
    return out["slow"], fast_done


@pytest.fixture
def db(tmp_path):  # type: ignore[no-untyped-def]
    d = open_db(tmp_path / "data", OPTS)
    yield d
    d.close()


@pytest.fixture
def db_with_blocks(tmp_path):  # type: ignore[no-untyped-def]
    """Five hours of 20 series, compacted: blocks on disk plus the head."""
    d = open_db(tmp_path / "d", OPTS.with_changes(min_block_duration=2 * H, retention_ms=0))
    for t in range(0, 5 * H, 10 * 60_000):
        _commit(d, 20, t)
    d.compact()
    assert d.blocks
    yield d
    d.close()


def test_commits_proceed_while_a_select_decodes_head_chunks(db, monkeypatch):
    """A heavy select's decode runs after its view is taken: commits go on meanwhile, the
    select sees none of them, and groups merged away under it leave nothing in the cache."""
    n_series, prefill, during = 400, 100, 64
    # Cuts of 32 samples (each leaving the newest 32 in the slab) at 64, 96, 128, 160: the
    # young groups of the prefill are merged by a cut during the select.
    for t in range(prefill):
        _commit(db, n_series, t * 1000)
    want = _select(db)
    assert db.head.chunks.groups and want.num_samples == n_series * prefill
    db.chunk_cache.drop_owner(db.head.chunks._owner)  # the select decodes (and caches) anew
    gate = _gate(monkeypatch, head_mod, "decode_plan")
    groups_before = list(db.head.chunks.groups)

    got, _ = _meanwhile(
        gate, lambda: _select(db), lambda i: _commit(db, n_series, (prefill + i) * 1000), during
    )

    assert got.ts.tolist() == want.ts.tolist() and got.offsets.tolist() == want.offsets.tolist()
    assert got.values.view(np.uint64).tolist() == want.values.view(np.uint64).tolist()
    assert not set(map(id, groups_before)) <= set(map(id, db.head.chunks.groups)), "no merge happened"
    live = {g.serial for g in db.head.chunks.groups}
    assert db.chunk_cache.chunks_of(db.head.chunks._owner) <= live  # nothing stale kept
    after = _select(db)
    assert after.num_samples == n_series * (prefill + during)


def test_commits_proceed_while_stats_walks_block_directories(db_with_blocks, monkeypatch):
    db = db_with_blocks
    gate = _gate(monkeypatch, Block, "size_bytes")
    stats, _ = _meanwhile(gate, db.stats, lambda i: _commit(db, 20, 5 * H + i * 1000), 20)
    assert stats["num_blocks"] == len(db.blocks) and stats["blocks_bytes"] > 0


def test_selects_proceed_while_a_commit_writes_the_wal(db, monkeypatch):
    """A commit writes (and fsyncs) its WAL record without the lock readers need; readers
    do not see the commit before it is acknowledged."""
    _commit(db, 10, 1000)
    gate = _gate(monkeypatch, WAL, "log")
    _, seen = _meanwhile(gate, lambda: _commit(db, 10, 2000), lambda i: _select(db).num_samples, 5)
    assert seen == [10] * 5
    assert _select(db).num_samples == 20


def test_commits_proceed_while_a_snapshot_links_blocks(db_with_blocks, tmp_path, monkeypatch):
    db = db_with_blocks
    before = _select(db).num_samples
    gate = _gate(monkeypatch, snapshot_mod, "_link_tree")
    dest, _ = _meanwhile(
        gate, lambda: db.snapshot(tmp_path / "snap"), lambda i: _commit(db, 20, 5 * H + i * 1000), 10
    )
    with open_db(dest, OPTS) as snap:
        assert _select(snap).num_samples == before  # the view of before the commits


@pytest.mark.parametrize("read", ["label_values", "label_names", "series"])
def test_commits_proceed_while_a_label_query_checks_chunk_ranges(db, monkeypatch, read):
    """Label queries over part of the head decode the timestamps of chunk groups that
    straddle the range; that too runs after the lock is released."""
    n_series = 50
    for t in range(100):
        _commit(db, n_series, t * 1000)
    gate = _gate(monkeypatch, head_chunks_mod, "decode_ts")

    def query() -> Any:
        q = db.querier(10_500, 20_500)  # inside the first cut chunk: its timestamps decide
        try:
            if read == "series":
                return len(q.select(ALL, SelectHints(start=10_500, end=20_500, func="series")))
            return len(getattr(q, read)(ALL) if read == "label_names" else q.label_values("i", ALL))
        finally:
            q.close()

    got, _ = _meanwhile(gate, query, lambda i: _commit(db, n_series, (100 + i) * 1000), 10)
    assert got == {"label_values": n_series, "label_names": 2, "series": n_series}[read]
