"""Text format 0.0.4 parser: good inputs, bad inputs with line/column/message, normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from signalfire._types import STALE_NAN_BITS
from signalfire.errors import ExpositionParseError
from signalfire.exposition import NORMAL_NAN, parse, parse_text
from signalfire.labels import Labels


def lbl(name: str, **kv: str) -> Labels:
    return Labels.from_dict({"__name__": name, **kv})


def f(body: bytes, want: list[tuple[Labels, float, int | None]]) -> None:
    r = parse_text(body)
    got = [
        (r.labels[i], float(r.values[i]), int(r.timestamps[i]) if r.has_timestamp[i] else None)
        for i in range(len(r))
    ]
    assert len(got) == len(want), got
    for (gl, gv, gt), (wl, wv, wt) in zip(got, want):
        assert gl == wl
        assert gv == wv or (math.isnan(gv) and math.isnan(wv))
        assert gt == wt
    assert r.values.dtype == np.float64 and r.timestamps.dtype == np.int64


def test_good_inputs() -> None:
    f(b"", [])
    f(b"\n\n", [])
    f(b"foo 1\n", [(lbl("foo"), 1.0, None)])
    f(b"foo 1", [(lbl("foo"), 1.0, None)])
    f(b"foo 1 1700000000000\n", [(lbl("foo"), 1.0, 1700000000000)])
    f(b'foo{a="1",b="2"} 3\n', [(lbl("foo", a="1", b="2"), 3.0, None)])
    f(b'foo{b="2",a="1",} 3\n', [(lbl("foo", a="1", b="2"), 3.0, None)])
    f(b"foo{} 3\n", [(lbl("foo"), 3.0, None)])
    # Prometheus's lexer allows spaces and tabs between tokens and missing commas.
    f(b'  foo \t{ a = "1"  b="2" } \t 3  4 \n', [(lbl("foo", a="1", b="2"), 3.0, 4)])
    f(b'foo{a="x"}5\n', [(lbl("foo", a="x"), 5.0, None)])
    f(b'foo{a="\\"q\\" \\\\ \\n \\t"} 1\n', [(lbl("foo", a='"q" \\ \n \\t'), 1.0, None)])
    f(b'foo{a=""} 1\n', [(lbl("foo"), 1.0, None)])
    f(b"# a comment\n#HELP not metadata\n# HELP\n  # indented comment\nfoo 1\n", [(lbl("foo"), 1.0, None)])
    f(b"# EOF\nfoo 1\n", [(lbl("foo"), 1.0, None)])
    f(
        b"foo -1.5e-3\nbar .5\nbaz 5.\n",
        [(lbl("foo"), -1.5e-3, None), (lbl("bar"), 0.5, None), (lbl("baz"), 5.0, None)],
    )
    f(b"a:b_c 1\n", [(lbl("a:b_c"), 1.0, None)])


def test_utf8_quoted_names() -> None:
    f(b'{"my.metric", "a.b"="c"} 1\n', [(lbl("my.metric", **{"a.b": "c"}), 1.0, None)])
    f(b'{"my.metric"} 1\n', [(lbl("my.metric"), 1.0, None)])
    f(b'{"a.b"="c","my.metric"} 1\n', [(lbl("my.metric", **{"a.b": "c"}), 1.0, None)])
    f('foo{"ünï"="ç"} 1\n'.encode(), [(lbl("foo", **{"ünï": "ç"}), 1.0, None)])
    r = parse_text(b'# HELP "my.metric" Some help.\n# TYPE "my.metric" gauge\n{"my.metric"} 1\n')
    assert r.metadata["my.metric"].type == "gauge" and r.metadata["my.metric"].help == "Some help."


@pytest.mark.parametrize(
    ("token", "want"),
    [
        ("NaN", math.nan),
        ("nan", math.nan),
        ("+Inf", math.inf),
        ("Inf", math.inf),
        ("inf", math.inf),
        ("-Inf", -math.inf),
        ("-inf", -math.inf),
        ("+Infinity", math.inf),
        ("-infinity", -math.inf),
        ("1e308", 1e308),
        ("-0", -0.0),
    ],
)
def test_special_value_spellings(token: str, want: float) -> None:
    r = parse_text(f"foo {token}\n".encode())
    v = float(r.values[0])
    assert (math.isnan(v) and math.isnan(want)) or v == want


def test_nan_is_canonical_never_stale() -> None:
    r = parse_text(b"a NaN\nb nan\n")
    bits = r.values.view(np.uint64)
    assert (bits == np.array([NORMAL_NAN], dtype=np.float64).view(np.uint64)[0]).all()
    assert not (bits == STALE_NAN_BITS).any()


def test_metadata() -> None:
    body = (
        b"# HELP foo Help with \\\\ and \\n and \\x.\n# TYPE foo counter\nfoo 1\n"
        b"# TYPE bar untyped\nbar 2\n# TYPE baz summary\n# HELP baz\n"
    )
    r = parse_text(body)
    assert r.metadata["foo"].help == "Help with \\ and \n and \\x."
    assert r.metadata["foo"].type == "counter"
    assert r.metadata["bar"].type == "unknown"
    assert r.metadata["baz"].type == "summary" and r.metadata["baz"].help == ""


def test_le_and_quantile_normalisation() -> None:
    body = (
        b'# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="0.5"} 1\nh_bucket{le="1e3"} 1\n'
        b'h_bucket{le="+Inf"} 2\nh_bucket{le="1000000"} 2\nh_bucket{le="junk"} 2\n'
        b'# TYPE s summary\ns{quantile="0"} 1\ns{quantile="1"} 1\ns{quantile="0.99"} 1\n'
        b'# TYPE g gauge\ng{le="1",quantile="1"} 1\n'
    )
    r = parse_text(body)
    got = [lset.get("le") or lset.get("quantile") for lset in r.labels[:9]]
    assert got == ["1.0", "0.5", "1000.0", "+Inf", "1e+06", "junk", "0.0", "1.0", "0.99"]
    # Only histograms' le and summaries' quantile are touched.
    assert r.labels[9] == lbl("g", le="1", quantile="1")
    # Without TYPE metadata nothing is normalised (as in Prometheus).
    assert parse_text(b'h_bucket{le="1"} 1\n').labels[0].get("le") == "1"


def test_keys_and_default_ts() -> None:
    r = parse_text(b'foo{a="1"} 1\n  bar  2 5\n', default_ts=1234)
    assert r.keys == [b'foo{a="1"}', b"bar"]
    assert r.timestamps.tolist() == [1234, 5]
    assert r.has_timestamp.tolist() == [False, True]
    assert r.start_timestamps.tolist() == [0, 0]


def test_parse_dispatch_on_content_type() -> None:
    assert len(parse(b"foo 1\n", "text/plain; version=0.0.4")) == 1
    assert len(parse(b"foo 1\n")) == 1
    assert len(parse(b"foo 1\n# EOF\n", "application/openmetrics-text; version=1.0.0")) == 1
    with pytest.raises(ExpositionParseError):
        parse(b"foo 1\n", "application/openmetrics-text")


def e(body: bytes, line: int, column: int, message: str) -> None:
    with pytest.raises(ExpositionParseError) as info:
        parse_text(body)
    err = info.value
    assert (err.line, err.column, err.message) == (line, column, message), str(err)
    assert str(err) == f"{line}:{column}: {message}"


def test_bad_inputs() -> None:
    e(b"foo{a} 1\n", 1, 6, 'expected equal, got "}" ("BCLOSE") while parsing: "foo{a}"')
    e(b"foo{=} 1\n", 1, 5, 'expected label name, got "=" ("EQUAL") while parsing: "foo{="')
    e(b"foo{,} 1\n", 1, 5, 'expected label name, got "," ("COMMA") while parsing: "foo{,"')
    e(b"foo{a=} 1\n", 1, 7, 'expected label value, got "}" ("INVALID") while parsing: "foo{a=}"')
    e(b'foo{a="1" 1\n', 1, 11, 'expected label name, got "1" ("INVALID") while parsing: "foo{a=\\"1\\" 1"')
    e(b'foo{a="1"\n', 1, 10, 'expected label name, got "\\n" ("LINEBREAK") while parsing: "foo{a=\\"1\\""')
    e(
        b"ok 1\nfoo 1 2 3\n",
        2,
        9,
        'expected next entry after timestamp, got "3" ("INVALID") while parsing: "foo 1 2 3"',
    )
    e(b"foo\n", 1, 4, 'expected value after metric, got "\\n" ("LINEBREAK") while parsing: "foo"')
    e(
        b'foo{a="b"} {\n',
        1,
        12,
        'expected value after metric, got "{" ("BOPEN") while parsing: "foo{a=\\"b\\"} {"',
    )
    e(b"foo 1{\n", 1, 6, 'expected timestamp or new record, got "{" ("INVALID") while parsing: "foo 1{"')
    e(b"foo 1 -1\n", 1, 7, 'expected timestamp or new record, got "-" ("INVALID") while parsing: "foo 1 -"')
    e(b"1foo 1\n", 1, 1, 'expected a valid start token, got "1" ("INVALID") while parsing: "1"')
    e(b"  } 1\n", 1, 3, 'expected a valid start token, got "}" ("INVALID") while parsing: "  }"')
    e(b"{} 1\n", 1, 1, 'metric name not set while parsing: "{} 1"')
    e(b'{"a", "b"} 1\n', 1, 7, 'metric name already set while parsing: "{\\"a\\", \\"b\\"}"')
    e(b"foo abc\n", 1, 5, 'strconv.ParseFloat: parsing "abc": invalid syntax while parsing: "foo abc"')
    e(
        b"foo 1e400\n",
        1,
        5,
        'strconv.ParseFloat: parsing "1e400": value out of range while parsing: "foo 1e400"',
    )
    e(b"foo +nan\n", 1, 5, 'strconv.ParseFloat: parsing "+nan": invalid syntax while parsing: "foo +nan"')
    e(b"foo 1_0\n", 1, 5, 'unsupported character in float while parsing: "foo 1_0"')
    e(b"foo 0x1p3\n", 1, 5, 'unsupported character in float while parsing: "foo 0x1p3"')
    e(b"foo 1\r\n", 1, 5, 'strconv.ParseFloat: parsing "1\\r": invalid syntax while parsing: "foo 1\\r"')
    e(
        b"foo 1 99999999999999999999\n",
        1,
        7,
        'strconv.ParseInt: parsing "99999999999999999999": value out of range '
        'while parsing: "foo 1 99999999999999999999"',
    )
    e(b"# TYPE foo bar\n", 1, 12, 'invalid metric type "bar"')
    e(b"# TYPE foo counter \n", 1, 12, 'invalid metric type "counter "')
    e(b"# HELP 1 x\n", 1, 8, 'expected metric name after HELP, got "1" ("INVALID") while parsing: "# HELP 1"')
    e(b'foo{a="1",a="2"} 1\n', 1, 1, 'label name "a" is not unique')
    e(b'foo{a="\xff"} 1\n', 1, 8, 'invalid UTF-8 label value: "foo{a=\\"\\xff\\"} 1"')
    e(b"# HELP foo \xff\n", 1, 1, 'help text "\\xff" is not a valid utf8 string')
    # Deliberate differences from Prometheus (docs/format/exposition.md).
    e(b"\x00foo 1\n", 1, 1, 'expected a valid start token, got "\\x00" ("INVALID") while parsing: "\\x00"')
    e(b'foo{a="1\nb"} 1\n', 1, 7, 'expected label value, got "\\"" ("INVALID") while parsing: "foo{a=\\""')
    # Columns count bytes, as in Prometheus.
    e(
        'foo{a="é"} x\n'.encode(),
        1,
        13,
        'strconv.ParseFloat: parsing "x": invalid syntax while parsing: "foo{a=\\"é\\"} x"',
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{} 1\n", "metric name"),
        (b'foo{a="1",a="2"} 1\n', "unique label name"),
        (b"# TYPE foo bar\n", "metric type"),
        (b"foo x\n", "value"),
        (b"foo{a} 1\n", "expected equal"),
    ],
)
def test_errors_say_what_was_expected(body: bytes, expected: str) -> None:
    with pytest.raises(ExpositionParseError) as info:
        parse_text(body)
    assert info.value.expected == expected


def test_histogram_bucket_memo_positions() -> None:
    # Buckets of one series share their other labels; le may sit anywhere among them.
    body = (
        b"# TYPE h histogram\n"
        b'h_bucket{le="1",handle="x",a="1"} 1\nh_bucket{le="2",handle="x",a="1"} 2\n'
        b'h_bucket{handle="x",le="1",a="1"} 3\nh_bucket{handle="x",le="2",a="1",} 4\n'
        b'h_bucket{handle="x",a="1",le="1"} 5\nh_bucket{handle="x",a="1",le="2",} 6\n'
        b'h_bucket{le="3"} 7\nh_bucket{le="4"} 8\nh_bucket{le=""} 9\n'
    )
    r = parse_text(body)
    want = [lbl("h_bucket", le=f"{le}.0", handle="x", a="1") for le in (1, 2) for _ in range(3)]
    assert sorted(r.labels[:6]) == sorted(want)
    assert r.labels[6:] == [lbl("h_bucket", le="3.0"), lbl("h_bucket", le="4.0"), lbl("h_bucket")]
    e(
        b'# TYPE h histogram\nh_bucket{le="1",a="1"} 1\nh_bucket{le="1",le="2"} 1\n',
        3,
        1,
        'label name "le" is not unique',
    )


def test_empty_names_are_errors() -> None:
    e(b'{""} 1\n', 1, 1, 'invalid metric name ""')
    e(b'foo{""="x"} 1\n', 1, 1, 'invalid label name ""')
    with pytest.raises(ExpositionParseError, match="invalid metric name"):
        parse(b'{""} 1\n# EOF\n', "application/openmetrics-text")
