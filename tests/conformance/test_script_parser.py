"""The conformance runner's own readers and comparison, tested without a database."""

from __future__ import annotations

import math

import pytest

from conformance.compare import Outcome, almost_equal, check_eval
from conformance.notation import (
    Histogram,
    NotationError,
    parse_duration,
    parse_scalar_line,
    parse_series_id,
    parse_st_values,
    parse_values,
    split_items,
)
from conformance.runner import FEATURES, Segment, native_histogram_reason, pin_selectors, promqltest_files
from conformance.script import Clear, Eval, Load, ScriptError, parse_file, parse_script
from signalfire._types import STALE_NAN, is_stale_value
from signalfire.labels import Labels


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("5m", 300_000),
        ("1m30s", 90_000),
        ("20s500ms", 20_500),
        ("10s53ms", 10_053),
        ("1y", 31_536_000_000),
        ("2w", 1_209_600_000),
        ("1d1h", 90_000_000),
        ("100ms", 100),
    ],
)
def test_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "5", "1s1m", "-5m", "5mm", "1.5m"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(NotationError):
        parse_duration(text)


def f(text: str, want: list[object]) -> None:
    got = parse_values(text)
    assert len(got) == len(want), (text, got)
    for g, w in zip(got, want):
        if isinstance(w, float) and math.isnan(w):
            assert isinstance(g, float) and math.isnan(g) and is_stale_value(g) == is_stale_value(w)
        else:
            assert g == w, (text, got)


def test_value_sequences() -> None:
    f("1 2 3", [1.0, 2.0, 3.0])
    f("0+10x3", [0.0, 10.0, 20.0, 30.0])
    f("10-2x2", [10.0, 8.0, 6.0])
    f("-1-1x2", [-1.0, -2.0, -3.0])
    f("1x2", [1.0, 1.0, 1.0])
    f("_ _x3 5", [None, None, None, None, 5.0])
    f("stale", [STALE_NAN])
    f("1 _ stale 3", [1.0, None, STALE_NAN, 3.0])
    f("Inf -Inf +inf NaN nan", [math.inf, -math.inf, math.inf, math.nan, math.nan])
    f("1e3 .5 2. 1_000", [1000.0, 0.5, 2.0, 1000.0])
    f("1e-3+1e-3x1", [0.001, 0.002])
    f("0.1+0.1x2", [0.1, 0.1 + 0.1, 0.1 + 0.1 + 0.1])  # repeated addition, not 0.1 * i
    f("Inf+1x1", [math.inf, math.inf])


def test_histogram_items_are_recognised() -> None:
    items = parse_values("1 {{schema:0 sum:5 count:4 buckets:[1 2 1]}} {{schema:0 sum:1}}x2 _")
    assert items[0] == 1.0 and items[-1] is None
    assert all(isinstance(v, Histogram) for v in items[1:5])
    assert len(parse_values("{{count:1}}+{{count:2}}x3")) == 4
    assert split_items("a {{b c}}x2  d") == ["a", "{{b c}}x2", "d"]
    with pytest.raises(NotationError):
        parse_values("{{schema:0")


@pytest.mark.parametrize("text", ["0x1F", "1+", "abc", "1x", "1+2x"])
def test_bad_values(text: str) -> None:
    with pytest.raises(NotationError):
        parse_values(text)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("up", {"__name__": "up"}),
        ("up{}", {"__name__": "up"}),
        ("{}", {}),
        ("foo{a=\"1\", b='2'}", {"__name__": "foo", "a": "1", "b": "2"}),
        ('foo{b="2",a="1",}', {"__name__": "foo", "a": "1", "b": "2"}),
        ('{__name__="x", job="j"}', {"__name__": "x", "job": "j"}),
        ('{"utf8.name", "a.b"="c"}', {"__name__": "utf8.name", "a.b": "c"}),
        ('m{a="\\n\\"\\\\", b=`raw\\n`}', {"__name__": "m", "a": '\n"\\', "b": "raw\\n"}),
        ('m{a="\\u00e9\\x41\\101"}', {"__name__": "m", "a": "éAA"}),
        ("job:rate:sum{a='x'}", {"__name__": "job:rate:sum", "a": "x"}),
        ('m{a=""}', {"__name__": "m"}),
    ],
)
def test_series_id(text: str, want: dict[str, str]) -> None:
    labels, end = parse_series_id(text)
    assert labels == Labels.from_dict(want)
    assert end == len(text)


