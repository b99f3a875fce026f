"""Every output of the real ``prometheus_client`` parses, with the values it exposed."""

from __future__ import annotations

import math

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_om

from shared_data import EXPOSITION
from signalfire.exposition import ParsedScrape, parse, parse_openmetrics, parse_text


@pytest.fixture
def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    c = Counter("requests", "Requests served.", ["method", "code"], registry=reg)
    c.labels("get", "200").inc(3)
    c.labels('po"st\n\\', "500").inc(0.5)
    Gauge("temperature_celsius", "Temp.", registry=reg, unit="celsius").set(-2.5)
    h = Histogram("latency_seconds", "Latency.", ["path"], registry=reg, buckets=(0.1, 1, 5))
    h.labels("/").observe(0.5)
    h.labels("/x").observe(7)
    s = Summary("size_bytes", "Sizes.", ["kind"], registry=reg)
    s.labels("a").observe(10)
    s.labels("a").observe(4)
    Info("build", "Build info.", registry=reg).info({"version": "1.2", "revision": "abc"})
    Enum("state", "State.", states=["starting", "running"], registry=reg).state("running")
    Gauge("not_a_number", "NaN gauge.", registry=reg).set(float("nan"))
    Gauge("big", "Big gauge.", registry=reg).set(1e300)
    Gauge("my.metric", "UTF-8 name.", ["a.b"], registry=reg).labels("x").set(1)
    return reg


def value(r: ParsedScrape, series: str) -> float:
    for i, lset in enumerate(r.labels):
        if str(lset) == series:
            return float(r.values[i])
    raise KeyError(series, [str(x) for x in r.labels])


def check_common(r: ParsedScrape) -> None:
    assert value(r, 'requests_total{code="200", method="get"}') == 3.0
    assert value(r, 'requests_total{code="500", method="po\\"st\\n\\\\"}') == 0.5
    assert value(r, "temperature_celsius") == -2.5
    assert value(r, 'latency_seconds_bucket{le="1.0", path="/"}') == 1.0
    assert value(r, 'latency_seconds_bucket{le="5.0", path="/x"}') == 0.0
    assert value(r, 'latency_seconds_bucket{le="+Inf", path="/x"}') == 1.0
    assert value(r, 'latency_seconds_sum{path="/x"}') == 7.0
    assert value(r, 'size_bytes_count{kind="a"}') == 2.0
    assert value(r, 'size_bytes_sum{kind="a"}') == 14.0
    assert value(r, 'build_info{revision="abc", version="1.2"}') == 1.0
    assert value(r, 'state{state="running"}') == 1.0
    assert value(r, 'state{state="starting"}') == 0.0
    assert math.isnan(value(r, "not_a_number"))
    assert value(r, "big") == 1e300


def test_text_exposition(registry: CollectorRegistry) -> None:
    r = parse_text(generate_latest(registry))
    check_common(r)
    assert value(r, 'my_metric{a_b="x"}') == 1.0
    # The text format carries _created as ordinary samples (Prometheus has no text start timestamps).
    assert any(lset.metric_name == "requests_created" for lset in r.labels)
    assert not r.start_timestamps.any()
    assert r.metadata["latency_seconds"].type == "histogram"
    assert r.metadata["requests_total"].type == "counter"


def test_openmetrics_exposition(registry: CollectorRegistry) -> None:
    body = generate_latest_om(registry)
    r = parse(body, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    check_common(r)
    m = r.metadata
    assert (m["requests"].type, m["build"].type, m["state"].type) == ("counter", "info", "stateset")
    assert m["temperature_celsius"].unit == "celsius"
    assert not any(lset.metric_name.endswith("_created") for lset in r.labels)
    # Counters, histograms and summaries carry the _created time as start timestamp.
    names = [lset.metric_name for lset in r.labels]
    for i, name in enumerate(names):
        want = name.startswith(("requests", "latency_seconds", "size_bytes"))
        assert bool(r.start_timestamps[i] > 1_500_000_000_000) == want, name


@pytest.mark.parametrize("escaping", ["allow-utf-8", "underscores", "dots", "values"])
def test_escaping_schemes(registry: CollectorRegistry, escaping: str) -> None:
    want = {
        "allow-utf-8": '{"my.metric", "a.b"="x"}',
        "underscores": 'my_metric{a_b="x"}',
        "dots": 'my_dot_metric{a_dot_b="x"}',
        "values": 'U__my_2e_metric{U__a_2e_b="x"}',
    }[escaping]
    r = parse_openmetrics(generate_latest_om(registry, escaping=escaping))
    if escaping in ("allow-utf-8", "underscores"):  # dots/values rewrite legacy names too
        check_common(r)
    assert value(r, want) == 1.0
    t = parse_text(generate_latest(registry, escaping=escaping))
    assert value(t, want) == 1.0


def _norm(name: str, labels: dict[str, str], value: float) -> tuple[str, tuple[tuple[str, str], ...], str]:
    from signalfire.exposition._lex import normalize_float_label

    d = {k: normalize_float_label(v) if k in ("le", "quantile") else v for k, v in labels.items()}
    return name, tuple(sorted(d.items())), repr(float(value))  # repr: NaN equals NaN


@pytest.mark.parametrize(
    ("name", "openmetrics"),
    [
        ("alltypes.237mfs.prom.txt", False),
        ("alltypes.237mfs.nometa.prom.txt", False),
        ("1histogram.om.txt", True),
    ],
)
def test_same_samples_as_prometheus_client_parser(name: str, openmetrics: bool) -> None:
    """prometheus_client's own parsers are an independent reference for names, labels and values."""

    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
    from prometheus_client.parser import text_string_to_metric_families

    body = (EXPOSITION / name).read_bytes()
    ref = om_families if openmetrics else text_string_to_metric_families
    want = sorted(_norm(s.name, s.labels, s.value) for fam in ref(body.decode()) for s in fam.samples)
    r = parse_openmetrics(body, keep_created_series=True) if openmetrics else parse_text(body)
    got = sorted(
        _norm(lset.metric_name, {k: v for k, v in lset if k != "__name__"}, float(v))
        for lset, v in zip(r.labels, r.values)
    )
    assert got == want
