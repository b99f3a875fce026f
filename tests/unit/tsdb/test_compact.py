"""Compaction planning and merging, retention (tsdb/compact.py, retention.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire.labels import Labels, Matcher
from signalfire.storage import SeriesSet, series_set_from_lists
from signalfire.tsdb.block import Block, BlockMeta, write_block
from signalfire.tsdb.compact import compact_blocks, merge_series_sets, plan_compaction
from signalfire.tsdb.retention import blocks_to_delete

H = 3_600_000


def meta(name: str, mint: int, maxt: int, **kw: int) -> BlockMeta:
    return BlockMeta(ulid=name, min_time=mint, max_time=maxt, **kw)  # type: ignore[arg-type]


def names(groups: list[list[BlockMeta]]) -> list[list[str]]:
    return [[m.ulid for m in g] for g in groups]


@pytest.mark.parametrize(
    ("blocks", "want"),
    [
        ([], []),
        ([("a", 0, 2)], []),
        # Newest block stays out, so two complete 2h blocks of a 6h range are not enough...
        ([("a", 0, 2), ("b", 2, 4)], []),
        # ...but a third block after them completes the range.
        ([("a", 0, 2), ("b", 2, 4), ("c", 4, 6), ("d", 6, 8)], [["a", "b", "c"]]),
        # A range that lies before the newest block is compacted even when incomplete.
        ([("a", 0, 2), ("b", 2, 4), ("d", 6, 8), ("e", 8, 10)], [["a", "b"]]),
        # Overlapping blocks go first, whatever their size.
        ([("a", 0, 2), ("b", 1, 3), ("c", 10, 12)], [["a", "b"]]),
        ([("a", 0, 6), ("b", 6, 8), ("c", 8, 10), ("d", 10, 12), ("e", 12, 14)], [["b", "c", "d"]]),
        # 6h blocks roll up into an 18h block.
        ([("a", 0, 6), ("b", 6, 12), ("c", 12, 18), ("d", 18, 20)], [["a", "b", "c"]]),
        # Groups follow aligned ranges: c crosses the 6h boundary and stays out.
        ([("a", 1, 3), ("b", 3, 5), ("c", 5, 7), ("d", 20, 22)], [["a", "b"]]),
    ],
)
def test_plan(blocks: list[tuple[str, int, int]], want: list[list[str]]) -> None:
    metas = [meta(n, a * H, b * H) for n, a, b in blocks]
    assert names(plan_compaction(metas)) == want
    assert names(plan_compaction(list(reversed(metas)))) == want


def test_plan_tombstones() -> None:
    metas = [meta("a", 0, 6 * H, num_series=100, num_tombstones=10), meta("b", 6 * H, 8 * H)]
    assert names(plan_compaction(metas)) == [["a"]]
    small = [meta("a", 0, 2 * H, num_series=5, num_tombstones=5), meta("b", 2 * H, 4 * H)]
    assert names(plan_compaction(small)) == [["a"]]


def _write(parent: Path, series: dict[str, tuple[list[int], list[float]]], mint: int, maxt: int) -> Block:
    labels = [Labels.from_dict({"__name__": "m", "s": k}) for k in series]
    ss = series_set_from_lists(
        labels, [np.array(v[0]) for v in series.values()], [np.array(v[1]) for v in series.values()]
    )
    meta = write_block(parent, ss, min_time=mint, max_time=maxt)
    return Block.open(parent / meta.ulid)


def test_compact_disjoint_blocks(tmp_path: Path) -> None:
    a = _write(tmp_path, {"x": ([0, 1000], [1.0, 2.0]), "y": ([5], [9.0])}, 0, 2 * H)
    b = _write(tmp_path, {"x": ([2 * H, 2 * H + 5], [3.0, 4.0]), "z": ([2 * H], [7.0])}, 2 * H, 4 * H)
    meta = compact_blocks(tmp_path, [b, a])
    assert meta is not None
    assert (meta.min_time, meta.max_time, meta.level, meta.num_series, meta.num_samples) == (
        0,
        4 * H,
        2,
        3,
        6,
    )
    assert set(meta.sources) == {a.meta.ulid, b.meta.ulid} and set(meta.parents) == set(meta.sources)
    with Block.open(tmp_path / meta.ulid) as c:
        got = c.querier(0, 4 * H).select([])
        assert [ls.get("s") for ls in got.labels] == ["x", "y", "z"]
        assert got.series(0)[1].tolist() == [0, 1000, 2 * H, 2 * H + 5]
        assert got.series(0)[2].tolist() == [1.0, 2.0, 3.0, 4.0]
    a.close()
    b.close()


def test_compact_overlapping_dedupes_keep_first(tmp_path: Path) -> None:
    a = _write(tmp_path, {"x": ([0, 10, 20], [1.0, 2.0, 3.0])}, 0, 2 * H)
    b = _write(tmp_path, {"x": ([10, 15, 20, 30], [9.0, 9.5, 9.0, 9.0])}, 0, 2 * H)
    meta = compact_blocks(tmp_path, [a, b])
    assert meta is not None
    with Block.open(tmp_path / meta.ulid) as c:
        _, t, v = c.querier(0, 2 * H).select([]).series(0)
        assert t.tolist() == [0, 10, 15, 20, 30]
        assert v.tolist() == [1.0, 2.0, 9.5, 3.0, 9.0]
    for blk in (a, b):
        blk.close()


def test_compact_applies_tombstones_and_empty_result(tmp_path: Path) -> None:
    a = _write(tmp_path, {"x": ([0, 10, 20], [1.0, 2.0, 3.0]), "y": ([5], [1.0])}, 0, 2 * H)
    a.delete([Matcher.equal("s", "x")], 5, 15)
    meta = compact_blocks(tmp_path, [a])
    assert meta is not None and meta.num_samples == 3 and meta.num_tombstones == 0
    a.delete([Matcher.equal("__name__", "m")], 0, 2 * H)
    assert compact_blocks(tmp_path, [a]) is None
    a.close()


def test_retention_by_time() -> None:
    ms = [(meta(n, a * H, b * H), 100) for n, a, b in [("a", 0, 2), ("b", 2, 4), ("c", 4, 6), ("d", 6, 8)]]
    assert blocks_to_delete(ms, retention_ms=4 * H, max_bytes=None) == ["a", "b"]
    assert blocks_to_delete(ms, retention_ms=100 * H, max_bytes=None) == []
    assert blocks_to_delete(ms, retention_ms=1, max_bytes=None) == ["a", "b", "c"]  # newest kept
    assert blocks_to_delete(ms, retention_ms=2 * H, max_bytes=None, now_maxt=12 * H) == ["a", "b", "c", "d"]
    assert blocks_to_delete(ms, retention_ms=None, max_bytes=None) == []


def test_retention_by_size() -> None:
    ms = [(meta(n, a * H, b * H), 100) for n, a, b in [("a", 0, 2), ("b", 2, 4), ("c", 4, 6)]]
    assert blocks_to_delete(ms, retention_ms=None, max_bytes=250) == ["a"]
    assert blocks_to_delete(ms, retention_ms=None, max_bytes=300) == []
    assert blocks_to_delete(ms, retention_ms=None, max_bytes=250, head_bytes=60) == ["a", "b"]
    assert blocks_to_delete(ms, retention_ms=None, max_bytes=50) == ["a", "b", "c"]


@st.composite
def _sets(draw: st.DrawFn, disjoint: bool) -> list[SeriesSet]:
    out = []
    for k in range(draw(st.integers(1, 4))):
        names = draw(st.lists(st.sampled_from("abcdef"), unique=True, max_size=5))
        labels, ts, vals = [], [], []
        for n in names:
            lo = k * 1000 if disjoint else 0
            t = sorted(
                set(draw(st.lists(st.integers(lo, lo + (999 if disjoint else 50)), min_size=1, max_size=8)))
            )
            labels.append(Labels.from_dict({"s": n}))
            ts.append(np.array(t, np.int64))
            vals.append(np.array([k * 1000.0 + x for x in t]))
        out.append(series_set_from_lists(labels, ts, vals))
    return out


@settings(max_examples=100, deadline=None)
@given(st.booleans().flatmap(lambda d: st.tuples(st.just(d), _sets(d))))
def test_merge_series_sets_matches_reference(case: tuple[bool, list[SeriesSet]]) -> None:
    disjoint, sets = case
    want: dict[Labels, dict[int, float]] = {}
    for s in sets:
        for i in range(len(s)):
            ls, t, v = s.series(i)
            d = want.setdefault(ls, {})
            for tt, vv in zip(t.tolist(), v.tolist()):
                d.setdefault(tt, vv)  # the earliest set wins
    got = merge_series_sets(sets, overlapping=not disjoint)
    assert list(got.labels) == sorted(want)
    for i, ls in enumerate(got.labels):
        _, t, v = got.series(i)
        assert list(zip(t.tolist(), v.tolist())) == sorted(want[ls].items())


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # start, in hours
            st.integers(1, 7),  # length, in hours
            st.lists(st.sampled_from("abcd"), unique=True, min_size=1, max_size=3),
            st.sampled_from([60_000, 600_000, 1_800_000]),  # scrape interval
        ),
        min_size=1,
        max_size=3,
    )
)
def test_compact_many_windows_matches_reference(
    tmp_path_factory: pytest.TempPathFactory, specs: list
) -> None:
    tmp = tmp_path_factory.mktemp("c")
    blocks, want = [], {}
    for k, (start, length, names, step) in enumerate(specs):
        mint, maxt = start * H, (start + length) * H
        series = {}
        for n in names:
            t = np.arange(mint + k, maxt, step, dtype=np.int64)
            series[n] = (t.tolist(), (t * 0 + k * 100.0 + np.arange(len(t))).tolist())
            d = want.setdefault(n, {})
            for tt, vv in zip(*series[n]):
                d.setdefault(tt, vv)  # the block listed first wins
        blocks.append(_write(tmp, series, mint, maxt))
    meta = compact_blocks(tmp, blocks)
    assert meta is not None
    assert meta.min_time == min(s * H for s, *_ in specs)
    assert meta.max_time == max((s + n) * H for s, n, *_ in specs)
    with Block.open(tmp / meta.ulid) as c:
        got = c.querier(meta.min_time, meta.max_time).select([])
        assert [ls.get("s") for ls in got.labels] == sorted(want)
        for i, ls in enumerate(got.labels):
            _, t, v = got.series(i)
            assert list(zip(t.tolist(), v.tolist())) == sorted(want[ls.get("s")].items())
    for b in blocks:
        b.close()


def test_compact_keeps_start_timestamps(tmp_path: Path) -> None:
    labels = [Labels.from_dict({"s": "x"})]
    a = SeriesSet(labels, np.array([0, 2]), np.array([10, 20]), np.array([1.0, 2.0]), st=np.array([5, 5]))
    b = SeriesSet(labels, np.array([0, 1]), np.array([2 * H + 1]), np.array([3.0]))
    ma = write_block(tmp_path, a, min_time=0, max_time=2 * H)
    mb = write_block(tmp_path, b, min_time=2 * H, max_time=4 * H)
    with Block.open(tmp_path / ma.ulid) as ba, Block.open(tmp_path / mb.ulid) as bb:
        meta = compact_blocks(tmp_path, [ba, bb])
    assert meta is not None
    with Block.open(tmp_path / meta.ulid) as c:
        got = c.querier(0, 4 * H).select([])
        assert got.st is not None and got.st.tolist() == [5, 5, 0]
