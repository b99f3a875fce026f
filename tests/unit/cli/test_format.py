"""The Go formatters promtool's output is made of, case by case."""

from __future__ import annotations

import math

import pytest

from signalfire.cli._format import (
    base2_bytes,
    go_duration,
    go_float,
    go_labels,
    go_labels_condensed,
    go_time_utc,
    parse_duration_ms,
    tabwrite,
)
from signalfire.labels import Labels


@pytest.mark.parametrize(
    ("v", "want"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (17179869184.0, "1.7179869184e+10"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-300, "1e-300"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_go_float(v: float, want: str) -> None:
    assert go_float(v) == want


@pytest.mark.parametrize(
    ("ms", "want"),
    [
        (0, "0s"),
        (500, "500ms"),
        (1000, "1s"),
        (90_500, "1m30.5s"),
        (7_200_000, "2h0m0s"),
        (7_199_999, "1h59m59.999s"),
        (1_795_272, "29m55.272s"),
        (-1500, "-1.5s"),
    ],
)
def test_go_duration(ms: int, want: str) -> None:
    assert go_duration(ms) == want


@pytest.mark.parametrize(
    ("n", "want"),
    [(0, "0B"), (100, "100B"), (1536, "1KiB512B"), (145965, "142KiB557B"), (5 * 2**20 + 3, "5MiB3B")],
)
def test_base2_bytes(n: int, want: str) -> None:
    assert base2_bytes(n) == want


def test_time_and_labels() -> None:
    assert go_time_utc(1795456921339) == "2026-11-23 18:02:01 +0000 UTC"
    ls = Labels.from_dict({"__name__": "up", "job": 'a"b', "instance": "x"})
    assert go_labels(ls) == '{__name__="up", instance="x", job="a\\"b"}'
    assert go_labels_condensed(ls) == '{instance="x",job="a\\"b"}'
    assert go_labels_condensed(Labels.from_dict({"__name__": "up"})) == "{}"


@pytest.mark.parametrize(
    ("text", "ms"), [("0", 0), ("2h", 7_200_000), ("1h30m", 5_400_000), ("500ms", 500), ("1d", 86_400_000)]
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("bad", ["", "h", "2x", "1.5h", "-1h"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ms(bad)


def test_tabwrite_pads_all_but_last_column() -> None:
    got = tabwrite([("BLOCK ULID", "SIZE"), ("01ABC", "12")])
    assert got == "BLOCK ULID   SIZE\n01ABC        12\n"