def test_series_id_raw_bytes_survive() -> None:
    labels, _ = parse_series_id('m{a="\\xff"}')
    assert labels.get("a").encode("utf-8", "surrogateescape") == b"\xff"


@pytest.mark.parametrize(
    "text", ['m{a="1"', "m{a=1}", "m{a}", 'm{a="1" b="2"}', '{a="1", a="2"}', '1m{a="x"}']
)
def test_bad_series_id(text: str) -> None:
    with pytest.raises(NotationError):
        parse_series_id(text)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1", 1.0),
        ("-2.5", -2.5),
        ("0x10", 16.0),
        ("010", 8.0),
        ("0b11", 3.0),
        ("0o17", 15.0),
        ("+Inf", math.inf),
        ("1e3", 1000.0),
        ("foo 1", None),
        ("{} 1", None),
    ],
)
def test_scalar_line(text: str, want: float | None) -> None:
    assert parse_scalar_line(text) == want


def test_st_values() -> None:
    assert parse_st_values("_ _ -30s-1mx2 5s") == [None, None, -30_000, -90_000, -150_000, 5_000]
    assert parse_st_values("_x2 -59999msx1 -0ms") == [None, None, -59_999, -59_999, 0]


SCRIPT = """
# a comment
load 5m
  http_requests{job="api"} 0+10x2
  http_requests{job="api"} 1 2
  other {{schema:0}}

eval instant at 10m http_requests
  http_requests{job="api"} 2
# a comment ends the block
eval instant at 0 sum(x)
  expect fail msg: boom
  expect warn regex: a.*b
  expect no_info

eval range from 0 to 10m step 5m x
  {} 1 _ 3

eval instant at 1m 1+1
  2

eval_fail instant at 0 y
  expected_fail_message exact

eval_ordered instant at 0 sort(x)
  x{a="1"} 1
  x{a="2"} 2

eval instant at 1m x
  expect range vector from 0 to 1m step 30s
  x 1 2 3

eval instant at 0 "a"
  expect string `a`

clear
load_with_nhcb 1m
  h_bucket{le="1"} 1
  x@st
"""


def test_parse_script_commands() -> None:
    with pytest.raises(ScriptError):
        parse_script(SCRIPT)  # the trailing `x@st` line has no sample line after it
    cmds = parse_script(SCRIPT.replace("  x@st\n", ""))
    kinds = [type(c).__name__ for c in cmds]
    assert kinds == ["Load", "Eval", "Eval", "Eval", "Eval", "Eval", "Eval", "Eval", "Eval", "Clear", "Load"]
    load = cmds[0]
    assert isinstance(load, Load) and load.interval_ms == 300_000
    assert next(s.items for s in load.series) == [1.0, 2.0]  # the later line replaced the earlier one
    assert load.has_histograms and load.histogram_metric_names() == {"other"}
    ev = cmds[1]
    assert isinstance(ev, Eval) and ev.instant and ev.end_ms == 600_000 and len(ev.series) == 1
    ev = cmds[2]
    assert isinstance(ev, Eval) and ev.expects_fail and ev.series == []
    assert [(e.kind, e.mode, e.text) for e in ev.expects] == [
        ("fail", "msg", "boom"),
        ("warn", "regex", "a.*b"),
        ("no_info", "", ""),
    ]
    ev = cmds[3]
    assert isinstance(ev, Eval) and not ev.instant and ev.step_ms == 300_000
    assert ev.series[0].labels == Labels(()) and ev.series[0].items == [1.0, None, 3.0]
    assert isinstance(cmds[4], Eval) and cmds[4].scalar == 2.0
    assert isinstance(cmds[5], Eval) and cmds[5].expects_fail and cmds[5].fail_message == "exact"
    assert isinstance(cmds[6], Eval) and cmds[6].ordered
    assert isinstance(cmds[7], Eval) and cmds[7].range_vector == (0, 60_000, 30_000)
    assert isinstance(cmds[8], Eval) and cmds[8].string == "a"
    last = cmds[10]
    assert isinstance(last, Load) and last.with_nhcb and last.histogram_metric_names() == {"h"}
    assert isinstance(cmds[9], Clear)


