"""Rendering: exact text, and parse(write(x)) == x round trips for both formats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_data import EXPOSITION
from signalfire._types import STALE_NAN
from signalfire.exposition import (
    MetricFamily,
    MetricMetadata,
    ParsedScrape,
    Sample,
    families_from_parsed,
    parse_openmetrics,
    parse_text,
    write_openmetrics,
    write_text,
)
from signalfire.labels import Labels
from signalfire.util.gofmt import format_go_g as format_go_float
from signalfire.util.gofmt import format_om_float


def lbl(name: str, **kv: str) -> Labels:
    return Labels.from_dict({"__name__": name, **kv})


def same(a: ParsedScrape, b: ParsedScrape, *, keys: bool = True) -> None:
    assert a.labels == b.labels
    if keys:
        assert a.keys == b.keys
    np.testing.assert_array_equal(a.values.view(np.uint64), b.values.view(np.uint64))
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.has_timestamp, b.has_timestamp)
    np.testing.assert_array_equal(a.start_timestamps, b.start_timestamps)
    # A "# TYPE x untyped" line says no more than no metadata at all.
    assert {k: m for k, m in a.metadata.items() if m != MetricMetadata()} == {
        k: m for k, m in b.metadata.items() if m != MetricMetadata()
    }
    assert a.exemplars == b.exemplars


@pytest.mark.parametrize(
    ("f", "go", "om"),
    [
        (1.0, "1", "1.0"),
        (0.0, "0", "0.0"),
        (-1.0, "-1", "-1.0"),
        (1e6, "1e+06", "1e+06"),
        (123456.0, "123456", "123456.0"),
        (1234567.0, "1.234567e+06", "1.234567e+06"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1e-05", "1e-05"),
        (2.5e-7, "2.5e-07", "2.5e-07"),
        (1e300, "1e+300", "1e+300"),
        (math.inf, "+Inf", "+Inf"),
        (-math.inf, "-Inf", "-Inf"),
        (math.nan, "NaN", "NaN"),
    ],
)
def test_go_float_format(f: float, go: str, om: str) -> None:
    assert format_go_float(f) == go
    assert format_om_float(f) == om


def test_write_text_exact() -> None:
    fams = [
        MetricFamily(
            "http_requests_total",
            "counter",
            "Requests\nwith \\ backslash.",
            samples=[
                Sample(lbl("http_requests_total", code="200", path='/a"b'), 3.0),
                Sample(lbl("http_requests_total", code="500", path="/"), 1.5, 1700000000000),
            ],
        ),
        MetricFamily("my.metric", "gauge", None, samples=[Sample(lbl("my.metric", **{"a.b": "c"}), 1e6)]),
        MetricFamily("up", samples=[Sample(lbl("up"), math.nan)]),
    ]
    assert write_text(fams).decode() == (
        "# HELP http_requests_total Requests\\nwith \\\\ backslash.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{code="200",path="/a\\"b"} 3\n'
        'http_requests_total{code="500",path="/"} 1.5 1700000000000\n'
        '# TYPE "my.metric" gauge\n'
        '{"my.metric","a.b"="c"} 1e+06\n'
        "# TYPE up untyped\n"
        "up NaN\n"
    )
    assert write_text(fams[1:2], escaping="underscores").decode() == (
        '# TYPE my_metric gauge\nmy_metric{a_b="c"} 1e+06\n'
    )


def test_write_openmetrics_exact() -> None:
    fams = [
        MetricFamily(
            "lat_seconds",
            "histogram",
            'Latency "quoted".',
            "seconds",
            samples=[
                Sample(
                    lbl("lat_seconds_bucket", le="1.0"), 2.0, 1005, (Labels.from_dict({"id": "x"}), 0.5, -1)
                ),
                Sample(lbl("lat_seconds_count"), 2.0),
            ],
        )
    ]
    assert write_openmetrics(fams).decode() == (
        '# HELP lat_seconds Latency \\"quoted\\".\n'
        "# TYPE lat_seconds histogram\n"
        "# UNIT lat_seconds seconds\n"
        'lat_seconds_bucket{le="1.0"} 2.0 1.005 # {id="x"} 0.5 -0.001\n'
        "lat_seconds_count 2.0\n"
        "# EOF\n"
    )


@pytest.mark.parametrize("name", ["alltypes.237mfs.prom.txt", "alltypes.237mfs.nometa.prom.txt"])
def test_text_round_trip_conformance(name: str) -> None:
    first = parse_text((EXPOSITION / name).read_bytes())
    again = parse_text(write_text(families_from_parsed(first)))
    same(first, again, keys=False)


@pytest.mark.parametrize("name", ["alltypes.5mfs.om.txt", "1histogram.om.txt"])
def test_openmetrics_round_trip_start_timestamps(name: str) -> None:
    # _created lines are consumed as start timestamps and written back as _created lines.
    first = parse_openmetrics((EXPOSITION / name).read_bytes())
    body = write_openmetrics(families_from_parsed(first))
    same(first, parse_openmetrics(body), keys=False)


def test_created_lines_follow_their_group() -> None:
    fam = MetricFamily(
        "c",
        "counter",
        samples=[
            Sample(lbl("c_total", a="1"), 1.0, start_timestamp=1500),
            Sample(lbl("c_total", a="2"), 2.0),
        ],
    )
    assert write_openmetrics([fam]).decode() == (
        '# TYPE c counter\nc_total{a="1"} 1.0\nc_created{a="1"} 1.500\nc_total{a="2"} 2.0\n# EOF\n'
    )


@pytest.mark.parametrize("name", ["alltypes.5mfs.om.txt", "1histogram.om.txt"])
def test_openmetrics_round_trip_conformance(name: str) -> None:
    body = (EXPOSITION / name).read_bytes()
    first = parse_openmetrics(body, keep_created_series=True)
    again = parse_openmetrics(write_openmetrics(families_from_parsed(first)), keep_created_series=True)
    same(first, again, keys=False)
    # The text format keeps labels and values (no exemplars, no start timestamps).
    text = parse_text(write_text(families_from_parsed(first)))
    assert text.labels == first.labels


def test_stale_marker_renders_as_nan() -> None:
    body = write_text([MetricFamily("x", samples=[Sample(lbl("x"), STALE_NAN)])])
    assert body == b"# TYPE x untyped\nx NaN\n"


_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda s: s != "__name__")
_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_ts = st.one_of(st.none(), st.integers(0, 2**50))  # the text format has no negative timestamps


@st.composite
def families(draw: st.DrawFn) -> list[MetricFamily]:
    out = []
    for i in range(draw(st.integers(0, 4))):
        name = f"m{i}_" + draw(_names)
        utf8 = draw(st.booleans())
        if utf8:
            name += ".x"
        samples = []
        for _ in range(draw(st.integers(0, 4))):
            kv = draw(st.dictionaries(_names, _values, max_size=3))
            if draw(st.booleans()):
                kv["a.b"] = draw(_values)
            samples.append(Sample(lbl(name, **kv), draw(_floats), draw(_ts)))
        help_ = draw(st.one_of(st.none(), _values))
        out.append(MetricFamily(name, draw(st.sampled_from(["gauge", "unknown"])), help_, samples=samples))
    return out


@settings(max_examples=60, deadline=None)
@given(families())
def test_round_trip_property(fams: list[MetricFamily]) -> None:
    for write, parse in ((write_text, parse_text), (write_openmetrics, parse_openmetrics)):
        first = parse(write(fams))
        again = parse(write(families_from_parsed(first)))
        same(first, again)
        want = [(s.labels, s.value, s.timestamp) for fam in fams for s in fam.samples]
        got = [
            (
                first.labels[i],
                float(first.values[i]),
                int(first.timestamps[i]) if first.has_timestamp[i] else None,
            )
            for i in range(len(first))
        ]
        assert len(got) == len(want)
        for (gl, gv, gt), (wl, wv, wt) in zip(got, want):
            assert gl == wl and gt == wt
            assert gv == wv or (math.isnan(gv) and math.isnan(wv))
