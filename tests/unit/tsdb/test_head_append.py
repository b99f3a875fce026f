"""Append classification: Prometheus's appendable rules, batch against a per-sample reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire._types import MIN_TIME
from signalfire.errors import BadDataError
from signalfire.labels import Labels, Matcher
from signalfire.storage import AppendStats
from signalfire.tsdb.head import Head
from signalfire.tsdb.head_append import HeadAppender
from signalfire.tsdb.head_read import HeadQuerier

H = 3_600_000


def _head_with(window=0):
    head = Head(chunk_range=2 * H)
    return head, (lambda: HeadAppender(head, None, lambda: window))


def _stats(**kw):
    return AppendStats(**kw)


def _append(mk, refs, ts, vals):
    with mk() as app:
        return app.append_batch(np.asarray(refs), np.asarray(ts), np.asarray(vals, np.float64))


def _series(head):
    q = HeadQuerier(head, MIN_TIME, 2**62)
    ss = q.select([Matcher.parse_type("=~", "__name__", ".+")])
    return {
        ls.get("i"): list(zip(ss.ts[a:b].tolist(), ss.values[a:b].tolist()))
        for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])
    }


def _refs(mk, n):
    app = mk()
    r = app.refs([Labels.from_strings("__name__", "m", "i", str(i)) for i in range(n)])
    app.rollback()
    return r


@pytest.mark.parametrize(
    ("window", "first", "second", "want"),
    [
        (0, [(100, 1.0)], [(200, 2.0)], _stats(appended=1)),
        (0, [(100, 1.0)], [(50, 2.0)], _stats(out_of_order=1)),
        (0, [(100, 1.0)], [(100, 1.0)], _stats(duplicate=1)),
        (0, [(100, 1.0)], [(100, 2.0)], _stats(duplicate_conflict=1)),
        (0, [(100, float("nan"))], [(100, float("nan"))], _stats(duplicate=1)),
        (0, [(2 * H, 1.0)], [(2 * H - H // 2, 2.0)], _stats(out_of_order=1)),
        (0, [(2 * H, 1.0)], [(H - 1, 2.0)], _stats(out_of_bounds=1)),
        (H, [(2 * H, 1.0)], [(H + 5, 2.0)], _stats(appended=1)),
        (H, [(2 * H, 1.0)], [(H - 1, 2.0)], _stats(too_old=1)),
        (H, [(100, 1.0), (300, 3.0)], [(100, 1.0)], _stats(duplicate=1)),
        (H, [(100, 1.0), (300, 3.0)], [(100, 9.0)], _stats(duplicate_conflict=1)),
        (H, [(100, 1.0), (300, 3.0)], [(200, 2.0)], _stats(appended=1)),
    ],
    ids=[
        "in-order",
        "out-of-order",
        "exact-duplicate",
        "conflict",
        "nan-duplicate",
        "ooo-within-half-range",
        "out-of-bounds",
        "ooo-window-admits",
        "too-old",
        "ooo-duplicate",
        "ooo-conflict",
        "ooo-insert",
    ],
)
def test_one_series_rules(window, first, second, want):
    _head, mk = _head_with(window)
    r = _refs(mk, 1)
    for t, v in first:
        _append(mk, r, [t], [v])
    assert _append(mk, r, [t for t, _ in second], [v for _, v in second]) == want


def test_within_batch_sequence_is_sequential():
    head, mk = _head_with()
    r = _refs(mk, 1)
    got = _append(mk, np.repeat(r, 6), [10, 5, 10, 10, 20, 20], [1, 2, 1, 3, 4, 4])
    assert got == _stats(appended=2, out_of_order=1, duplicate=2, duplicate_conflict=1)
    assert _series(head)["0"] == [(10, 1.0), (20, 4.0)]


def test_ooo_inserts_keep_series_sorted():
    head, mk = _head_with(window=10 * H)
    r = _refs(mk, 2)
    _append(mk, r, [1000, 1000], [1, 1])
    _append(mk, np.repeat(r, 3), [500, 700, 600, 900, 100, 1500], [5, 7, 6, 9, 1, 15])
    s = _series(head)
    assert s["0"] == [(500, 5.0), (600, 6.0), (700, 7.0), (1000, 1.0)]
    assert s["1"] == [(100, 1.0), (900, 9.0), (1000, 1.0), (1500, 15.0)]


def test_window_changes_at_runtime():
    head = Head(chunk_range=2 * H)
    window = [0]
    mk = lambda: HeadAppender(head, None, lambda: window[0])  # noqa: E731
    r = _refs(mk, 1)
    _append(mk, r, [10 * H], [1])
    assert _append(mk, r, [5 * H], [1]).out_of_bounds == 1
    window[0] = 6 * H
    assert _append(mk, r, [5 * H], [1]).appended == 1
    assert _append(mk, r, [3 * H], [1]).too_old == 1


def test_commit_rechecks_against_concurrent_commits():
    head, mk = _head_with()
    r = _refs(mk, 1)
    a, b = mk(), mk()
    assert a.append_batch(r, 100, np.array([1.0])).appended == 1
    assert b.append_batch(r, 100, np.array([2.0])).appended == 1
    a.commit()
    b.commit()  # now a conflict: dropped at commit, counted
    assert _series(head)["0"] == [(100, 1.0)]
    assert head.counters.duplicate_conflict == 1


def test_rollback_discards():
    head, mk = _head_with()
    r = _refs(mk, 1)
    with pytest.raises(RuntimeError), mk() as app:
        app.append_batch(r, 100, np.array([1.0]))
        raise RuntimeError("boom")
    assert head.num_samples == 0


def test_bad_input_raises_precise_errors():
    _head, mk = _head_with()
    r = _refs(mk, 2)
    app = mk()
    with pytest.raises(BadDataError, match="equal-length"):
        app.append_batch(r, np.array([1, 2, 3]), np.array([1.0, 2.0]))
    with pytest.raises(BadDataError, match="sample 1: unknown series ref 99"):
        app.append_batch(np.array([0, 99]), 1, np.array([1.0, 2.0]))
    with pytest.raises(BadDataError, match="empty label set"):
        app.refs([Labels(())])


def test_start_timestamps_are_stored():
    head, mk = _head_with()
    r = _refs(mk, 2)
    with mk() as app:
        app.append_batch(r, 100, np.array([1.0, 2.0]), st=np.array([50, 0]))
    with mk() as app:
        app.append_batch(r, 200, np.array([1.0, 2.0]))
    ss = HeadQuerier(head, 0, 1000).select([Matcher.equal("__name__", "m")])
    assert ss.st is not None and ss.st.tolist() == [50, 0, 0, 0]


# ---------------------------------------------------------------- reference comparison


def _reference(batches, window, chunk_range):
    """Per-sample, obviously sequential version of the rules (tests only)."""
    data: dict[int, dict[int, float]] = {}
    stats = AppendStats()
    for batch in batches:
        all_t = [t for d in data.values() for t in d]
        head_max = max(all_t) if all_t else None
        min_valid = MIN_TIME if head_max is None else head_max - chunk_range // 2
        floor = MIN_TIME if head_max is None else head_max - window
        for ref, t, v in batch:
            s = data.setdefault(ref, {})
            bits = np.float64(v).view(np.uint64)
            if t >= min_valid:
                if not s or t > max(s):
                    s[t] = v
                    stats.appended += 1
                    continue
                if t == max(s):
                    same = np.float64(s[t]).view(np.uint64) == bits
                    stats.duplicate += int(same)
                    stats.duplicate_conflict += int(not same)
                    continue
            if window > 0 and t >= floor:
                if t in s:
                    same = np.float64(s[t]).view(np.uint64) == bits
                    stats.duplicate += int(same)
                    stats.duplicate_conflict += int(not same)
                else:
                    s[t] = v
                    stats.appended += 1
            elif window > 0:
                stats.too_old += 1
            elif t < min_valid:
                stats.out_of_bounds += 1
            else:
                stats.out_of_order += 1
    return stats, {r: sorted(d.items()) for r, d in data.items() if d}


samples = st.tuples(st.integers(0, 3), st.integers(0, 40), st.sampled_from([0.0, 1.0, float("nan")]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(samples, max_size=25), max_size=5), st.sampled_from([0, 15, 1000]))
def test_batches_match_sequential_reference(batches, window):
    chunk_range = 20  # tiny, so out-of-bounds happens within the drawn timestamps
    head = Head(chunk_range=chunk_range)
    mk = lambda: HeadAppender(head, None, lambda: window)  # noqa: E731
    refs = _refs(mk, 4)
    got = AppendStats()
    for batch in batches:
        with mk() as app:
            if batch:
                r, t, v = zip(*batch)
                got.add(app.append_batch(refs[list(r)], np.array(t), np.array(v)))
    want, data = _reference(batches, window, chunk_range)
    assert got == want
    stored = _series(head)
    assert {int(k): [(t, v) for t, v in s] for k, s in stored.items()} == {
        r: [(t, v) for t, v in d] for r, d in data.items()
    } or _nan_equal(stored, data)


def _nan_equal(stored, data):
    a = {int(k): [(t, np.float64(v).view(np.uint64)) for t, v in s] for k, s in stored.items()}
    b = {r: [(t, np.float64(v).view(np.uint64)) for t, v in d] for r, d in data.items()}
    return a == b


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(samples, max_size=25), max_size=5))
def test_many_batches_in_one_appender_match_reference(batches):
    """Without an OOO window, staged batches are judged as if committed one by one."""
    chunk_range = 10**6  # no out-of-bounds: the reference's bound moves per batch
    head = Head(chunk_range=chunk_range)
    mk = lambda: HeadAppender(head, None, lambda: 0)  # noqa: E731
    refs = _refs(mk, 4)
    got = AppendStats()
    with mk() as app:
        for batch in batches:
            if batch:
                r, t, v = zip(*batch)
                got.add(app.append_batch(refs[list(r)], np.array(t), np.array(v)))
    want, data = _reference(batches, 0, chunk_range)
    assert got == want
    assert _nan_equal(_series(head), data)
