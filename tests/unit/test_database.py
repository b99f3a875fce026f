"""The library facade: signalfire.open() and Database."""

from __future__ import annotations

import datetime as dt
import doctest
from pathlib import Path

import numpy as np
import pytest

import signalfire
import signalfire.database
from signalfire import Labels


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
