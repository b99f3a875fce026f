"""The library facade: signalfire.open() and Database."""

from __future__ import annotations

import datetime as dt
import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import signalfire
import signalfire.database
from signalfire import Labels
from signalfire.errors import QueryTimeoutError, StorageError


def test_doctests() -> None:
    res = doctest.testmod(signalfire.database, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


def test_append_select_query_roundtrip(tmp_path: Path) -> None:
    with signalfire.open(tmp_path / "db") as db:
        ts = np.arange(0, 600_000, 15_000, dtype=np.int64)
        series = [{"__name__": "req_total", "job": "a"}] * len(ts) + [
            {"__name__": "req_total", "job": "b"}
        ] * len(ts)
        db.append(series, np.concatenate([ts, ts]), np.concatenate([ts / 1000.0, 2 * ts / 1000.0]))
        ss = db.select('req_total{job="b"}')
        assert [str(s) for s in ss.labels] == ['req_total{job="b"}']
        np.testing.assert_array_equal(ss.ts, ts)
        assert db.label_values("job") == ["a", "b"]
        assert "__name__" in db.label_names()
        r = db.query("sum(rate(req_total[1m]))", dt.datetime(1970, 1, 1, 0, 5, tzinfo=dt.UTC))
        assert r.result_type == "vector"
        assert r.values[0, 0] == pytest.approx(3.0)
        rr = db.query_range("req_total", 60, 120, dt.timedelta(seconds=30))
        assert rr.values.shape == (2, 3)
        assert rr.to_json()["resultType"] == "matrix"
        df = db.select_df("req_total")
        assert df.shape == (len(ts), 2)


def test_two_databases_share_no_state(tmp_path: Path) -> None:
    a = signalfire.open(tmp_path / "a")
    b = signalfire.open(tmp_path / "b")
    try:
        a.append(Labels.from_dict({"__name__": "only_in_a"}), 1000, 1.0)
        assert b.label_values("__name__") == []
        assert a.label_values("__name__") == ["only_in_a"]
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- secondary storage (fanout)


class _DownRemote:
    """A real database that fails as a remote that is down would: ``where`` names the
    call that raises (``querier``, ``select`` for either select method, ``label_values``),
    and ``only`` limits select failures to selections of that metric name."""

    def __init__(self, db: Any, where: str, error: Exception, only: str = "") -> None:
        self.db, self.where, self.error, self.only = db, where, error, only

    def querier(self, mint: int, maxt: int) -> _DownRemote:
        if self.where == "querier":
            raise self.error
        self.q = self.db.querier(mint, maxt)
        return self

    def select(self, matchers, hints=None, deadline=None):
        if self.where == "select" and (not self.only or any(m.value == self.only for m in matchers)):
            raise self.error
        return self.q.select(matchers, hints, deadline)

    def select_runs(self, matchers, hints=None, deadline=None):
        from signalfire.storage.runs import RunSet

        return RunSet.of(self.select(matchers, hints, deadline))

    def label_names(self, matchers=()):
        return self.q.label_names(matchers)

    def label_values(self, name, matchers=()):
        if self.where == "label_values":
            raise self.error
        return self.q.label_values(name, matchers)

    def close(self) -> None:
        self.q.close()


def _up(db: signalfire.Database, job: str, ts: np.ndarray) -> None:
    db.append({"__name__": "up", "job": job}, ts, np.ones(len(ts)))


def test_secondary_database_is_queried_with_the_primary(tmp_path: Path) -> None:
    ts = np.arange(0, 600_000, 15_000, dtype=np.int64)
    with signalfire.open(tmp_path / "p") as db, signalfire.open(tmp_path / "s") as remote:
        _up(db, "local", ts)
        _up(remote, "local", ts[10:30])  # the same samples again: kept once
        _up(remote, "remote", ts)
        db.add_secondary(remote)
        r = db.query("count_over_time(up[10m])", 600)  # (0, 600 s]: 39 samples each
        assert {ls.get("job"): v for ls, v in zip(r.labels, r.values[:, 0].tolist())} == {
            "local": 39.0,
            "remote": 39.0,
        }
        assert r.warnings == []
        ss = db.select("up")
        assert [ls.get("job") for ls in ss.labels] == ["local", "remote"]
        assert ss.offsets.tolist() == [0, 40, 80]
        assert db.label_values("job") == ["local", "remote"]
        # Writes, deletes and compaction are the primary's alone.
        db.delete('up{job="remote"}')
        assert db.label_values("job") == ["local", "remote"]


@pytest.mark.parametrize("where", ["querier", "select"])
def test_secondary_failure_is_a_query_warning(tmp_path: Path, where: str) -> None:
    ts = np.arange(0, 600_000, 15_000, dtype=np.int64)
    with signalfire.open(tmp_path / "p") as db, signalfire.open(tmp_path / "s") as remote:
        _up(db, "local", ts)
        _up(remote, "remote", ts)
        db.add_secondary(_DownRemote(remote, where, OSError("connection refused")))
        for r in (db.query("sum(up)", 300), db.query_range("sum(up)", 0, 600, 60)):
            assert r.values[0].tolist() == [1.0] * r.values.shape[1]
            assert len(r.warnings) == 1 and "connection refused" in r.warnings[0]
        ss = db.select("up")
        assert [ls.get("job") for ls in ss.labels] == ["local"]
        assert "connection refused" in ss.warnings.warning_list()[0]


def test_secondary_failure_in_an_info_selection_is_a_query_warning(tmp_path: Path) -> None:
    """info() selects target_info itself: that selection's warnings reach the result too."""
    ts = np.arange(0, 600_000, 15_000, dtype=np.int64)
    with (
        signalfire.open(tmp_path / "p", features=frozenset({"promql-experimental-functions"})) as db,
        signalfire.open(tmp_path / "s") as remote,
    ):
        db.append({"__name__": "up", "job": "a", "instance": "i"}, ts, np.ones(len(ts)))
        info = {"__name__": "target_info", "job": "a", "instance": "i", "k8s_cluster": "c1"}
        db.append(info, ts, np.ones(len(ts)))
        db.add_secondary(_DownRemote(remote, "select", StorageError("remote read: 503"), only="target_info"))
        r = db.query("info(up)", 300)
        assert [ls.get("k8s_cluster") for ls in r.labels] == ["c1"]
        assert len(r.warnings) == 1 and "remote read: 503" in r.warnings[0]


def test_secondary_failure_in_label_values_is_a_python_warning(tmp_path: Path) -> None:
    with signalfire.open(tmp_path / "p") as db, signalfire.open(tmp_path / "s") as remote:
        _up(db, "local", np.array([1000]))
        _up(remote, "remote", np.array([1000]))
        db.add_secondary(_DownRemote(remote, "label_values", OSError("connection refused")))
        with pytest.warns(RuntimeWarning, match="connection refused"):
            assert db.label_values("job") == ["local"]
        assert db.label_names() == ["__name__", "job"]  # label names still read the secondary


@pytest.mark.parametrize("error", [QueryTimeoutError("query timed out"), StorageError("disk gone")])
def test_deadline_and_primary_errors_fail_the_query(tmp_path: Path, error: Exception) -> None:
    """A deadline error is the query's even when a secondary meets it; the primary's own
    failure fails the query."""
    with signalfire.open(tmp_path / "p") as db, signalfire.open(tmp_path / "s") as remote:
        _up(db, "local", np.array([1000]))
        _up(remote, "remote", np.array([1000]))
        if isinstance(error, QueryTimeoutError):
            db.add_secondary(_DownRemote(remote, "select", error))
        else:
            db.storage.primary = _DownRemote(db.tsdb, "select", error)
        with pytest.raises(type(error)):
            db.query("up", 1)


def test_unknown_option_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        signalfire.open(tmp_path, no_such_option=1)


def test_reopen_keeps_data(tmp_path: Path) -> None:
    with signalfire.open(tmp_path) as db:
        db.append({"__name__": "x"}, [1000, 2000], [1.5, float("-inf")])
    with signalfire.open(tmp_path) as db:
        ss = db.select("x")
        assert ss.values.tolist() == [1.5, float("-inf")]


def test_two_databases_have_independent_self_metrics(tmp_path: Path) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from signalfire.exposition import parse_openmetrics, parse_text
    from signalfire.metrics import Registry

    shared = Registry()
    with (
        signalfire.open(tmp_path / "a") as a,
        signalfire.open(tmp_path / "b") as b,
        signalfire.open(tmp_path / "c", registry=shared) as c,
    ):
        assert a.metrics is not b.metrics and c.metrics is shared
        a.append({"__name__": "x", "i": "1"}, ts=[1000, 2000], values=[1.0, 2.0])
        c.append([{"__name__": "x", "i": str(i)} for i in range(3)], ts=1000, values=[1.0, 2.0, 3.0])
        appended = "signalfire_tsdb_head_samples_appended_total"
        assert a.metrics.sample_value(appended, {"type": "float"}) == 2
        assert b.metrics.sample_value(appended, {"type": "float"}) == 0
        assert shared.sample_value("signalfire_tsdb_head_series") == 3
        text = parse_text(a.render_metrics())
        om = parse_openmetrics(a.render_metrics(openmetrics=True))
        assert [str(x) for x in text.labels] == [str(x) for x in om.labels]
        assert 'signalfire_tsdb_head_samples_appended_total{type="float"}' in [str(x) for x in text.labels]
        fams = {
            f.name: f.type
            for f in text_string_to_metric_families(a.render_metrics(openmetrics=True).decode())
        }
        assert fams["signalfire_tsdb_head_samples_appended"] == "counter"
        assert fams["signalfire_tsdb_compaction_duration_seconds"] == "histogram"
