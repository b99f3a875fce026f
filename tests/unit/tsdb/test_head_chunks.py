"""Cut head chunks: the column encodings, and the head against a dictionary model.

The model is the head's contract: every applied sample is kept, a repeated timestamp
keeps the sample stored first, deletes and truncations drop ranges. Chunks are cut after
a handful of samples, so nearly every read crosses cut chunks, slabs and out-of-order
samples older than a cut.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher
from signalfire.tsdb import DBOptions, head_chunks, head_pieces, open_db
from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.head import Head
from signalfire.tsdb.head_append import CONFLICT, DUPLICATE, OOO_OK, classify
from signalfire.tsdb.head_chunks import GROUP_SERIES
from signalfire.tsdb.head_group import decode_ts, decode_values, encode_ts, encode_values
from signalfire.tsdb.head_read import read_series
from signalfire.tsdb.wal.checkpoint import capture

#: Bit patterns a float codec gets wrong first: staleness marker, other NaN payloads,
#: signed zero, infinities, subnormals, extremes.
AWKWARD = np.array(
    [
        0x7FF0000000000002,  # Prometheus staleness marker
        0x7FF8000000000001,
        0xFFF8DEAD00000001,
        0x8000000000000000,  # -0.0
        0x7FF0000000000000,  # +Inf
        0xFFF0000000000000,  # -Inf
        0x0000000000000001,  # smallest subnormal
        0x7FEFFFFFFFFFFFFF,  # largest finite
    ],
    np.uint64,
).view(np.float64)

floats = st.one_of(
    st.sampled_from(list(AWKWARD)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6).map(float),
    st.integers(-(10**6), 10**6).map(lambda k: k / 100),
)


@contextlib.contextmanager
def _merge_at(samples: int) -> Iterator[None]:
    """Merge young groups at ``samples`` per series instead of 120 (to merge in tiny tests)."""
    saved = head_chunks.MERGE_SAMPLES
    head_chunks.MERGE_SAMPLES = samples
    try:
        yield
    finally:
        head_chunks.MERGE_SAMPLES = saved


def _bits(a: np.ndarray) -> list[int]:
    return np.asarray(a, np.float64).view(np.uint64).tolist()


# ---------------------------------------------------------------- encodings


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(floats, max_size=12), max_size=6))
def test_values_round_trip_bit_for_bit(series):
    counts = np.array([len(s) for s in series], np.int64)
    values = np.array([v for s in series for v in s], np.float64)
    scales, body = encode_values(values, counts)
    assert _bits(decode_values(scales, body, counts)) == _bits(values)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(MIN_TIME, MAX_TIME), max_size=10), max_size=6))
def test_timestamps_round_trip(series):
    ts = np.array([t for s in series for t in sorted(set(s))], np.int64)
    counts = np.array([len(set(s)) for s in series], np.int64)
    assert decode_ts(encode_ts(ts, counts), counts).tolist() == ts.tolist()


def test_regular_scrapes_compress_to_about_a_byte_per_sample():
    s, n = 300, 120
    ts = np.tile(1_700_000_000_000 + np.arange(n, dtype=np.int64) * 15_000, s)
    counter = np.cumsum(np.random.default_rng(0).integers(0, 50, (s, n)), axis=1).astype(np.float64)
    counts = np.full(s, n, np.int64)
    scales, body = encode_values(counter.ravel(), counts)
    size = len(scales) + len(body) + len(encode_ts(ts, counts))
    assert size / (s * n) < 1.3  # Prometheus's Gorilla chunks: ~1.3 bytes per sample


# ---------------------------------------------------------------- head vs model


def _head(
    chunk_samples: int = 4, cache: ChunkCache | None = None, n: int = 5, keep: int | None = 0
) -> tuple[Head, np.ndarray]:
    """A head whose cuts take ``chunk_samples`` and leave ``keep`` in the slab (0: cuts
    empty the slab, so these tests count cut samples simply)."""
    head = Head(7_200_000, chunk_samples=chunk_samples, cache=cache, keep_samples=keep)
    refs = head.get_or_create([Labels.from_strings("__name__", "m", "i", str(i)) for i in range(n)])
    return head, refs


def _model_apply(model: dict[int, dict[int, float]], refs, ts, values) -> None:
    for r, t, v in zip(refs.tolist(), ts.tolist(), values.tolist()):
        model.setdefault(r, {}).setdefault(t, v)  # the first stored sample wins


def _check(head: Head, model: dict[int, dict[int, float]], mint=MIN_TIME, maxt=MAX_TIME) -> None:
    live = head.live_refs()
    # Any order (reads answer in the order asked), and subsets spread over the groups.
    for refs in (live[::-1], live[::3], live[1::7]):
        offsets, ts, values, _ = head.samples(refs, mint, maxt)
        for i, r in enumerate(refs.tolist()):
            a, b = offsets[i], offsets[i + 1]
            want = sorted((t, v) for t, v in model.get(r, {}).items() if mint <= t <= maxt)
            assert ts[a:b].tolist() == [t for t, _ in want], r
            assert _bits(values[a:b]) == _bits(np.array([v for _, v in want], np.float64)), r
    refs = live
    assert head.num_samples == sum(len(m) for m in model.values())
    in_range = head.in_range(refs, mint, maxt).tolist()
    assert in_range == [any(mint <= t <= maxt for t in model.get(r, {})) for r in refs.tolist()]
    if head.chunks._cache is not None:  # decodings of groups gone from the head are dropped
        assert head.chunks._cache.chunks_of(head.chunks._owner) <= {g.serial for g in head.chunks.groups}


batch = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 400), floats), min_size=1, max_size=30)
wide_batch = st.lists(st.tuples(st.integers(0, 39), st.integers(0, 400), floats), min_size=1, max_size=60)
op = st.one_of(
    st.tuples(st.just("apply"), batch | wide_batch),
    st.tuples(st.just("delete"), st.integers(0, 39), st.integers(0, 400), st.integers(0, 100)),
    st.tuples(st.just("truncate"), st.integers(0, 400)),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(op, max_size=15),
    st.sampled_from([1, 3, 4, 16]),
    st.sampled_from([2, 5, 120]),
    st.booleans(),
    st.sampled_from([5, 40]),
    st.sampled_from([0, 2, None]),
)
def test_head_with_cuts_matches_model(ops, chunk_samples, merge_samples, cached, n_series, keep):
    """With a decoded-chunk cache, every read fills it: deletes, truncations and merges
    must not leave a stale decoding behind. Forty series make groups where reads cut
    more than a few series at once (the vectorised path), five the run-by-run one.
    Cuts that keep recent samples in the slab (``keep``) or none: reads of recent
    windows then come from the slabs alone, or from slabs and groups."""
    with _merge_at(merge_samples):
        _run_model(ops, chunk_samples, ChunkCache() if cached else None, n_series, keep)


def _run_model(ops, chunk_samples, cache=None, n_series=5, keep=0):
    head, refs = _head(chunk_samples, cache, n_series, keep)
    model: dict[int, dict[int, float]] = {}
    for o in ops:
        if o[0] == "apply":
            r = head.revive(refs[np.array([x[0] % n_series for x in o[1]])])  # as a commit does
            t = np.array([x[1] for x in o[1]], np.int64)
            v = np.array([x[2] for x in o[1]], np.float64)
            head.apply(r, t, v)
            _model_apply(model, r, t, v)
        elif o[0] == "delete":
            _, i, lo, width = o
            i %= n_series
            head.delete(refs[i : i + 1], lo, lo + width)
            m = model.get(int(refs[i]), {})
            for t in [t for t in m if lo <= t <= lo + width]:
                del m[t]
        else:
            head.truncate(o[1])
            for m in model.values():
                for t in [t for t in m if t < o[1]]:
                    del m[t]
        _check(head, model)
        for back in (0, 3, 30):  # recent windows: from the slabs alone, or reaching cuts
            _check(head, model, head.max_time - back, head.max_time + back)
    _check(head, model, 100, 250)
    _check(head, model, 7, 9)
    newest = {r: max(m) for r, m in model.items() if m}
    live = head.live_refs()
    assert {r: int(head.last_t[r]) for r in live.tolist() if r in newest} == newest
    if head.num_samples:
        assert head.min_time == min(min(m) for m in model.values() if m)
        assert head.max_time == max(newest.values())


@settings(max_examples=60, deadline=None)
@given(batch, batch, st.lists(st.tuples(st.integers(0, 4), st.integers(0, 400)), max_size=20))
def test_lookup_sees_cut_and_open_samples(first, second, probes):
    head, refs = _head(3)
    model: dict[int, dict[int, float]] = {}
    for b in (first, second):
        r = refs[np.array([x[0] for x in b])]
        t = np.array([x[1] for x in b], np.int64)
        v = np.array([x[2] for x in b], np.float64)
        head.apply(r, t, v)
        _model_apply(model, r, t, v)
    pr = refs[np.array([p[0] for p in probes], np.int64)] if probes else np.empty(0, np.int64)
    pt = np.array([p[1] for p in probes], np.int64)
    found, value = head.lookup(pr, pt)
    for k, (r, t) in enumerate(zip(pr.tolist(), pt.tolist())):
        assert found[k] == (t in model.get(r, {}))
        if found[k]:
            assert _bits(value[k : k + 1]) == _bits(np.array([model[r][t]]))


def test_out_of_order_sample_older_than_a_cut_chunk_is_read_in_order():
    head, refs = _head(4)
    for k in range(10):  # one sample per series per batch, as scrapes deliver them
        head.apply(refs[:2], np.full(2, k * 10, np.int64), np.full(2, k * 10.0))
    assert head.chunks.num_samples == 16  # two cuts of four samples each per series
    head.apply(refs[:1], np.array([15], np.int64), np.array([-1.5]))  # inside the first cut
    head.apply(refs[:1], np.array([20], np.int64), np.array([99.0]))  # stored already: kept
    ss = read_series(head, refs[:2], MIN_TIME, MAX_TIME)
    a, b = ss.offsets[0], ss.offsets[1]
    assert ss.ts[a:b].tolist() == [0, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90]
    assert ss.values[a:b][2] == -1.5 and ss.values[a:b][3] == 20.0
    assert head.last_t[refs[0]] == 90


def test_reads_cut_wide_and_narrow_groups_alike():
    """Regular scrapes of 40 series cut into wide groups, then of 6 into narrow ones, plus
    out-of-order samples: a window straddling the cuts takes the vectorised cut for groups
    with many wanted series and the batched one for groups with few, with series found
    in both kinds (their runs must stay in time order, the first stored sample winning)."""
    head, refs = _head(4, None, 40)
    model: dict[int, dict[int, float]] = {}
    for t in range(0, 400, 10):
        r = head.revive(refs if t < 200 else refs[:6])
        ts = np.full(len(r), t, np.int64)
        v = r.astype(np.float64) * 1000 + t
        head.apply(r, ts, v)
        _model_apply(model, r, ts, v)
    for t in (105, 115, 250, 255):  # older than cut chunks of series 0..2
        r = head.revive(refs[:3])
        ts = np.full(3, t, np.int64)
        v = np.full(3, -float(t))
        head.apply(r, ts, v)
        _model_apply(model, r, ts, v)
    plan = head.chunks.plan(np.sort(refs), 100, 250)
    cut = [len(e.pos) for e in plan if not e.whole]
    assert max(cut) > head_pieces._FEW_RUNS and min(cut) <= head_pieces._FEW_RUNS
    for mint, maxt in [(100, 250), (105, 245), (0, 0), (150, 150), (395, 400), (MIN_TIME, MAX_TIME)]:
        _check(head, model, mint, maxt)


def test_classify_judges_out_of_order_duplicates_against_cut_chunks():
    head, refs = _head(2)
    head.apply(np.repeat(refs[:1], 6), np.arange(6, dtype=np.int64), np.arange(6, dtype=np.float64))
    assert head.n[refs[0]] == 0 and head.nc[refs[0]] == 6
    r = np.repeat(refs[:1], 3)
    t = np.array([1, 2, 1], np.int64)
    v = np.array([1.0, 7.0, 1.0])
    bounds = (MIN_TIME, head.max_time, 1000)
    codes = classify(head, r, t, v, head.last_t[r], head.last_v[r], bounds)
    assert codes.tolist() == [DUPLICATE, CONFLICT, DUPLICATE]
    codes = classify(
        head, r[:1], np.array([-5], np.int64), v[:1], head.last_t[r[:1]], head.last_v[r[:1]], bounds
    )
    assert codes.tolist() == [OOO_OK]


def test_many_series_cut_into_several_groups_and_checkpoint_keeps_them():
    head = Head(7_200_000, chunk_samples=8, keep_samples=0)
    n = GROUP_SERIES * 2 + 7
    refs = head.get_or_create([Labels.from_strings("__name__", "m", "i", str(i)) for i in range(n)])
    for k in range(20):
        head.apply(refs, np.full(n, k * 15_000, np.int64), np.full(n, AWKWARD[k % len(AWKWARD)]))
    assert len(head.chunks.groups) >= 6 and head.num_samples == 20 * n
    offsets, _ts, values, _ = head.samples(refs[::-1], MIN_TIME, MAX_TIME)
    assert np.diff(offsets).tolist() == [20] * n
    want = np.tile(AWKWARD[np.arange(20) % len(AWKWARD)], n)
    assert _bits(values) == _bits(want)
    # A few series spread over the groups (each group holds one or none of them), and
    # a window cutting the groups: the plan looks up only those.
    few = refs[[3, GROUP_SERIES + 1, 2 * GROUP_SERIES + 6, GROUP_SERIES - 1]]
    for mint, maxt in [(MIN_TIME, MAX_TIME), (30_000, 160_000), (45_000, 45_000), (400_000, MAX_TIME)]:
        offsets, ts, values, _ = head.samples(few, mint, maxt)
        k = np.arange(20)[(np.arange(20) * 15_000 >= mint) & (np.arange(20) * 15_000 <= maxt)]
        assert np.diff(offsets).tolist() == [len(k)] * len(few)
        assert ts.tolist() == (np.tile(k, len(few)) * 15_000).tolist()
        assert _bits(values) == _bits(np.tile(AWKWARD[k % len(AWKWARD)], len(few)))
    frames = list(capture(head))
    assert len(frames) > 1
    assert head.chunks.nbytes < head.chunks.num_samples * 16  # under the raw 16 B/sample
    assert head.memory_bytes() >= head.chunks.nbytes + head.pool_ts.nbytes + head.pool_v.nbytes


def test_db_select_reopen_and_compaction_across_cut_chunks(tmp_path):
    opts = DBOptions(fsync="never", out_of_order_time_window=36_000_000, retention_ms=0)
    labels = [Labels.from_strings("__name__", "m", "i", str(i)) for i in range(3)]
    with open_db(tmp_path / "d", opts) as db:
        for k in range(300):
            with db.appender() as app:
                app.append_batch(app.refs(labels), k * 15_000, np.full(3, AWKWARD[k % len(AWKWARD)]))
        with db.appender() as app:  # out of order, inside an early cut chunk
            assert app.append_batch(app.refs(labels[:1]), 7_500, np.array([0.25])).appended == 1
        assert db.head.chunks.num_samples > 0

        def dump():
            q = db.querier(MIN_TIME, MAX_TIME)
            ss = q.select([Matcher.equal("__name__", "m")])
            q.close()
            return ss.ts.tolist(), _bits(ss.values)

        before = dump()
        assert before[0][:3] == [0, 7_500, 15_000]
    with open_db(tmp_path / "d", opts) as db:
        assert dump() == before
        db.delete([Matcher.equal("i", "1")], 30_000, 60_000)
        assert len(dump()[0]) == len(before[0]) - 3


# ---------------------------------------------------------------- DB vs model

MIN = 60_000
DB_OPTS = DBOptions(
    fsync="never",
    min_block_duration=60 * MIN,
    max_block_duration=180 * MIN,
    retention_ms=0,
    out_of_order_time_window=10**12,
    compaction_interval_ms=0,
)


def _value(i: int, t: int) -> float:
    """A function of (series, time), so a repeated sample is an exact duplicate; every
    fifth one an awkward bit pattern."""
    k = i * 7 + t // MIN
    return float(AWKWARD[k % len(AWKWARD)]) if k % 5 == 0 else (k % 97) / 8


db_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.lists(st.tuples(st.integers(0, 3), st.integers(0, 300)), min_size=1, max_size=25),
        ),
        st.tuples(st.just("delete"), st.integers(0, 3), st.integers(0, 300), st.integers(0, 60)),
        st.just(("compact",)),
        st.just(("reopen",)),
    ),
    max_size=14,
)


def _open(path):
    db = open_db(path, DB_OPTS)
    db.head.set_chunk_samples(3, 0)  # cut after three samples: nearly everything is cut
    return db


@settings(max_examples=40, deadline=None)
@given(db_ops, st.sampled_from([4, 120]))
def test_db_with_tiny_chunks_matches_model(tmp_path_factory, operations, merge_samples):
    with _merge_at(merge_samples):
        _run_db(tmp_path_factory, operations)


def _run_db(tmp_path_factory, operations):
    path = tmp_path_factory.mktemp("db")
    labels = [Labels.from_strings("__name__", "m", "i", str(i)) for i in range(4)]
    model: dict[int, dict[int, float]] = {i: {} for i in range(4)}
    db = _open(path)
    try:
        for o in operations:
            if o[0] == "append":
                idx = np.array([i for i, _ in o[1]])
                ts = np.array([m * MIN for _, m in o[1]], np.int64)
                vals = np.array([_value(i, t) for i, t in zip(idx.tolist(), ts.tolist())])
                with db.appender() as app:
                    app.append_batch(app.refs(labels)[idx], ts, vals)
                for i, t in zip(idx.tolist(), ts.tolist()):
                    model[i].setdefault(t, _value(i, t))
            elif o[0] == "delete":
                _, i, a, span = o
                db.delete([Matcher.equal("i", str(i))], a * MIN, (a + span) * MIN)
                for t in [t for t in model[i] if a * MIN <= t <= (a + span) * MIN]:
                    del model[i][t]
            elif o[0] == "compact":
                db.compact()
            else:
                db.close()
                db = _open(path)
        q = db.querier(MIN_TIME, MAX_TIME)
        ss = q.select([Matcher.equal("__name__", "m")])
        q.close()
        got = {
            ls.get("i"): (ss.ts[a:b].tolist(), _bits(ss.values[a:b]))
            for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])
        }
        want = {
            str(i): (sorted(m), _bits(np.array([m[t] for t in sorted(m)], np.float64)))
            for i, m in model.items()
            if m
        }
        assert got == want
    finally:
        db.close()


def test_young_groups_merge_into_full_size_chunks():
    head = Head(7_200_000, chunk_samples=8, keep_samples=0)
    n = 300
    refs = head.get_or_create([Labels.from_strings("__name__", "m", "i", str(i)) for i in range(n)])
    for k in range(300):
        part = refs[: n // 2] if k % 2 else refs[n // 2 :]  # two "targets", cut apart
        head.apply(part, np.full(len(part), k * 15_000, np.int64), np.full(len(part), k / 4))
    sizes = [int(g.counts.sum()) // len(g.refs) for g in head.chunks.groups]
    assert max(sizes) >= 112  # merged: 8-sample cuts became chunks of ~120 samples per series
    assert sum(x >= 112 for x in sizes) == -(-n // GROUP_SERIES)  # full groups of series
    offsets, ts, values, _ = head.samples(refs, MIN_TIME, MAX_TIME)
    assert np.diff(offsets).tolist() == [150] * n
    assert ts[:3].tolist() == [15_000, 45_000, 75_000]
    assert values[offsets[n // 2] : offsets[n // 2] + 2].tolist() == [0.0, 0.5]


def test_memory_estimate_tracks_traced_allocations():
    """``memory_bytes`` (DB stats, /metrics) stays within 25% of what tracemalloc sees."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        head = Head(7_200_000)
        n = 3000
        refs = head.get_or_create(
            [Labels.from_strings("__name__", "m", "job", "j", "i", str(i)) for i in range(n)]
        )
        rng = np.random.default_rng(0)
        for k in range(100):
            head.apply(refs, np.full(n, k * 15_000, np.int64), np.round(rng.random(n) * 100, 2))
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    est = head.stats()["memory_bytes"]
    assert 0.75 * traced < est < 1.25 * traced, (est, traced)
    assert head.stats()["chunk_samples"] + int(head.n.sum()) == 100 * n


