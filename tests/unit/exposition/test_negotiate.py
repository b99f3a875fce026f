"""Accept / Content-Type handling, format choice and escaping schemes."""

from __future__ import annotations

import pytest

from signalfire.errors import BadDataError
from signalfire.exposition import (
    OPENMETRICS,
    TEXT,
    Format,
    escape_name,
    negotiate,
    parse_accept,
    parse_media_type,
    scrape_accept_header,
    scrape_format,
    unescape_name,
)


def test_parse_media_type() -> None:
    assert parse_media_type("Text/Plain; version=0.0.4; charset=utf-8") == (
        "text/plain",
        {"version": "0.0.4", "charset": "utf-8"},
    )
    assert parse_media_type("") == ("", {})


def test_parse_accept_orders_by_q() -> None:
    got = parse_accept("text/plain;q=0.2, application/openmetrics-text;version=1.0.0;q=0.5, */*;q=0.1")
    assert [m for m, _, _ in got] == ["application/openmetrics-text", "text/plain", "*/*"]
    assert parse_accept("a/b;q=0, c/d") == [("c/d", {}, 1.0)]


@pytest.mark.parametrize(
    ("accept", "want"),
    [
        ("", Format(TEXT, "0.0.4", "underscores")),
        ("*/*", Format(TEXT, "0.0.4", "underscores")),
        ("text/plain", Format(TEXT, "0.0.4", "underscores")),
        ("text/plain;version=1.0.0;escaping=allow-utf-8", Format(TEXT, "1.0.0", "allow-utf-8")),
        ("text/plain;version=9.9.9", Format(TEXT, "0.0.4", "underscores")),
        ("application/openmetrics-text;version=1.0.0;escaping=dots", Format(OPENMETRICS, "1.0.0", "dots")),
        ("application/openmetrics-text;version=0.0.1", Format(OPENMETRICS, "0.0.1", "underscores")),
        ("application/openmetrics-text;escaping=bogus", Format(OPENMETRICS, "1.0.0", "underscores")),
        (
            "application/openmetrics-text;version=1.0.0;escaping=values;q=0.5,text/plain;version=0.0.4;q=0.9",
            Format(TEXT, "0.0.4", "underscores"),
        ),
        (scrape_accept_header(), Format(OPENMETRICS, "1.0.0", "allow-utf-8")),
    ],
)
def test_negotiate(accept: str, want: Format) -> None:
    assert negotiate(accept) == want


def test_negotiate_without_openmetrics() -> None:
    assert negotiate("application/openmetrics-text", openmetrics=False).kind == TEXT


def test_content_type_strings() -> None:
    assert Format(TEXT).content_type == "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    assert Format(OPENMETRICS, "1.0.0", "allow-utf-8").content_type == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    )


def test_scrape_accept_header() -> None:
    assert scrape_accept_header(("OpenMetricsText1.0.0", "PrometheusText0.0.4")) == (
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    )


def test_scrape_format() -> None:
    assert scrape_format("application/openmetrics-text; version=1.0.0") == OPENMETRICS
    assert scrape_format("text/plain; version=0.0.4") == TEXT
    assert scrape_format("", fallback="PrometheusText0.0.4") == TEXT
    assert scrape_format("application/json", fallback="OpenMetricsText1.0.0") == OPENMETRICS
    with pytest.raises(BadDataError, match="fallback_scrape_protocol"):
        scrape_format("")


@pytest.mark.parametrize(
    ("name", "scheme", "want"),
    [
        ("my.metric", "allow-utf-8", "my.metric"),
        ("my.metric", "underscores", "my_metric"),
        ("0ab.c", "underscores", "_ab_c"),
        ("legacy_name", "underscores", "legacy_name"),
        ("my.metric_x", "dots", "my_dot_metric__x"),
        ("legacy_name", "dots", "legacy__name"),
        ("a-b", "dots", "a__b"),
        ("my.metric", "values", "U__my_2e_metric"),
        ("legacy_name", "values", "legacy_name"),
        ("mü_x", "values", "U__m_fc___x"),
        ("", "values", ""),
    ],
)
def test_escape_name(name: str, scheme: str, want: str) -> None:
    assert escape_name(name, scheme) == want
    if scheme == "values" or (scheme == "dots" and "-" not in name):
        assert unescape_name(want, scheme) == name


def test_escape_name_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown escaping scheme"):
        escape_name("a.b", "nope")
