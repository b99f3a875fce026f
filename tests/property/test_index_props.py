"""Property tests: postings and block select against the slow reference (tests/reference)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference import tsdb_select as ref
from signalfire.labels import Labels, Matcher, MatchType
from signalfire.storage import series_set_from_lists
from signalfire.tsdb.block import Block, write_block
from signalfire.tsdb.index.postings import MemPostings, select_postings

NAMES = ["__name__", "a", "b", "c"]
VALUES = ["", "x", "y", "xy", "foo", "\n", "é"]
PATTERNS = ["", "x", "x|y", ".*", ".+", "x.*", "(x|)", "f.o", ".", "é|\n", "[a-z]+"]

# Plain tuples mapped to objects: st.builds would introspect the classes' annotations.
label_sets = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES[1:]), min_size=1, max_size=4).map(
    Labels.from_dict
)
matchers = st.tuples(
    st.sampled_from(list(MatchType)),
    st.sampled_from([*NAMES, "zz"]),
    st.one_of(st.sampled_from(VALUES), st.sampled_from(PATTERNS)),
).map(lambda t: Matcher(*t))


def _unique(labels: list[Labels]) -> list[Labels]:
    return sorted(set(labels))


@settings(max_examples=300, deadline=None)
@given(st.lists(label_sets, max_size=25).map(_unique), st.lists(matchers, max_size=3))
def test_select_postings_matches_reference(labels: list[Labels], ms: list[Matcher]) -> None:
    got = select_postings(MemPostings(labels), ms).tolist()
    want = [i for i, ls in enumerate(labels) if ref.matches(ms, ls)]
    assert got == want


@st.composite
def rows(draw: st.DrawFn) -> list[ref.Row]:
    labels = draw(st.lists(label_sets, min_size=0, max_size=12).map(_unique))
    out = []
    for ls in labels:
        n = draw(st.integers(1, 40))
        start = draw(st.integers(0, 3 * 3_600_000))
        step = draw(st.sampled_from([1, 15_000, 600_000]))
        ts = (start + step * np.arange(n)).tolist()
        kind = draw(st.sampled_from(["int", "float"]))
        vals = (np.arange(n) * 3.0 if kind == "int" else np.random.default_rng(n).normal(size=n)).tolist()
        out.append((ls, ts, vals))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows(),
    st.lists(matchers, max_size=2),
    st.integers(0, 4 * 3_600_000),
    st.integers(0, 4 * 3_600_000),
    st.lists(
        st.tuples(st.integers(0, 11), st.integers(0, 4 * 3_600_000), st.integers(0, 3_600_000)), max_size=3
    ),
)
def test_block_select_matches_reference(
    data: list[ref.Row], ms: list[Matcher], mint: int, span: int, deletes: list[tuple[int, int, int]]
) -> None:
    ss = series_set_from_lists(
        [r[0] for r in data], [np.array(r[1], np.int64) for r in data], [np.array(r[2]) for r in data]
    )
    with tempfile.TemporaryDirectory() as d:
        meta = write_block(Path(d), ss, min_time=0, max_time=8 * 3_600_000)
        with Block.open(Path(d) / meta.ulid) as b:
            deleted = []
            for k, lo, width in deletes:
                if data:
                    ls = sorted(r[0] for r in data)[k % len(data)]
                    dms = [Matcher.equal(n, v) for n, v in ls]
                    b.delete(dms, lo, lo + width)
                    # Equality matchers also select series with more labels than ``ls``.
                    deleted.extend((r[0], lo, lo + width) for r in data if ref.matches(dms, r[0]))
            got = b.querier(mint, mint + span).select(ms)
            want = ref.select(data, ms, mint, mint + span, deleted)
            assert list(got.labels) == [w[0] for w in want]
            for i, (_, wt, wv) in enumerate(want):
                _, t, v = got.series(i)
                assert t.tolist() == wt
                assert v.view(np.uint64).tolist() == ref.bits(wv)
            q = b.querier(mint, mint + span)
            want_names = sorted({n for ls, _, _ in data if ref.matches(ms, ls) for n, _ in ls})
            if ms:
                assert q.label_names(ms) == want_names
            vals = sorted({ls.get("a") for ls, _, _ in data if ref.matches(ms, ls) and ls.has("a")})
            assert q.label_values("a", ms) == vals


equal_matchers = st.tuples(st.sampled_from([*NAMES, "zz"]), st.sampled_from(VALUES)).map(
    lambda t: Matcher(MatchType.EQUAL, *t)
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(label_sets, max_size=25).map(_unique),
    st.sets(st.integers(0, 24), max_size=8),
    st.lists(st.lists(equal_matchers | matchers, max_size=3), min_size=1, max_size=3),
)
def test_head_postings_match_reference_across_removals(
    labels: list[Labels], dead: set[int], queries: list[list[Matcher]]
) -> None:
    """The head's postings answer sets of equality matchers from cached arrays and the
    rest through ``select_postings``: both agree with the reference, also after series
    are removed and added again (the cached arrays must follow)."""
    from signalfire.tsdb.head_postings import HeadPostings

    hp = HeadPostings()
    for i, ls in enumerate(labels):
        hp.add(i, ls)
    live = set(range(len(labels)))
    for step in range(3):
        for ms in queries:
            alive = np.array(sorted(live), np.int64)
            got = hp.select(ms, lambda: alive).tolist()  # noqa: B023 (called right here)
            want = [i for i in sorted(live) if ref.matches(ms, labels[i])]
            assert sorted(got) == want, (step, ms)
            if ms and all(m.type is MatchType.EQUAL and m.value for m in ms):
                assert got == want  # the equality path answers in ref order
        if step == 0:
            gone = dead & live
            hp.remove(gone, [labels[i] for i in sorted(gone)])
            live -= gone
        else:
            for i in sorted(dead & set(range(len(labels))) - live):
                hp.add(i, labels[i])
                live.add(i)
