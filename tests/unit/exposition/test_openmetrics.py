"""OpenMetrics 1.0 parser: grammar, exemplars, _created start timestamps, errors with positions."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from signalfire.errors import ExpositionParseError
from signalfire.exposition import Exemplar, openmetrics, parse_openmetrics
from signalfire.exposition._lex import FloatSyntaxError, seconds_to_ms
from signalfire.labels import Labels


def lbl(name: str, **kv: str) -> Labels:
    return Labels.from_dict({"__name__": name, **kv})


def f(body: bytes, want: list[tuple[Labels, float, int | None, int]], **kw: bool) -> None:
    r = parse_openmetrics(body, **kw)
    got = [
        (
            r.labels[i],
            float(r.values[i]),
            int(r.timestamps[i]) if r.has_timestamp[i] else None,
            int(r.start_timestamps[i]),
        )
        for i in range(len(r))
    ]
    assert len(got) == len(want), got
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[2:] == w[2:], (g, w)
        assert g[1] == w[1] or (math.isnan(g[1]) and math.isnan(w[1]))


def test_good_inputs() -> None:
    f(b"# EOF\n", [])
    f(b"# EOF", [])
    f(b"foo 1\n# EOF\n", [(lbl("foo"), 1.0, None, 0)])
    f(b'foo{a="1",b="2",} 1.5 2.25\n# EOF\n', [(lbl("foo", a="1", b="2"), 1.5, 2250, 0)])
    f(b"foo 1 1700000000\n# EOF\n", [(lbl("foo"), 1.0, 1700000000000, 0)])
    f(b"foo 1 -1.5\n# EOF\n", [(lbl("foo"), 1.0, -1500, 0)])
    f(b"foo 1 1.005\n# EOF\n", [(lbl("foo"), 1.0, 1005, 0)])
    f(b'{"my.metric","a.b"="c"} 1\n# EOF\n', [(lbl("my.metric", **{"a.b": "c"}), 1.0, None, 0)])
    f(b'foo{a="\\"\\\\\\n"} NaN\n# EOF\n', [(lbl("foo", a='"\\\n'), math.nan, None, 0)])
    f(
        b"a +Inf\nb -Inf\nc nan\n# EOF\n",
        [(lbl("a"), math.inf, None, 0), (lbl("b"), -math.inf, None, 0), (lbl("c"), math.nan, None, 0)],
    )


def test_metadata_and_unit() -> None:
    body = (
        b'# TYPE foo_seconds summary\n# UNIT foo_seconds seconds\n# HELP foo_seconds A \\"quoted\\" help.\n'
        b'foo_seconds{quantile="0"} 1\n# TYPE "my.x" gauge\n# HELP nohelp \n# UNIT nounit \n# EOF\n'
    )
    r = parse_openmetrics(body)
    m = r.metadata["foo_seconds"]
    assert (m.type, m.unit, m.help) == ("summary", "seconds", 'A "quoted" help.')
    assert r.metadata["my.x"].type == "gauge"
    assert r.metadata["nohelp"].help == "" and r.metadata["nounit"].unit == ""
    assert r.labels[0].get("quantile") == "0.0"


def test_types() -> None:
    body = b"".join(
        f"# TYPE m{i} {t}\n".encode()
        for i, t in enumerate(
            ["counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"]
        )
    )
    r = parse_openmetrics(body + b"# EOF\n")
    assert [r.metadata[f"m{i}"].type for i in range(8)][-1] == "unknown"


def test_created_becomes_start_timestamp() -> None:
    body = (
        b"# TYPE c counter\n"
        b'c_total{a="1"} 1\nc_created{a="1"} 1000.5\n'
        b'c_total{a="2"} 2\n'
        b"# TYPE h histogram\n"
        b'h_bucket{le="1"} 0\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 2\nh_created 5\n'
        b"# TYPE s summary\n"
        b's_created{x="y"} 7\ns{x="y",quantile="0.5"} 1\ns_count{x="y"} 1\n'
        b"# TYPE g gauge\ng_created 9\n"
        b'# TYPE gh gaugehistogram\ngh_bucket{le="+Inf"} 1\ngh_created 3\n'
        b"# EOF\n"
    )
    f(
        body,
        [
            (lbl("c_total", a="1"), 1.0, None, 1000500),
            (lbl("c_total", a="2"), 2.0, None, 0),
            (lbl("h_bucket", le="1.0"), 0.0, None, 5000),
            (lbl("h_bucket", le="+Inf"), 1.0, None, 5000),
            (lbl("h_count"), 1.0, None, 5000),
            (lbl("h_sum"), 2.0, None, 5000),
            (lbl("s", x="y", quantile="0.5"), 1.0, None, 7000),
            (lbl("s_count", x="y"), 1.0, None, 7000),
            # Gauges and gauge histograms keep _created as an ordinary sample.
            (lbl("g_created"), 9.0, None, 0),
            (lbl("gh_bucket", le="+Inf"), 1.0, None, 0),
            (lbl("gh_created"), 3.0, None, 0),
        ],
    )
    r = parse_openmetrics(body, keep_created_series=True)
    assert [str(x) for x in r.labels].count('c_created{a="1"}') == 1
    assert len(r) == 14


def test_exemplars() -> None:
    body = (
        b'# TYPE h histogram\nh_bucket{le="1"} 3 # {trace_id="abc",span="x"} 0.5 1700000000.123\n'
        b'h_bucket{le="+Inf"} 4 # {} 2\nh_count 4 5 # {"a.b"="c"} 1\n# EOF\n'
    )
    r = parse_openmetrics(body)
    assert r.exemplars == [
        Exemplar(0, Labels.from_dict({"trace_id": "abc", "span": "x"}), 0.5, 1700000000123),
        Exemplar(1, Labels(()), 2.0, None),
        Exemplar(2, Labels.from_dict({"a.b": "c"}), 1.0, None),
    ]
    assert r.timestamps[2] == 5000


def e(body: bytes, line: int, column: int, message: str) -> None:
    with pytest.raises(ExpositionParseError) as info:
        parse_openmetrics(body)
    err = info.value
    assert (err.line, err.column, err.message) == (line, column, message), str(err)


def test_bad_inputs() -> None:
    e(b"foo 1\n", 2, 1, "data does not end with # EOF")
    e(b"foo 1", 1, 6, "data does not end with # EOF")
    e(b"", 1, 1, "data does not end with # EOF")
    e(b"foo 1\n# EOF\nbar 1\n", 3, 1, "unexpected data after # EOF")
    e(b"# EOF\n\n", 2, 1, "unexpected data after # EOF")
    e(b"foo  1\n# EOF\n", 1, 4, 'expected value after metric, got " " ("INVALID") while parsing: "foo "')
    e(
        b'foo{a="1", b="2"} 1\n# EOF\n',
        1,
        11,
        'expected label name, got " " ("INVALID") while parsing: "foo{a=\\"1\\", "',
    )
    e(
        b'foo{a="1"b="2"} 1\n# EOF\n',
        1,
        10,
        'expected comma or brace close, got "b" ("LNAME") while parsing: "foo{a=\\"1\\"b"',
    )
    e(b"\nfoo 1\n# EOF\n", 1, 1, 'expected a valid start token, got "\\n" ("LINEBREAK") while parsing: ""')
    e(b"# comment\n# EOF\n", 1, 3, 'expected a valid start token, got "c" ("INVALID") while parsing: "# c"')
    e(b"#HELP foo x\n# EOF\n", 1, 1, 'expected a valid start token, got "#" ("INVALID") while parsing: "#"')
    e(b"# HELP foo\n# EOF\n", 1, 11, "expected text in HELP")
    e(
        b"# HELP 9 x\n# EOF\n",
        1,
        8,
        'expected metric name after HELP, got "9" ("INVALID") while parsing: "# HELP 9"',
    )
    e(b"# TYPE foo bar\n# EOF\n", 1, 12, 'invalid metric type "bar"')
    e(b"# UNIT foo_seconds bytes\n# EOF\n", 1, 20, 'unit "bytes" not a suffix of metric "foo_seconds"')
    e(b"foo 1 NaN\n# EOF\n", 1, 7, "invalid timestamp NaN")
    e(b"foo 1 +Inf\n# EOF\n", 1, 7, "invalid timestamp +Inf")
    e(
        b"foo 1 abc\n# EOF\n",
        1,
        7,
        'strconv.ParseFloat: parsing "abc": invalid syntax while parsing: "foo 1 abc"',
    )
    e(b"foo x\n# EOF\n", 1, 5, 'strconv.ParseFloat: parsing "x": invalid syntax while parsing: "foo x"')
    e(b"foo 1 # {a} 1\n# EOF\n", 1, 11, 'expected equal, got "}" ("BCLOSE") while parsing: "foo 1 # {a}"')
    e(
        b'foo 1 # {a="b"}\n# EOF\n',
        1,
        16,
        'expected value after exemplar labels, got "\\n" ("LINEBREAK") while parsing: "foo 1 # {a=\\"b\\"}"',
    )
    e(b'foo 1 # {a="b"} 1 NaN\n# EOF\n', 1, 19, "invalid exemplar timestamp NaN")
    e(
        b'foo 1 # {"x"} 1\n# EOF\n',
        1,
        13,
        'expected label name, got "}" ("BCLOSE") while parsing: "foo 1 # {\\"x\\"}"',
    )
    e(b'foo{"a.b"} 1\n# EOF\n', 1, 5, 'metric name already set while parsing: "foo{\\"a.b\\"}"')
    e(
        b'foo{a="1"} 1 2 3\n# EOF\n',
        1,
        15,
        'expected next entry after timestamp, got " " ("INVALID") while parsing: "foo{a=\\"1\\"} 1 2 "',
    )
    e(
        b'foo{a="x\ny"} 1\n# EOF\n',
        1,
        7,
        'expected label value, got "\\"" ("INVALID") while parsing: "foo{a=\\""',
    )
    e(b"ok 1\n{} 1\n# EOF\n", 2, 1, 'metric name not set while parsing: "{} 1"')


_ts_token = st.one_of(
    st.from_regex(r"-?[0-9]{1,15}\.[0-9]{3}", fullmatch=True),  # promtool's and exporters' form
    st.from_regex(r"-?[0-9]{1,17}(\.[0-9]{0,6})?", fullmatch=True),
    st.from_regex(r"[+-]?[0-9]{1,3}(\.[0-9]{1,3})?[eE][+-]?[0-9]", fullmatch=True),
    st.sampled_from(["0", "-0.0005", ".5", "1.", "999999999999999.999"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), _ts_token), min_size=1, max_size=6))
def test_timestamps_in_one_batch_convert_as_token_by_token(tokens: list[str | None]) -> None:
    """The batch conversion of sample timestamps (integer arithmetic for plain decimal
    seconds) gives what :func:`seconds_to_ms` gives for each token, or the same error."""
    body = "".join(f"m{i} 1{'' if t is None else ' ' + t}\n" for i, t in enumerate(tokens)) + "# EOF\n"
    want: list[int | None] = []
    try:
        for t in tokens:
            want.append(None if t is None else seconds_to_ms(t))
    except FloatSyntaxError:
        with pytest.raises(ExpositionParseError):
            parse_openmetrics(body.encode())
        return
    r = parse_openmetrics(body.encode())
    got = [int(r.timestamps[i]) if r.has_timestamp[i] else None for i in range(len(r))]
    assert got == want


_SERIES = ["m", "m_total", 'm{a="1"}', 'm{a="1",b="x y"}', 'm{b="2",a="1",}', '{"my.metric",a="1"}']
_ODD_SERIES = ['m{a=""}', 'm{a="1",a="2"}', 'm{a="q\\"\\\\n"}', '{a="1"}', 'm{le="1"}', "m{a=1}", "9m"]
_VALUES = ["1", "1.5", "-0", "NaN", "1e3", ".5", "+Inf", "-Inf", "1e999", "0x1", "1_0", "", "\u0661"]
_VALUES += ["1.2.3", "1e", ".", "+", "-", "1e+", "5.", "+.5e-3", "1E05", "e5", "--1", "1e-400", "inf"]
_PLAIN_TS = st.from_regex(r"-?[0-9]{1,15}(\.[0-9]{0,6})?", fullmatch=True)


@st.composite
def _sample_body(draw: st.DrawFn) -> str:
    """Mostly what backfill files hold (sample lines, every one with or every one without
    a timestamp); now and then a flaw: metadata, an exemplar, an odd series, value or
    timestamp, a blank line, a missing or wrong EOF."""
    with_ts = draw(st.sampled_from([True, True, True, False]))
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        flaw = draw(st.integers(0, 9)) == 0
        series = draw(st.sampled_from(_SERIES + _ODD_SERIES if flaw else _SERIES))
        value = draw(st.sampled_from(_VALUES if flaw else _VALUES[:6]))
        ts = draw(_ts_token | st.sampled_from(["NaN", "x", ""]) | st.none()) if flaw else None
        if with_ts and ts is None and not flaw:
            ts = draw(_PLAIN_TS)
        extra = draw(st.sampled_from(["", ' # {a="1"} 1', " "])) if flaw else ""
        line = f"{series} {value}{'' if ts is None else ' ' + ts}{extra}"
        if flaw and draw(st.booleans()):
            line = draw(st.sampled_from(["# TYPE m gauge", "# HELP m h", ""]))
        lines.append(line)
    eof = draw(st.sampled_from(["# EOF\n", "# EOF"]) | st.sampled_from(["# EOF\n\n", "#EOF\n"]))
    return "".join(line + "\n" for line in lines) + eof


@settings(max_examples=400, deadline=None)
@given(_sample_body(), st.booleans())
@example("m 1 1.000\nm 1e999 2.000\n# EOF\n", False)  # inf to Python, out of range to Go
@example("m 1 1.000\nm 1_0 2.000\n# EOF\n", False)  # Python's float takes underscores, Go's not
@example("m 1 1.000\nm \u0661 2.000\n# EOF\n", True)  # nor other scripts' digits
@example("m 1 1.000\nm 1 2.000 \n# EOF\n", False)  # a trailing space: an empty last token
@example("m 1 1.000 \n# EOF\n", False)
@example("m 1  1.000\n# EOF\n", True)  # a doubled space: an empty value
@example("m 1 1.000\nm 2\n# EOF\n", True)  # a timestamp on some lines only
def test_sample_only_bodies_parse_as_the_line_parser_does(body: str, cache: bool) -> None:
    """Bodies of sample lines only take one ``findall``; the result, or the error, must be
    the line parser's own."""

    def run(**kw: object) -> object:
        try:
            r = parse_openmetrics(body.encode(), label_cache={} if cache else None, **kw)
        except ExpositionParseError as err:
            return ("error", err.message, err.line, err.column)
        return (
            list(r.labels),
            list(r.keys),
            r.values.view(np.uint64).tolist(),
            r.timestamps.tolist(),
            r.has_timestamp.tolist(),
            r.start_timestamps.tolist(),
        )

    fast = run(default_ts=7)
    with mock.patch.object(openmetrics, "_plain_samples", return_value=None):
        slow = run(default_ts=7)
    assert fast == slow


@pytest.mark.parametrize("value", ["1_0", "\u0661", "1e999", "-1e999", "0x1", "1\t", "1.2.3", "infinit"])
@pytest.mark.parametrize("meta", ["", "# TYPE m gauge\n"])
@pytest.mark.parametrize("ts", ["", " 1.000"])
def test_values_go_rejects_are_positioned_errors(value: str, meta: str, ts: str) -> None:
    """Python's float takes some of these (underscores, other scripts' digits, a tab,
    overflow to inf); Go's ParseFloat takes none, with or without metadata around."""
    body = f"{meta}m 1 2.000\nm {value}{ts}\n# EOF\n"
    with pytest.raises(ExpositionParseError) as err:
        parse_openmetrics(body.encode())
    assert err.value.line == body.count("\n") - 1