@pytest.mark.parametrize(
    "text",
    [
        "bogus 1",
        "eval instant at 5 x",  # a bare number is not a duration
        "eval range from 10m to 0 step 1m x",
        "eval instant at 0 x\n  x 1 2",  # two values for an instant query
        "eval range from 0 to 1m step 1m x\n  x 1 2 3",  # more values than steps
        "eval instant at 0 x\n  expect bogus",
        "eval instant at 0 x\n  expect warn\n  expect no_warn",
        "eval instant at 0 x\n  expect fail\n  expect fail",
    ],
)
def test_bad_scripts(text: str) -> None:
    with pytest.raises(ScriptError):
        parse_script(text)


def test_all_upstream_files_parse() -> None:
    """2214 eval cases in 21 files, as INDEX.md counts them."""
    evals = [c for p in promqltest_files() for c in parse_file(p) if isinstance(c, Eval)]
    assert len(evals) == 2214
    assert sum(e.instant for e in evals) == 1885


# ---------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (1.0, 1.0, True),
        (math.nan, math.nan, True),
        (STALE_NAN, math.nan, False),
        (STALE_NAN, STALE_NAN, True),
        (math.inf, math.inf, True),
        (math.inf, -math.inf, False),
        (1.0, 1.0 + 1e-9, True),
        (1.0, 1.0001, False),
        (0.0, 1e-320, True),
        (0.0, 1e-300, False),
        (math.nan, 1.0, False),
    ],
)
def test_almost_equal(a: float, b: float, want: bool) -> None:
    assert almost_equal(a, b) is want
    assert almost_equal(b, a) is want


def _eval(text: str) -> Eval:
    cmds = parse_script(text)
    assert isinstance(cmds[0], Eval)
    return cmds[0]


L_A = Labels.from_dict({"__name__": "x", "a": "1"})
L_B = Labels.from_dict({"__name__": "x", "a": "2"})


def test_vector_comparison() -> None:
    ev = _eval('eval instant at 0 x\n  x{a="1"} 1\n  x{a="2"} 2')
    assert check_eval(ev, Outcome("vector", [(L_B, [(0, 2.0)]), (L_A, [(0, 1.0)])])) == []
    assert check_eval(ev, Outcome("vector", [(L_A, [(0, 1.0)])]))  # missing series
    assert check_eval(ev, Outcome("vector", [(L_A, [(0, 1.0)]), (L_B, [(0, 3.0)])]))  # wrong value
    assert check_eval(ev, Outcome("matrix", [(L_A, [(0, 1.0)]), (L_B, [(0, 2.0)])]))  # wrong type
    assert check_eval(ev, Outcome(error="boom")) == ["unexpected error: boom"]
    ordered = _eval('eval_ordered instant at 0 x\n  x{a="1"} 1\n  x{a="2"} 2')
    assert check_eval(ordered, Outcome("vector", [(L_B, [(0, 2.0)]), (L_A, [(0, 1.0)])]))
    assert check_eval(_eval("eval instant at 0 x"), Outcome("vector", [])) == []
    assert check_eval(_eval("eval instant at 0 x"), Outcome("scalar", scalar=1.0))  # empty needs a vector