@pytest.mark.parametrize("keep", [0, 1, 4, 9])
@pytest.mark.parametrize("ooo", [False, True])
def test_recent_windows_read_from_slabs_alone_when_no_cut_sample_is_in_range(keep, ooo, monkeypatch):
    """Regular scrapes of series with and without cuts: a window younger than every cut
    sample of the series asked for is gathered from the slabs (the chunk plan is never
    consulted); one reaching a cut sample plans. Both sides of that line, for every
    window end, agree with the model, also when an out-of-order sample older than a cut
    chunk sits in the slab (the slab path must not take it for a recent one)."""
    head, refs = _head(4, None, 6, keep)
    model: dict[int, dict[int, float]] = {}
    for t in range(0, 300, 10):
        r = head.revive(refs if t < 200 else refs[:3])  # series 3..5 stop: no cut after 200
        ts = np.full(len(r), t, np.int64)
        v = r.astype(np.float64) * 1000 + t
        head.apply(r, ts, v)
        _model_apply(model, r, ts, v)
    if ooo:
        r = head.revive(refs[:2])
        head.apply(r, np.full(2, 15, np.int64), np.full(2, -1.5))
        _model_apply(model, r, np.full(2, 15, np.int64), np.full(2, -1.5))
    planned = []
    real_plan = head.chunks.plan
    monkeypatch.setattr(head.chunks, "plan", lambda *a: planned.append(a) or real_plan(*a))
    newest_cut = head.cut_maxt[refs]
    assert (head.nc[refs] > 0).all()
    for mint in range(0, 300, 5):
        for maxt in (mint, mint + 7, 290, MAX_TIME):
            planned.clear()
            _check(head, model, mint, maxt)
            assert bool(planned) == bool(newest_cut.max() >= mint), (mint, maxt)
    big = head.revive(refs[:1])  # one slab longer than the gather bound: binary searches
    t = np.arange(300, 300 + 3 * 256, dtype=np.int64)
    head.set_chunk_samples(10_000, 0)
    head.apply(np.repeat(big, len(t)), t, t.astype(np.float64))
    _model_apply(model, np.repeat(big, len(t)), t, t.astype(np.float64))
    for mint, maxt in [(300, 400), (310, 1000), (1000, 2000), (0, MAX_TIME)]:
        _check(head, model, mint, maxt)
