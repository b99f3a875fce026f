"""FanoutStorage: a primary that must answer, secondaries whose failures become warnings.

Both sides are real tsdbs; a failing secondary is a real one behind :class:`Faulty`, which
raises in one chosen method, as a remote that is down would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.errors import QueryCanceledError, QueryTimeoutError, StorageError
from signalfire.labels import Labels, Matcher
from signalfire.storage import Querier, Queryable, SelectHints
from signalfire.storage.fanout import FanoutQuerier, FanoutStorage
from signalfire.storage.runs import RunSet
from signalfire.tsdb import DB, DBOptions, open_db
from signalfire.util.deadline import Deadline

NAME = Matcher.equal("__name__", "m")
METHODS = ["querier", "select", "label_names", "label_values"]


def _labels(job: str) -> Labels:
    return Labels.from_dict({"__name__": "m", "job": job})


def _value(job: str, ts: np.ndarray) -> np.ndarray:
    """The value every store holds for (job, ts): identical samples wherever they overlap."""
    return ts / 1000.0 + (ord(job[0]) % 7)


def _fill(db: DB, data: dict[str, np.ndarray]) -> None:
    for job, ts in data.items():
        with db.appender() as app:
            refs = app.refs([_labels(job)])
            app.append_batch(np.repeat(refs, len(ts)), ts, _value(job, ts))


@pytest.fixture
def stores(tmp_path: Path):
    """Open real tsdbs on demand; all closed at the end."""
    opened: list[DB] = []

    def make(data: dict[str, np.ndarray], name: str) -> DB:
        db = open_db(tmp_path / name, DBOptions())
        opened.append(db)
        _fill(db, data)
        return db

    yield make
    for db in opened:
        db.close()


class Faulty:
    """A real queryable whose querier raises ``error`` in the method ``where`` (``select``
    stands for both select methods).

    Records the queriers it opened (closed or not) and the deadlines selects received.
    """

    def __init__(self, inner: Queryable, where: str = "", error: BaseException | None = None) -> None:
        self.inner, self.where, self.error = inner, where, error
        self.opened: list[_FaultyQuerier] = []
        self.deadlines: list[Deadline | None] = []

    def raise_in(self, method: str) -> None:
        if method == self.where:
            assert self.error is not None
            raise self.error

    def querier(self, mint: int, maxt: int) -> Querier:
        self.raise_in("querier")
        q = _FaultyQuerier(self.inner.querier(mint, maxt), self)
        self.opened.append(q)
        return q


class _FaultyQuerier:
    def __init__(self, inner: Querier, owner: Faulty) -> None:
        self.inner, self.owner, self.closed = inner, owner, False

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline=None):
        self.owner.deadlines.append(deadline)
        self.owner.raise_in("select")
        return self.inner.select(matchers, hints)

    def select_runs(self, matchers: Sequence[Matcher], hints: SelectHints | None = None, deadline=None):
        self.owner.deadlines.append(deadline)
        self.owner.raise_in("select")
        return self.inner.select_runs(matchers, hints, deadline)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        self.owner.raise_in("label_names")
        return self.inner.label_names(matchers)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        self.owner.raise_in("label_values")
        return self.inner.label_values(name, matchers)

    def close(self) -> None:
        self.closed = True
        self.inner.close()
        self.owner.raise_in("close")


def _as_dict(ss: Any) -> dict[Labels, list[tuple[int, float]]]:
    ss.validate()
    out = {}
    for i in range(len(ss)):
        ls, ts, vs = ss.series(i)
        out[ls] = list(zip(ts.tolist(), vs.tolist()))
    return out


def _union(*datas: dict[str, np.ndarray]) -> dict[Labels, list[tuple[int, float]]]:
    """Slow model of the merged answer: per series, the sorted distinct timestamps."""
    jobs: dict[str, set[int]] = {}
    for d in datas:
        for job, ts in d.items():
            jobs.setdefault(job, set()).update(ts.tolist())
    out = {}
    for job in sorted(jobs):
        ts = np.array(sorted(jobs[job]), np.int64)
        out[_labels(job)] = list(zip(ts.tolist(), _value(job, ts).tolist()))
    return out


STEP = 15_000
A0 = np.arange(0, 40 * STEP, STEP, dtype=np.int64)
# Primary / secondary contents: disjoint in time, identical, partly overlapping (with
# interleaved timestamps), one side empty, and series only one side has.
CASES = {
    "disjoint_time": ({"a": A0}, {"a": A0 + 40 * STEP}),
    "identical": ({"a": A0, "b": A0}, {"a": A0, "b": A0}),
    "partial_overlap": ({"a": A0}, {"a": np.arange(20 * STEP, 60 * STEP, STEP // 3, dtype=np.int64)}),
    "secondary_empty": ({"a": A0}, {}),
    "primary_empty": ({}, {"a": A0}),
    "series_only_in_one": ({"a": A0}, {"b": A0[::2], "c": A0[5:9]}),
    "subset": ({"a": A0}, {"a": A0[10:20]}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_merges_primary_and_secondaries_one_sample_per_timestamp(stores, case: str) -> None:
    p_data, s_data = CASES[case]
    primary, secondary = stores(p_data, "p"), stores(s_data, "s")
    third = stores({k: v[::3] for k, v in s_data.items()}, "t")  # a second secondary, overlapping
    want = _union(p_data, s_data)
    fan = FanoutStorage(primary, [secondary, third])
    q = fan.querier(MIN_TIME, MAX_TIME)
    try:
        assert isinstance(q, FanoutQuerier)
        assert _as_dict(q.select([NAME])) == want
        assert _as_dict(q.select_runs([NAME]).to_series_set()) == want
        jobs = sorted({ls.get("job") for ls in want})
        assert q.label_values("job") == jobs
        assert q.label_names() == (["__name__", "job"] if want else [])
        assert not q.warnings
    finally:
        q.close()


def test_primary_wins_a_conflicting_value(stores) -> None:
    primary = stores({"a": A0}, "p")
    other = stores({}, "s")
    with other.appender() as app:
        refs = app.refs([_labels("a")])
        app.append_batch(np.repeat(refs, len(A0)), A0, np.full(len(A0), -1.0))
    q = FanoutStorage(primary, [other]).querier(MIN_TIME, MAX_TIME)
    try:
        assert _as_dict(q.select([NAME])) == _union({"a": A0})
    finally:
        q.close()


def test_no_secondaries_answers_as_the_primary(stores) -> None:
    primary = stores({"a": A0, "b": A0[:3]}, "p")
    fan = FanoutStorage(primary)
    q, p = fan.querier(0, 10 * STEP), primary.querier(0, 10 * STEP)
    try:
        assert _as_dict(q.select([NAME])) == _as_dict(p.select([NAME]))
        assert q.label_values("job") == p.label_values("job") == ["a", "b"]
    finally:
        q.close()
        p.close()


def test_time_range_reaches_every_store(stores) -> None:
    primary, secondary = stores({"a": A0}, "p"), stores({"a": A0 + 40 * STEP}, "s")
    mint, maxt = 30 * STEP, 50 * STEP
    q = FanoutStorage(primary, [secondary]).querier(mint, maxt)
    try:
        got = _as_dict(q.select([NAME]))
        ts = np.arange(mint, maxt + 1, STEP, dtype=np.int64)
        assert got == {_labels("a"): list(zip(ts.tolist(), _value("a", ts).tolist()))}
    finally:
        q.close()


ERRORS = [StorageError("remote read: 503 service unavailable"), OSError("connection refused"), KeyError("x")]


@pytest.mark.parametrize("where", METHODS)
@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_secondary_failure_is_a_warning_beside_the_primary_answer(
    stores, where: str, error: Exception
) -> None:
    p_data = {"a": A0}
    primary = stores(p_data, "p")
    healthy = stores({"b": A0}, "h")
    broken = Faulty(stores({"c": A0}, "s"), where, error)
    fan = FanoutStorage(primary, [broken, healthy])
    # Each call on a fresh querier, so each meets the failure (or not) on its own.
    answers, warnings = {}, {}
    for call in ("select", "label_names", "label_values"):
        q = fan.querier(MIN_TIME, MAX_TIME)
        try:
            if call == "select":
                ss = q.select([NAME])
                answers[call] = _as_dict(ss)
                assert ss.warnings.warning_list() == q.warnings.warning_list()
            else:
                answers[call] = q.label_names() if call == "label_names" else q.label_values("job")
        finally:
            q.close()
        warnings[call] = q.warnings.warning_list()
    # The failed store's part is left out of the call that failed, the rest is whole.
    lost = {"querier": ("select", "label_names", "label_values"), "select": ("select",)}.get(where, (where,))
    with_c = _union(p_data, {"b": A0, "c": A0})
    assert answers["select"] == (_union(p_data, {"b": A0}) if "select" in lost else with_c)
    assert answers["label_names"] == ["__name__", "job"]
    assert answers["label_values"] == (["a", "b"] if "label_values" in lost else ["a", "b", "c"])
    # Exactly the calls that lost it name the failure, with its cause, once.
    for call, ws in warnings.items():
        assert len(ws) == (call in lost)
        assert all(str(error) in w for w in ws)
    # A failed secondary's querier is still closed.
    assert all(x.closed for x in broken.opened)


def test_a_failed_secondary_is_not_asked_again_by_the_same_querier(stores) -> None:
    """One query sees all of a secondary's answers or, from its failure on, none: a remote
    that is down costs one failed request per query, not one per selector."""
    primary = stores({"a": A0}, "p")
    broken = Faulty(stores({"c": A0}, "s"), "select", StorageError("remote read: 503"))
    q = FanoutStorage(primary, [broken]).querier(MIN_TIME, MAX_TIME)
    try:
        first = q.select([NAME])
        broken.where = ""  # healthy again: still not asked by this querier
        assert q.label_values("job") == ["a"]
        again = q.select([NAME])
    finally:
        q.close()
    assert len(broken.deadlines) == 1  # one select reached it
    assert _as_dict(first) == _as_dict(again) == _union({"a": A0})
    assert again.warnings.warning_list() == ["select from secondary storage: remote read: 503"]
    assert broken.opened[0].closed


def _use_every_method(fan: FanoutStorage) -> None:
    """Open a querier, call each of its read methods, and close it whatever they raise."""
    q = fan.querier(MIN_TIME, MAX_TIME)
    try:
        q.select([NAME])
        q.label_names()
        q.label_values("job")
    finally:
        q.close()


@pytest.mark.parametrize("where", METHODS)
def test_primary_failure_fails_the_call(stores, where: str) -> None:
    error = StorageError("primary is broken")
    primary = Faulty(stores({"a": A0}, "p"), where, error)
    secondary = Faulty(stores({"b": A0}, "s"))
    fan = FanoutStorage(primary, [secondary])
    with pytest.raises(StorageError, match="primary is broken"):
        _use_every_method(fan)
    assert all(x.closed for x in primary.opened + secondary.opened)


@pytest.mark.parametrize("where", METHODS)
@pytest.mark.parametrize("error", [QueryTimeoutError("query timed out"), QueryCanceledError("canceled")])
def test_deadline_errors_of_a_secondary_propagate(stores, where: str, error: Exception) -> None:
    primary = Faulty(stores({"a": A0}, "p"))
    secondary = Faulty(stores({"b": A0}, "s"), where, error)
    fan = FanoutStorage(primary, [secondary])
    with pytest.raises(type(error)):
        _use_every_method(fan)
    assert all(x.closed for x in primary.opened + secondary.opened)
    assert len(primary.opened) == 1


def test_deadline_is_forwarded_to_every_store(stores) -> None:
    primary, secondary = Faulty(stores({"a": A0}, "p")), Faulty(stores({"b": A0}, "s"))
    deadline = Deadline.after(60)
    q = FanoutStorage(primary, [secondary]).querier(MIN_TIME, MAX_TIME)
    try:
        q.select([NAME], None, deadline)
        q.select_runs([NAME], SelectHints(start=0, end=STEP), deadline)
    finally:
        q.close()
    assert primary.deadlines == secondary.deadlines == [deadline, deadline]


def test_close_closes_all_even_when_one_fails(stores) -> None:
    primary = Faulty(stores({"a": A0}, "p"))
    failing = Faulty(stores({"b": A0}, "s"), "close", OSError("socket already gone"))
    last = Faulty(stores({"c": A0}, "t"))
    q = FanoutStorage(primary, [failing, last]).querier(MIN_TIME, MAX_TIME)
    q.close()  # a secondary's close error is a warning: the answer was already given
    assert all(x.closed for x in primary.opened + failing.opened + last.opened)
    assert any("socket already gone" in w for w in q.warnings.warning_list())

    broken_primary = Faulty(stores({"a": A0}, "p2"), "close", StorageError("cannot unmap"))
    other = Faulty(stores({"b": A0}, "s2"))
    q = FanoutStorage(broken_primary, [other]).querier(MIN_TIME, MAX_TIME)
    with pytest.raises(StorageError, match="cannot unmap"):
        q.close()
    assert all(x.closed for x in broken_primary.opened + other.opened)


def test_secondaries_added_later_are_read_by_new_queriers(stores) -> None:
    primary, secondary = stores({"a": A0}, "p"), stores({"b": A0}, "s")
    fan = FanoutStorage(primary)
    before = fan.querier(MIN_TIME, MAX_TIME)
    fan.add_secondary(secondary)
    after = fan.querier(MIN_TIME, MAX_TIME)
    try:
        assert before.label_values("job") == ["a"]
        assert after.label_values("job") == ["a", "b"]
    finally:
        before.close()
        after.close()


def test_every_querier_offers_select_runs(stores, tmp_path: Path) -> None:
    """select_runs is part of the Querier interface: it equals select for every querier."""
    db = stores({"a": A0, "b": A0[:7]}, "p")
    head_only = db.querier(MIN_TIME, MAX_TIME)
    fan = FanoutStorage(db, [stores({"a": A0 + 5}, "s")]).querier(MIN_TIME, MAX_TIME)
    try:
        for q in (head_only, fan):
            runs = q.select_runs([NAME])
            assert isinstance(runs, RunSet)
            assert _as_dict(runs.to_series_set()) == _as_dict(q.select([NAME]))
    finally:
        head_only.close()
        fan.close()
