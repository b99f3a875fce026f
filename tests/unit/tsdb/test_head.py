"""Head registry, postings, slabs, truncation, deletion and reads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire.labels import Labels, Matcher
from signalfire.tsdb.head import Head
from signalfire.tsdb.head_append import HeadAppender
from signalfire.tsdb.head_read import HeadQuerier

H = 3_600_000


def _mk(head, window=0):
    return HeadAppender(head, None, lambda: window)


def _fill(head, labels, ts, per_series=1):
    app = _mk(head)
    refs = app.refs(labels)
    for t in ts:
        app.append_batch(refs, t, np.arange(len(refs), dtype=np.float64) + t)
    app.commit()
    return refs


def _labels(n, **extra):
    return [
        Labels.from_dict({"__name__": "m", "i": str(i), "even": str(i % 2 == 0), **extra}) for i in range(n)
    ]


def test_refs_are_stable_and_interned():
    head = Head(2 * H)
    a = _mk(head).refs(_labels(3))
    b = _mk(head).refs(list(reversed(_labels(3))))
    assert a.tolist() == [0, 1, 2] and b.tolist() == [2, 1, 0]
    assert head.num_series == 3


@pytest.mark.parametrize(
    ("matchers", "want"),
    [
        ([Matcher.equal("i", "3")], ["3"]),
        ([Matcher.parse_type("=~", "i", "1|3|7")], ["1", "3"]),
        ([Matcher.parse_type("!=", "i", "0")], ["1", "2", "3", "4"]),
        ([Matcher.parse_type("!~", "i", "[0-2]")], ["3", "4"]),
        ([Matcher.equal("even", "True"), Matcher.parse_type("!=", "i", "2")], ["0", "4"]),
        ([Matcher.equal("missing", "")], ["0", "1", "2", "3", "4"]),
        ([Matcher.parse_type("=~", "missing", ".+")], []),
        ([Matcher.parse_type("=~", "i", ".*"), Matcher.equal("i", "9")], []),
    ],
    ids=[
        "eq",
        "regex-literals",
        "neq",
        "not-regex",
        "and",
        "absent-eq-empty",
        "absent-regex-nonempty",
        "empty",
    ],
)
def test_select_matchers(matchers, want):
    head = Head(2 * H)
    _fill(head, _labels(5), [1000])
    ss = HeadQuerier(head, 0, 5000).select(matchers)
    assert sorted(ls.get("i") for ls in ss.labels) == want


def test_select_sorts_by_labels_and_clips_range():
    head = Head(2 * H)
    _fill(head, list(reversed(_labels(12))), [1000, 2000, 3000])
    ss = HeadQuerier(head, 1500, 3000).select([Matcher.equal("__name__", "m")])
    ss.validate()
    assert list(ss.labels) == sorted(_labels(12))
    assert ss.offsets.tolist() == list(range(0, 25, 2))
    assert set(ss.ts.tolist()) == {2000, 3000}
    assert len(HeadQuerier(head, 3001, 9000).select([Matcher.equal("__name__", "m")])) == 0


def test_growth_relocates_and_repacks_without_losing_samples():
    head = Head(1 << 40)
    refs = _mk(head).refs(_labels(50))
    rng = np.random.default_rng(0)
    want = {int(r): [] for r in refs}
    for t in range(1, 300):
        sel = refs[rng.random(len(refs)) < 0.3]
        with _mk(head) as app:
            app.append_batch(sel, t, np.full(len(sel), float(t)))
        for r in sel.tolist():
            want[r].append(t)
    head.repack()
    ss = HeadQuerier(head, 0, 10**6).select([])
    got = {ls.get("i"): ss.ts[a:b].tolist() for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])}
    assert got == {str(r): ts for r, ts in want.items() if ts}


def test_truncate_drops_old_samples_and_gcs_empty_series():
    head = Head(2 * H)
    refs = _fill(head, _labels(4), [1000, 2000])
    with _mk(head) as app:
        app.append_batch(refs[:2], 3000, np.array([1.0, 2.0]))
    assert head.truncate(2500) == 2
    assert head.num_series == 2 and head.min_time == 3000 and head.min_valid_time == 2500
    assert head.postings.label_values("i") == ["0", "1"]
    # A stale ref from before GC revives the series on commit.
    with _mk(head) as app:
        assert app.append_batch(refs[2:3], 4000, np.array([5.0])).appended == 1
    ss = HeadQuerier(head, 0, 10**6).select([Matcher.equal("i", "2")])
    assert ss.ts.tolist() == [4000]


def test_delete_removes_range_and_reopens_it_for_appends():
    head = Head(2 * H)
    refs = _fill(head, _labels(2), [1000, 2000, 3000])
    assert head.delete(refs[:1], 1500, 3000) == 2
    ss = HeadQuerier(head, 0, 10**6).select([Matcher.equal("i", "0")])
    assert ss.ts.tolist() == [1000]
    with _mk(head) as app:
        assert app.append_batch(refs[:1], 2500, np.array([1.0])).appended == 1
    ss = HeadQuerier(head, 0, 10**6).select([Matcher.equal("i", "0")])
    assert ss.ts.tolist() == [1000, 2500]


def test_label_names_and_values_respect_range_and_matchers():
    head = Head(2 * H)
    _fill(head, _labels(3), [1000])
    _fill(head, [Labels.from_strings("__name__", "other", "zone", "a")], [5000])
    q = HeadQuerier(head, 0, 2000)
    assert q.label_names() == ["__name__", "even", "i"]
    assert q.label_values("__name__") == ["m"]
    assert HeadQuerier(head, 0, 9000).label_values("zone", [Matcher.equal("__name__", "other")]) == ["a"]


def test_stats():
    head = Head(2 * H)
    _fill(head, _labels(3), [1000, 2000])
    s = head.stats()
    assert (s["num_series"], s["num_samples"], s["min_time"], s["max_time"]) == (3, 6, 1000, 2000)
    assert s["memory_bytes"] > 0


def test_label_order_is_kept_across_rounds_of_new_and_removed_series():
    head = Head(2 * H)
    rng = np.random.default_rng(3)
    names = [Labels.from_strings("__name__", "m", "k", f"{x:04d}") for x in rng.permutation(300)]
    for chunk in range(0, 300, 70):
        _fill(head, names[chunk : chunk + 70], [1000 + chunk])
        ss = HeadQuerier(head, 0, 10**6).select([])
        assert list(ss.labels) == sorted(names[: chunk + 70])
    head.truncate(1000 + 140)  # GC the first two rounds
    _fill(head, names[:10], [5000])  # and bring ten of them back
    ss = HeadQuerier(head, 0, 10**6).select([])
    assert list(ss.labels) == sorted(names[140:] + names[:10])


def test_random_growth_truncation_and_repacks_keep_every_sample():
    head = Head(1 << 40)
    refs = _mk(head).refs(_labels(40))
    rng = np.random.default_rng(7)
    want: dict[int, list[int]] = {int(r): [] for r in refs}
    t = 0
    for step in range(400):
        k = int(rng.integers(1, 12))
        sel = np.repeat(refs[rng.random(len(refs)) < 0.2], k)
        ts = np.tile(np.arange(k, dtype=np.int64), len(sel) // k) + t if len(sel) else np.empty(0, np.int64)
        sel = np.sort(sel, kind="stable")
        ts = (
            np.concatenate([np.arange(k, dtype=np.int64) + t for _ in range(len(sel) // k)])
            if len(sel)
            else ts
        )
        with _mk(head) as app:
            assert app.append_batch(sel, ts, ts.astype(np.float64)).appended == len(sel)
        for r, x in zip(sel.tolist(), ts.tolist()):
            want[r].append(x)
        t += k
        if step % 37 == 36:
            cut = t - int(rng.integers(5, 40))
            head.truncate(cut)
            want = {r: [x for x in v if x >= cut] for r, v in want.items()}
    ss = HeadQuerier(head, 0, 10**9).select([])
    got = {ls.get("i"): ss.ts[a:b].tolist() for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])}
    assert got == {str(r): v for r, v in want.items() if v}
    assert (ss.values == ss.ts).all()


def test_repack_inside_growth_does_not_shrink_a_slab_below_this_batch():
    head = Head(1 << 40)
    a, b = _mk(head).refs(_labels(2))
    with _mk(head) as app:
        app.append_batch(np.full(30, a), np.arange(30), np.arange(30.0))
    head.delete(np.array([a]), 15, 100)  # n=15 in a 32-slot slab
    # Pool exactly full and mostly "abandoned": the next growth repacks first.
    head.pool_ts, head.pool_v = head.pool_ts[: head.pool_end], head.pool_v[: head.pool_end]
    head.wasted = head.pool_end
    with _mk(head) as app:
        refs = np.concatenate([np.full(10, a), np.full(100, b)])
        ts = np.concatenate([np.arange(15, 25), np.arange(100)])
        assert app.append_batch(refs, ts, ts.astype(np.float64)).appended == 110
    ss = HeadQuerier(head, 0, 10**6).select([])
    got = {ls.get("i"): ss.ts[x:y].tolist() for ls, x, y in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])}
    assert got == {"0": list(range(25)), "1": list(range(100))}
    assert (ss.values == ss.ts).all()


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"), st.lists(st.tuples(st.integers(0, 7), st.integers(0, 200)), max_size=60)
        ),
        st.tuples(st.just("delete"), st.integers(0, 7), st.integers(0, 200), st.integers(0, 50)),
        st.tuples(st.just("truncate"), st.integers(0, 200)),
        st.tuples(st.just("repack")),
    ),
    max_size=25,
)


@settings(max_examples=120, deadline=None)
@given(ops)
def test_tiny_pool_stress_matches_model(operations):
    """A 16-slot initial pool forces relocation, pool growth and repacks on every path."""
    head = Head(1 << 40, pool_size=16)
    refs = _mk(head).refs(_labels(8))
    model: dict[int, dict[int, float]] = {i: {} for i in range(8)}
    for op in operations:
        if op[0] == "append" and op[1]:
            idx = np.array([i for i, _ in op[1]])
            ts = np.array([t for _, t in op[1]], np.int64)
            with HeadAppender(head, None, lambda: 1 << 40) as app:  # everything admitted
                app.append_batch(refs[idx], ts, ts * 2.0 + idx)
            for i, t in zip(idx.tolist(), ts.tolist()):
                model[i].setdefault(t, t * 2.0 + i)
        elif op[0] == "delete":
            _, i, a, span = op
            head.delete(refs[i : i + 1], a, a + span)
            model[i] = {t: v for t, v in model[i].items() if not a <= t <= a + span}
        elif op[0] == "truncate":
            head.truncate(op[1])
            model = {i: {t: v for t, v in d.items() if t >= op[1]} for i, d in model.items()}
        elif op[0] == "repack":
            head.repack()
    ss = HeadQuerier(head, -(2**62), 2**62).select([])
    got = {
        int(ls.get("i")): list(zip(ss.ts[a:b].tolist(), ss.values[a:b].tolist()))
        for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])
    }
    assert got == {i: sorted(d.items()) for i, d in model.items() if d}


def test_gc_takes_series_of_open_appenders_and_their_commit_revives_them():
    head = Head(2 * H)
    app = _mk(head)
    refs = app.refs(_labels(3))
    _mk(head).rollback()
    assert head.truncate(0) == 3 and head.num_series == 0
    app.append_batch(refs, 1000, np.array([1.0, 2.0, 3.0]))
    app.commit()
    ss = HeadQuerier(head, 0, 5000).select([])
    assert sorted(ls.get("i") for ls in ss.labels) == ["0", "1", "2"]


def test_stale_ref_maps_to_the_series_recreated_under_a_new_ref():
    head = Head(2 * H)
    stale = _fill(head, _labels(2), [1000])
    head.truncate(2000)  # both GC'd
    fresh = _fill(head, _labels(2)[:1], [3000])  # i=0 comes back under a new ref
    assert fresh[0] != stale[0]
    with _mk(head) as app:
        assert app.append_batch(stale, 4000, np.array([7.0, 8.0])).appended == 2
    ss = HeadQuerier(head, 0, 10**6).select([])
    got = {ls.get("i"): ss.ts[a:b].tolist() for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])}
    assert got == {"0": [3000, 4000], "1": [4000]}


def test_select_hints_narrow_the_copy():
    from signalfire.storage import SelectHints

    head = Head(2 * H)
    _fill(head, _labels(2), [1000, 2000, 3000])
    q = HeadQuerier(head, 0, 10**6)
    ss = q.select([Matcher.equal("i", "0")], SelectHints(start=1500, end=2500))
    assert ss.ts.tolist() == [2000]
    ss = q.select([], SelectHints(start=2500, func="series"))
    assert len(ss) == 2 and ss.num_samples == 0