def test_matrix_comparison() -> None:
    ev = _eval('eval range from 0 to 2m step 1m x\n  x{a="1"} 1 _ 3\n  x{a="2"} 1')
    good = Outcome("matrix", [(L_A, [(0, 1.0), (120_000, 3.0)]), (L_B, [(0, 1.0)])])
    assert check_eval(ev, good) == []
    assert check_eval(ev, Outcome("matrix", good.series[::-1]))  # not sorted
    assert check_eval(
        ev, Outcome("matrix", [(L_A, [(0, 1.0), (60_000, 2.0), (120_000, 3.0)]), good.series[1]])
    )
    assert check_eval(ev, Outcome("matrix", [(L_A, [(0, 1.0), (60_000, 3.0)]), good.series[1]]))  # wrong ts


def test_failure_and_annotation_matching() -> None:
    ev = _eval("eval instant at 0 x\n  expect fail msg: boom")
    assert check_eval(ev, Outcome(error="boom")) == []
    assert check_eval(ev, Outcome(error="boom!"))
    assert check_eval(ev, Outcome("vector"))
    ev = _eval("eval instant at 0 x\n  expect fail regex: b.o")
    assert check_eval(ev, Outcome(error="a boom")) == []
    ev = _eval("eval instant at 0 x\n  expect warn msg: PromQL warning: w (1:1)\n  expect no_info")
    assert check_eval(ev, Outcome("vector", warnings=["PromQL warning: w (1:1)"])) == []
    assert check_eval(ev, Outcome("vector", warnings=["PromQL warning: w (1:2)"]))
    assert check_eval(
        ev, Outcome("vector", warnings=["PromQL warning: w (1:1)"], infos=["PromQL info: i (1:1)"])
    )
    assert check_eval(ev, Outcome("vector"))  # a warning is required
    bare = _eval("eval instant at 0 x\n  expect warn")
    assert check_eval(bare, Outcome("vector", warnings=["a", "b"])) == []
    unchecked = _eval("eval instant at 0 x")
    assert check_eval(unchecked, Outcome("vector", warnings=["a"], infos=["b"])) == []
    legacy = _eval("eval_warn instant at 0 x")
    assert check_eval(legacy, Outcome("vector"))
    assert check_eval(legacy, Outcome("vector", warnings=["a"])) == []
    s = _eval('eval instant at 0 "a"\n  expect string "a"')
    assert check_eval(s, Outcome("string", string="a")) == []
    assert check_eval(s, Outcome("string", string="b"))


def test_native_histogram_classification() -> None:
    cmds = parse_script(
        "load 1m\n  h {{schema:0}}\n  f 1\n\neval instant at 0 f\n  f 1\n\neval instant at 0 h\n\n"
        'eval instant at 0 {job="x"}\n\neval instant at 0 fh\n'
    )
    seg = Segment(0, [c for c in cmds if isinstance(c, Load)])
    evals = [c for c in cmds if isinstance(c, Eval)]
    assert native_histogram_reason(evals[0], seg) == ""
    assert native_histogram_reason(evals[1], seg)
    assert native_histogram_reason(evals[2], seg)
    assert native_histogram_reason(evals[3], seg) == ""
    assert native_histogram_reason(evals[0], Segment(0)) == ""


def test_pin_selectors_leaves_subquery_insides_alone() -> None:
    """A.11.1 as upstream does it: a subquery gets ``@`` and is a boundary."""
    from signalfire.promql import parse_expr, to_string

    tree = parse_expr("sum_over_time(m[5m:1m]) + rate(x[1m]) + y @ 5 + z", features=FEATURES)
    text = to_string(pin_selectors(tree, 10_000))
    assert text == "sum_over_time(m[5m:1m] @ 10.000) + rate(x[1m] @ 10.000) + y @ 5.000 + z @ 10.000"
