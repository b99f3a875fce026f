"""DB.select against a slow dictionary model over random appends, deletes, cuts and reopens.

Values are a function of (series, timestamp), so duplicates are always exact and the
answer does not depend on which copy of a sample (head, block, overlapping block) wins.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher, matches_all
from signalfire.tsdb import DBOptions, open_db

MIN = 60_000
#: Blocks fsync every file; tmpfs makes that free, so examples cost CPU, not disk waits.
SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
OPTS = DBOptions(
    fsync="never",
    min_block_duration=60 * MIN,
    max_block_duration=180 * MIN,
    retention_ms=0,
    out_of_order_time_window=10**12,
)
LABELS = [Labels.from_strings("__name__", f"m{i % 2}", "i", str(i), "g", "ab"[i % 3 == 0]) for i in range(6)]


def value(i: int, t: int) -> float:
    return float((i * 7919 + t // MIN * 104729) % 1000) / 7


appends = st.tuples(
    st.just("append"), st.lists(st.tuples(st.integers(0, 5), st.integers(0, 600)), min_size=1, max_size=40)
)
deletes = st.tuples(st.just("delete"), st.integers(0, 5), st.integers(0, 600), st.integers(0, 300))
#: In-order scrapes of every series after the newest sample: cuts then hold the older
#: samples and recent windows can lie after every cut sample.
scrapes = st.tuples(st.just("scrape"), st.integers(1, 20))
ops = st.lists(st.one_of(appends, scrapes, deletes, st.just(("compact",)), st.just(("reopen",))), max_size=12)
matchers = st.lists(
    st.one_of(
        st.builds(lambda v: Matcher.equal("i", str(v)), st.integers(0, 6)),
        st.builds(lambda v: Matcher.parse_type("!=", "g", v), st.sampled_from("abc")),
        st.builds(
            lambda p: Matcher.parse_type("=~", "__name__", p), st.sampled_from(["m0", "m.*", "x|m1", ".*"])
        ),
        st.builds(lambda p: Matcher.parse_type("!~", "i", p), st.sampled_from(["[0-2]", "5", ""])),
    ),
    min_size=1,
    max_size=3,
)


def _apply(db, model, op):
    if op[0] == "scrape":
        newest = max((max(m) for m in model.values() if m), default=0) // MIN
        op = ("append", [(i, newest + k) for k in range(1, op[1] + 1) for i in range(len(LABELS))])
    if op[0] == "append":
        rows = op[1]
        with db.appender() as app:
            refs = app.refs(LABELS)
            idx = np.array([i for i, _ in rows])
            ts = np.array([m * MIN for _, m in rows], np.int64)
            app.append_batch(refs[idx], ts, np.array([value(i, t) for i, t in zip(idx, ts)]))
        for i, t in zip(idx.tolist(), ts.tolist()):
            model[i].setdefault(t, value(i, t))
    elif op[0] == "delete":
        _, i, a, span = op
        db.delete([Matcher.equal("i", str(i))], a * MIN, (a + span) * MIN)
        for t in [t for t in model[i] if a * MIN <= t <= (a + span) * MIN]:
            del model[i][t]
    elif op[0] == "compact":
        db.compact()
    return db


#: Head cuts (samples compressed, newest kept raw): the default, and small ones so that
#: examples cut often, with no kept samples or more kept than cut, so windows end in the
#: slabs alone or reach into cut groups.
CUTS = [(32, None), (3, 0), (3, 5), (1, 2)]


@settings(max_examples=40, deadline=None)
@given(
    ops,
    st.lists(st.tuples(matchers, st.integers(-10, 610), st.integers(0, 700)), min_size=1, max_size=4),
    st.sampled_from(CUTS),
)
def test_select_matches_model(operations, queries, cut):
    with tempfile.TemporaryDirectory(dir=SHM) as path:
        model: dict[int, dict[int, float]] = {i: {} for i in range(len(LABELS))}
        db = open_db(path, OPTS)
        db.head.set_chunk_samples(*cut)
        try:
            for op in operations:
                if op[0] == "reopen":
                    db.close()
                    db = open_db(path, OPTS)
                    db.head.set_chunk_samples(*cut)
                else:
                    db = _apply(db, model, op)
            windows = [(ms, a * MIN, (a + span) * MIN) for ms, a, span in queries]
            windows.append(([Matcher.parse_type("=~", "i", ".+")], MIN_TIME, MAX_TIME))
            newest = max((max(m) for m in model.values() if m), default=0)
            for back in (0, 2 * MIN, 6 * MIN):  # recent windows, as instant queries read
                windows.append(([Matcher.equal("g", "b")], newest - back, newest))
            for ms, mint, maxt in windows:
                q = db.querier(mint, maxt)
                ss = q.select(ms)
                q.close()
                ss.validate()
                want = {}
                for i, ls in enumerate(LABELS):
                    pts = sorted((t, v) for t, v in model[i].items() if mint <= t <= maxt)
                    if pts and matches_all(ms, ls):
                        want[ls] = pts
                got = {
                    ls: list(zip(ss.ts[a:b].tolist(), ss.values[a:b].tolist()))
                    for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])
                }
                assert got == want
        finally:
            db.close()
