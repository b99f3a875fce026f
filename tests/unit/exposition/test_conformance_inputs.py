"""Upstream's exposition inputs (``../shared/conformance/exposition``) all parse, consistently."""

from __future__ import annotations

import numpy as np
import pytest

from shared_data import CONFORMANCE
from signalfire.exposition import lint, parse, parse_openmetrics, parse_text

EXPOSITION = CONFORMANCE / "exposition"


def read(name: str) -> bytes:
    return (EXPOSITION / name).read_bytes()


def test_all_files_present() -> None:
    names = sorted(p.name for p in EXPOSITION.iterdir())
    assert names == [
        "1histogram.om.txt",
        "alltypes.237mfs.nometa.prom.txt",
        "alltypes.237mfs.prom.txt",
        "alltypes.5mfs.om.txt",
    ]


def test_alltypes_prom() -> None:
    r = parse_text(read("alltypes.237mfs.prom.txt"))
    assert len(r.metadata) == 237
    types = [m.type for m in r.metadata.values()]
    counts = [types.count(t) for t in ("counter", "gauge", "histogram", "summary")]
    assert counts == [112, 97, 15, 13]
    assert len(r) == 1857
    assert r.labels[0].metric_name == "go_gc_cycles_automatic_gc_cycles_total"
    assert float(r.values[0]) == 190932.0
    assert not r.has_timestamp.any() and not r.start_timestamps.any()


def test_nometa_has_the_same_samples() -> None:
    meta = parse_text(read("alltypes.237mfs.prom.txt"))
    nometa = parse_text(read("alltypes.237mfs.nometa.prom.txt"))
    assert nometa.metadata == {}
    assert nometa.keys == meta.keys
    np.testing.assert_array_equal(nometa.values, meta.values)
    # Without TYPE lines nothing is normalised; with them only le/quantile change.
    for a, b in zip(meta.labels, nometa.labels):
        assert a.without("le", "quantile") == b.without("le", "quantile")


def test_alltypes_om() -> None:
    r = parse_openmetrics(read("alltypes.5mfs.om.txt"))
    assert set(r.metadata) == {
        "go_build_info",
        "promhttp_metric_handler_errors",
        "rpc_durations_histogram_seconds",
        "rpc_durations_seconds",
        "rpc_requests",
    }
    names = [lset.metric_name for lset in r.labels]
    assert not any(n.endswith("_created") for n in names)
    assert len(r) == 44
    assert len(r.exemplars) == 6
    ex = r.exemplars[0]
    assert r.labels[ex.sample_idx].get("le") == "-0.0002899999999999998"
    assert ex.labels.get("dummyID") == "17783" and ex.ts == 1726839814223
    i = names.index("rpc_requests_total")
    assert r.start_timestamps[i] == 1726839813016
    assert r.start_timestamps[names.index("go_build_info")] == 0
    first = names.index("rpc_durations_histogram_seconds_bucket")
    assert (r.start_timestamps[first : first + 22] == 1726839813016).all()


def test_1histogram_om() -> None:
    r = parse(read("1histogram.om.txt"), "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert len(r) == 42
    assert r.metadata["golang_manual_histogram_seconds"].type == "histogram"
    les = [lset.get("le") for lset in r.labels if lset.metric_name.endswith("_bucket")][:12]
    want = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
    assert les == want


def test_promtool_metrics_fixture() -> None:
    body = (CONFORMANCE / "promtool" / "metrics-test.prom").read_bytes()
    r = parse_text(body)
    assert len(r) == 27
    prefix = "prometheus_tsdb_compaction_chunk_size_bytes"
    assert sum(lset.metric_name.startswith(prefix) for lset in r.labels) == 15
    assert lint(body) == []


@pytest.mark.parametrize("name", ["alltypes.237mfs.prom.txt", "alltypes.237mfs.nometa.prom.txt"])
def test_text_files_fail_as_openmetrics(name: str) -> None:
    # No "# EOF" terminator where OpenMetrics needs one: the format matters.
    from signalfire.errors import ExpositionParseError

    with pytest.raises(ExpositionParseError):
        parse_openmetrics(read(name).replace(b"# EOF", b"# eof"))


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("alltypes.237mfs.prom.txt", "text/plain"),
        ("alltypes.5mfs.om.txt", "application/openmetrics-text"),
    ],
)
def test_label_cache_gives_the_same_batch(name: str, content_type: str) -> None:
    body = read(name)
    plain = parse(body, content_type)
    cache: dict[object, object] = {}
    first = parse(body, content_type, label_cache=cache)  # type: ignore[arg-type]
    second = parse(body, content_type, label_cache=cache)  # type: ignore[arg-type]
    assert first.labels == plain.labels == second.labels
    assert len(cache) >= len(set(plain.keys))  # _created lines are cached too
    # The second parse reuses the label sets built by the first.
    assert all(a is b for a, b in zip(first.labels, second.labels))
    np.testing.assert_array_equal(second.values, plain.values)
