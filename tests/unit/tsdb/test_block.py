"""Blocks: write, open, select, delete, corruption (tsdb/block.py, block_write.py, querier.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signalfire._types import STALE_NAN_BITS
from signalfire.errors import CorruptionError, StorageError
from signalfire.labels import Labels, Matcher, MatchType
from signalfire.storage import SelectHints, SeriesSet, series_set_from_lists
from signalfire.storage.merge import merge_run_sets
from signalfire.storage.runs import RunSet
from signalfire.tsdb.block import Block, BlockMeta, new_ulid, ulid_time, write_block
from signalfire.tsdb.block_meta import read_meta
from signalfire.tsdb.block_write import BlockWriter

H = 3_600_000


def _series(n: int = 30, steps: int = 200, t0: int = 0, step: int = 15_000) -> SeriesSet:
    rng = np.random.default_rng(1)
    labels, ts, vals = [], [], []
    for i in range(n):
        labels.append(Labels.from_dict({"__name__": f"m{i % 3}", "job": f"j{i % 4}", "i": str(i)}))
        t = t0 + (i % 5) + np.arange(steps, dtype=np.int64) * step
        ts.append(t)
        if i % 3 == 0:
            vals.append(np.cumsum(rng.poisson(5, steps)).astype(np.float64))
        elif i % 3 == 1:
            vals.append(rng.normal(size=steps))
        else:
            v = np.round(rng.uniform(0, 100, steps), 2)
            v[::17] = np.array([STALE_NAN_BITS], np.uint64).view(np.float64)[0]
            vals.append(v)
    return series_set_from_lists(labels, ts, vals)


def _same(a: SeriesSet, b: SeriesSet) -> None:
    assert list(a.labels) == list(b.labels)
    assert a.offsets.tolist() == b.offsets.tolist()
    assert a.ts.tolist() == b.ts.tolist()
    assert np.array_equal(a.values.view(np.uint64), b.values.view(np.uint64))


@pytest.fixture
def block(tmp_path: Path) -> Block:
    ss = _series()
    meta = write_block(tmp_path, ss, min_time=0, max_time=4 * H)
    b = Block.open(tmp_path / meta.ulid)
    yield b
    b.close()


def test_roundtrip_all(block: Block) -> None:
    with block.querier(0, 4 * H) as q:
        _same(q.select([]), _series())
    assert block.meta.num_series == 30
    assert block.meta.num_samples == 30 * 200
    assert block.meta.sources == (block.meta.ulid,)
    assert read_meta(block.dir) == block.meta


def test_select_matchers_and_range(block: Block) -> None:
    full = _series()
    q = block.querier(10 * 15_000, 20 * 15_000)
    got = q.select([Matcher.equal("__name__", "m1"), Matcher(MatchType.REGEX, "job", "j1|j2")])
    want_ids = [
        i for i, ls in enumerate(full.labels) if ls.get("__name__") == "m1" and ls.get("job") in ("j1", "j2")
    ]
    assert [full.labels[i] for i in want_ids] == list(got.labels)
    for k, i in enumerate(want_ids):
        _, t, v = full.series(i)
        sel = (t >= 150_000) & (t <= 300_000)
        _, gt, gv = got.series(k)
        assert gt.tolist() == t[sel].tolist()
        assert np.array_equal(gv.view(np.uint64), v[sel].view(np.uint64))


def test_hints_narrow_the_range(block: Block) -> None:
    q = block.querier(0, 4 * H)
    got = q.select([Matcher.equal("i", "7")], SelectHints(start=30_000, end=60_000))
    # Series i=7 is shifted by 7 % 5 = 2 ms: samples at 30_002 and 45_002 only.
    assert got.ts.tolist() == [30_002, 45_002]


def test_series_hint_returns_labels_only(block: Block) -> None:
    got = block.querier(0, 4 * H).select([Matcher.equal("job", "j0")], SelectHints(func="series"))
    assert len(got) > 0 and got.num_samples == 0


def test_label_names_and_values(block: Block) -> None:
    q = block.querier(0, 4 * H)
    assert q.label_names() == ["__name__", "i", "job"]
    assert q.label_values("job") == ["j0", "j1", "j2", "j3"]
    assert q.label_values("job", [Matcher.equal("__name__", "m0"), Matcher.equal("i", "3")]) == ["j3"]
    assert q.label_values("nope") == []
    assert q.label_names([Matcher.equal("i", "nope")]) == []


def test_delete_hides_samples_and_persists(block: Block) -> None:
    n = block.delete([Matcher.equal("__name__", "m0")], 0, 100 * 15_000)
    assert n == 10
    got = block.querier(0, 4 * H).select([Matcher.equal("__name__", "m0")])
    assert len(got) == 10 and got.ts.min() > 100 * 15_000
    reopened = Block.open(block.dir)
    try:
        assert reopened.meta.num_tombstones == 10
        again = reopened.querier(0, 4 * H).select([Matcher.equal("__name__", "m0")])
        _same(got, again)
        # Deleting everything drops the series from results.
        reopened.delete([Matcher.equal("__name__", "m0")], -(2**62), 2**62)
        assert len(reopened.querier(0, 4 * H).select([Matcher.equal("__name__", "m0")])) == 0
    finally:
        reopened.close()


def test_window_split_and_start_timestamps(tmp_path: Path) -> None:
    # 5h of data crosses 2h windows; st is an optional column.
    ss = _series(n=6, steps=1200)
    st = np.where(np.arange(ss.num_samples) % 7 == 0, 1234, 0).astype(np.int64)
    ss = SeriesSet(ss.labels, ss.offsets, ss.ts, ss.values, st=st)
    meta = write_block(tmp_path, ss, min_time=0, max_time=6 * H)
    with Block.open(tmp_path / meta.ulid) as b:
        got = b.querier(0, 6 * H).select([])
        _same(got, ss)
        assert got.st is not None and got.st.tolist() == st.tolist()
        assert meta.num_chunks == 6 * 3


def test_samples_outside_range_are_dropped(tmp_path: Path) -> None:
    ss = _series(n=3, steps=10)
    meta = write_block(tmp_path, ss, min_time=5 * 15_000, max_time=8 * 15_000)
    with Block.open(tmp_path / meta.ulid) as b:
        got = b.querier(-(2**62), 2**62).select([])
        assert got.num_samples == 3 * 3
        assert (got.ts >= 75_000).all() and (got.ts < 120_000).all()


def test_empty_block(tmp_path: Path) -> None:
    ss = SeriesSet([], np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    meta = write_block(tmp_path, ss, min_time=0, max_time=H)
    with Block.open(tmp_path / meta.ulid) as b:
        assert len(b.querier(0, H).select([])) == 0
        assert b.querier(0, H).label_names() == []


def test_write_is_atomic_and_size(tmp_path: Path, block: Block) -> None:
    assert not list(block.dir.parent.glob("*.tmp"))
    assert block.size_bytes() == sum(f.stat().st_size for f in block.dir.rglob("*") if f.is_file())


def test_read_after_close_is_a_storage_error(tmp_path: Path) -> None:
    meta = write_block(tmp_path, _series(), min_time=0, max_time=4 * H)
    b = Block.open(tmp_path / meta.ulid)
    q = b.querier(0, 4 * H)
    b.close()
    with pytest.raises(StorageError, match="closed"):
        q.select([])


def test_ulid() -> None:
    u = new_ulid(1_700_000_000_000)
    assert len(u) == 26 and ulid_time(u) == 1_700_000_000_000
    assert new_ulid(1) < new_ulid(2)
    with pytest.raises(ValueError):
        ulid_time("not-a-ulid")


# ------------------------------------------------------------------ corruption


def _chunk_file(b: Block) -> Path:
    return b.dir / "chunks" / "000001"


def test_truncated_chunk_file(tmp_path: Path) -> None:
    meta = write_block(tmp_path, _series(), min_time=0, max_time=4 * H)
    path = tmp_path / meta.ulid / "chunks" / "000001"
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(CorruptionError) as err:
        Block.open(tmp_path / meta.ulid)
    assert err.value.path == str(path) and err.value.offset > 0


@pytest.mark.parametrize("where", [0.3, 0.6, 0.99])
def test_flipped_chunk_byte(tmp_path: Path, where: float) -> None:
    meta = write_block(tmp_path, _series(), min_time=0, max_time=4 * H)
    path = tmp_path / meta.ulid / "chunks" / "000001"
    data = bytearray(path.read_bytes())
    pos = max(8, int(len(data) * where))
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as err, Block.open(tmp_path / meta.ulid) as b:
        b.verify()
    assert err.value.path == str(path)
    assert 0 <= err.value.offset <= pos


@pytest.mark.parametrize("name", ["index", "tombstones", "meta.json"])
def test_damaged_files(tmp_path: Path, name: str) -> None:
    meta = write_block(tmp_path, _series(), min_time=0, max_time=4 * H)
    path = tmp_path / meta.ulid / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as err:
        Block.open(tmp_path / meta.ulid)
    assert err.value.path == str(path)


@pytest.mark.parametrize("name", ["index", "chunks/000001", "meta.json"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    meta = write_block(tmp_path, _series(), min_time=0, max_time=4 * H)
    (tmp_path / meta.ulid / name).unlink()
    with pytest.raises(CorruptionError) as err:
        Block.open(tmp_path / meta.ulid)
    assert err.value.path == str(tmp_path / meta.ulid / name)


def test_truncated_index(tmp_path: Path) -> None:
    meta = write_block(tmp_path, _series(), min_time=0, max_time=4 * H)
    path = tmp_path / meta.ulid / "index"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CorruptionError, match="truncated"):
        Block.open(tmp_path / meta.ulid)


def test_meta_json_roundtrip() -> None:
    m = BlockMeta("01HZZZZZZZZZZZZZZZZZZZZZZZ", 0, 10, 1, 2, 3, 2, ("a", "b"), ("c",), 4)
    assert BlockMeta.from_json(m.to_json()) == m


def test_block_writer_in_series_batches(tmp_path: Path) -> None:
    ss = _series(n=10, steps=50)
    w = BlockWriter(tmp_path, ss.labels, min_time=0, max_time=4 * H)
    for lo, hi in ((0, 4), (4, 10)):  # one window, two batches of series
        a, b = int(ss.offsets[lo]), int(ss.offsets[hi])
        w.add(np.arange(lo, hi), ss.offsets[lo : hi + 1] - a, ss.ts[a:b], ss.values[a:b])
    meta = w.finish()
    with Block.open(tmp_path / meta.ulid) as blk:
        _same(blk.querier(0, 4 * H).select([]), ss)
    w2 = BlockWriter(tmp_path, ss.labels, min_time=0, max_time=4 * H)
    w2.add(np.array([0]), np.array([0, 1]), np.array([3 * H]), np.array([1.0]))
    with pytest.raises(AssertionError, match="earlier window"):
        w2.add(np.array([1]), np.array([0, 1]), np.array([0]), np.array([1.0]))
    w2.abort()
    assert not list(tmp_path.glob("*.tmp"))


def test_bytes_per_sample_on_scrape_like_data(tmp_path: Path) -> None:
    # Scrape-shaped data (20 targets x 50 series, 2h at 15s with a few ms of jitter):
    # counters, 2-decimal CPU seconds, byte gauges, constants. Guards the target
    # of at most 1.0 byte per sample (bench/codec.py measures ~0.66 on gen.py's data).
    rng = np.random.default_rng(7)
    steps, targets = 480, 20
    labels, ts, vals = [], [], []
    for t in range(targets):
        times = (
            1_700_000_000_000
            + rng.integers(0, 15_000)
            + 15_000 * np.arange(steps)
            + rng.integers(-4, 5, steps)
        )
        for k in range(50):
            kind = k % 5
            if kind == 0:
                v = np.cumsum(rng.poisson(rng.uniform(0.5, 300), steps)).astype(np.float64)
            elif kind == 1:
                v = np.cumsum(np.rint(1500 * rng.uniform(0.01, 0.5) * rng.normal(1, 0.15, steps))) / 100
            elif kind == 2:
                v = np.rint((5e9 + np.cumsum(rng.normal(0, 4e6, steps))) / 4096) * 4096
            elif kind == 3:
                v = np.full(steps, 1.0)
            else:
                v = np.clip(np.rint(200 + np.cumsum(rng.normal(0, 3, steps))), 1, None)
            labels.append(
                Labels.from_dict({"__name__": f"m{k}", "instance": f"host-{t}:9100", "job": "node"})
            )
            ts.append(times.astype(np.int64))
            vals.append(v)
    ss = series_set_from_lists(labels, ts, vals)
    meta = write_block(tmp_path, ss, min_time=1_699_999_200_000, max_time=1_700_013_600_000)
    with Block.open(tmp_path / meta.ulid) as b:
        assert b.size_bytes() / ss.num_samples < 1.0  # ~0.80 here: a fifth are wide byte gauges
        _same(b.querier(meta.min_time, meta.max_time).select([]), ss)


def test_concurrent_queriers_and_delete(block: Block) -> None:
    import threading

    errors: list[BaseException] = []
    want = block.querier(0, 4 * H).select([Matcher.equal("__name__", "m1")])

    def read() -> None:
        try:
            for _ in range(20):
                got = block.querier(0, 4 * H).select([Matcher.equal("__name__", "m1")])
                _same(got, want)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for k in range(10):  # deletes touch other series while readers run
        block.delete([Matcher.equal("__name__", "m2")], k * 1000, k * 1000 + 500)
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize(
    "mint,maxt",
    [(0, 6 * H), (H + 7, 4 * H - 3), (2 * H, 2 * H), (-5, 10)],
    ids=["all", "cut", "one-ms", "edge"],
)
def test_select_runs_equal_select(tmp_path: Path, mint: int, maxt: int) -> None:
    # Runs over the decoded chunks, copied out once (by a merge), give what select copies.
    ss = _series(n=6, steps=1200)
    st = np.where(np.arange(ss.num_samples) % 7 == 0, 1234, 0).astype(np.int64)
    ss = SeriesSet(ss.labels, ss.offsets, ss.ts, ss.values, st=st)
    meta = write_block(tmp_path, ss, min_time=0, max_time=6 * H)
    with Block.open(tmp_path / meta.ulid) as b, b.querier(mint, maxt) as q:
        ms = [Matcher(MatchType.REGEX, "i", "[0-4]")]
        want = q.select(ms)
        runs = q.select_runs(ms)
        got = runs.to_series_set()
        _same(got, want)
        assert got.st is not None and want.st is not None and got.st.tolist() == want.st.tolist()
        # A merge with a disjoint later input appends its samples after the block's.
        later = series_set_from_lists(
            [want.labels[0]] if len(want) else [], [np.array([10 * H])], [np.ones(1)]
        )
        merged = merge_run_sets([runs, RunSet.of(later)])
        merged.validate()
        assert merged.num_samples == want.num_samples + len(later)
