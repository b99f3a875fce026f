"""Printer: Prometheus's String() forms, Pretty() and parse/print round trips."""

from __future__ import annotations

import pytest
from parser_corpus import conformance_expressions, same_tree

from signalfire.promql import ALL_FEATURES, ast, format_duration, parse_expr, prettify, to_string
from signalfire.promql.printer import add_at_modifiers, duration_to_string


def p(text: str) -> ast.Expr:
    return parse_expr(text, features=ALL_FEATURES)


def test_round_trip_of_every_conformance_expression() -> None:
    failures = []
    for where, text in conformance_expressions():
        tree = p(text)
        printed = to_string(tree)
        if not same_tree(tree, p(printed)):
            failures.append(f"{where}: {text!r} printed as {printed!r}")
        assert same_tree(p(printed), p(to_string(p(printed))))
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('foo{b="2",a="1"}', 'foo{a="1",b="2"}'),
        ("sum(x) by (job)", "sum by (job) (x)"),
        ("sum without(a,b)(x)", "sum without (a, b) (x)"),
        ("topk(3, x)", "topk(3, x)"),
        ("a + on(x) group_left(y) b", "a + on (x) group_left (y) b"),
        ("a > ignoring(x) group_right b", "a > ignoring (x) group_right () b"),
        ("a == bool b", "a == bool b"),
        # From Prometheus's printer_test.go.
        ("a + fill(-23) b", "a + fill (-23) b"),
        ("a + fill_left(-23) b", "a + fill_left (-23) b"),
        ("a + fill_right(42) b", "a + fill_right (42) b"),
        ("a + fill_left(-23) fill_right(42) b", "a + fill_left (-23) fill_right (42) b"),
        ("a + on(b) group_left fill(-23) c", "a + on (b) group_left () fill (-23) c"),
        ("a - ignoring() c", "a - c"),
        ("a - ignoring() group_left c", "a - ignoring () group_left () c"),
        ("a - on() c", "a - on () c"),
        ("a - on(b) group_left() (c)", "a - on (b) group_left () (c)"),
        ('a{b="c"}[5m] anchored @ start() offset 1m', 'a{b="c"}[5m] anchored @ start() offset 1m'),
        ('{__name__="",a="x"}', '{__name__="",a="x"}'),
        ('{"a.b"="c"}', '{"a.b"="c"}'),
        ('{"0"="1"}', '{"0"="1"}'),
        ('{"_0"="1"}', '{_0="1"}'),
        ('{""="0"}', '{""="0"}'),
        ('{``="0"}', '{""="0"}'),
        ("1048576", "1048576"),
        ("foo[-step()]", "foo[-step()]"),
        ("foo offset +(5*2)", "foo offset (5 * 2)"),
        ("foo[200-min(-step()^+step(),1)]", "foo[200 - min_of(-step() ^ step(), 1s)]"),
        ("predict_linear(foo[1h], 3000)", "predict_linear(foo[1h], 3000)"),
        ('count by("ööö", job) (foo)', 'count by ("ööö", job) (foo)'),
        ('foo / on("äää") group_left("ööö") bar', 'foo / on ("äää") group_left ("ööö") bar'),
        ("foo[300s] offset 90s @ 100", "foo[5m] @ 100.000 offset 1m30s"),
        ("foo offset -5m", "foo offset -5m"),
        ("foo[5m] anchored", "foo[5m] anchored"),
        ("foo smoothed", "foo smoothed"),
        ("rate(foo[5m])[1h:] @ end()", "rate(foo[5m])[1h:] @ end()"),
        ("foo[5m+1m:step()*2]", "foo[5m + 1m:step() * 2]"),
        ("foo[(1m+1m)*2]", "foo[(1m + 1m) * 2]"),
        ("foo offset -(step()*2)", "foo offset -(step() * 2)"),
        ("foo offset min_of(step(), 1s)", "foo offset min_of(step(), 1s)"),
        ("1.5 + .5 + 1e3 + 0x10", "1.5 + 0.5 + 1000 + 16"),
        ("5m", "5m"),
        ("-Inf", "-Inf"),
        ("NaN", "NaN"),
        ("'a\"b'", '"a\\"b"'),
        ('{"my.metric", "a.b"="c"}', '{"a.b"="c",__name__="my.metric"}'),
        ('sum by ("a.b") (x)', 'sum by ("a.b") (x)'),
        ("-(1)", "-(1)"),
        ("step()", "step()"),
    ],
)
def test_to_string(text: str, want: str) -> None:
    assert to_string(p(text)) == want


def test_format_duration() -> None:
    assert [format_duration(ms) for ms in (0, 90_000, 86_400_000 * 14, 86_400_000 * 10, 1500, -60_000)] == [
        "0s",
        "1m30s",
        "2w",
        "10d",
        "1s500ms",
        "-1m",
    ]
    assert duration_to_string(ast.DurBinary("^", ast.DurLit(-60_000), 2.0)) == "(-1m) ^ 2"


def test_prettify_short_stays_on_one_line() -> None:
    assert prettify(p("sum(rate(foo[5m]))")) == "sum(rate(foo[5m]))"


def test_prettify_splits_long_expressions() -> None:
    text = (
        'sum by (job) (rate(http_requests_total{job="api-server", handler="/api/v1/query"}[5m])) '
        '/ on (job) group_left sum by (job) (rate(http_requests_total{job="api-server"}[5m]))'
    )
    out = prettify(p(text))
    assert out.split("\n")[0].startswith("  sum by (job) (rate(http_requests_total{")
    assert "\n/ on (job) group_left ()\n" in out
    assert all(len(line) <= 100 for line in out.split("\n"))
    assert same_tree(p(out), p(text))


# Prometheus's prettier_test.go cases, which use a 10-character line limit.
PRETTY_CASES = [
    ("sum(foo)", "sum(foo)"),
    ('sum by() (task:errors:rate10s{job="s"})', 'sum(\n  task:errors:rate10s{job="s"}\n)'),
    (
        'sum(task:errors:rate10s{job="s"}) without(job,foo)',
        'sum without (job, foo) (\n  task:errors:rate10s{job="s"}\n)',
    ),
    ('topk(10, ask:errors:rate10s{job="s"})', 'topk(\n  10,\n  ask:errors:rate10s{job="s"}\n)'),
    (
        'sum by(job,foo) # Comment 1.\n(sum by(job,foo) ( # Comment 2.\ntask:errors:rate10s{job="s"}))',
        'sum by (job, foo) (\n  sum by (job, foo) (\n    task:errors:rate10s{job="s"}\n  )\n)',
    ),
    ("a+b", "a + b"),
    ("a == bool 1", "  a\n== bool\n  1"),
    ("a + ignoring(job) b", "  a\n+ ignoring (job)\n  b"),
    ("foo_1 + foo_2 + foo_3", "    foo_1\n  +\n    foo_2\n+\n  foo_3"),
    ("foo + baar + foo_3", "  foo + baar\n+\n  foo_3"),
    (
        "foo_1 + ignoring(foo) foo_2 + ignoring(job) group_left foo_3 + on(instance) group_right foo_4",
        "      foo_1\n    + ignoring (foo)\n      foo_2\n  + ignoring (job) group_left ()\n    foo_3\n"
        "+ on (instance) group_right ()\n  foo_4",
    ),
    ("rate(foo[1m])", "rate(\n  foo[1m]\n)"),
    (
        "rate(long_vector_selector[10m:1m] @ start() offset 1m)",
        "rate(\n  long_vector_selector[10m:1m] @ start() offset 1m\n)",
    ),
    (
        "max_over_time(rate(demo_api_request_duration_seconds_count[1m])[1m:] @ start() offset 1m)",
        "max_over_time(\n  rate(\n    demo_api_request_duration_seconds_count[1m]\n"
        "  )[1m:] @ start() offset 1m\n)",
    ),
    (
        'label_replace(up{job="api-server",service="a:c"}, "foo", "$1", "service", "(.*):.*")',
        'label_replace(\n  up{job="api-server",service="a:c"},\n'
        '  "foo",\n  "$1",\n  "service",\n  "(.*):.*"\n)',
    ),
    ("((foo_long))", "(\n  (foo_long)\n)"),
    ("(((foo_long)))", "(\n  (\n    (foo_long)\n  )\n)"),
    ("a @ 1", "a @ 1.000"),
    ("(1111 + 2222)", "(\n    1111\n  +\n    2222\n)"),
    ("-1", "-1"),
    ("(-vector_selector)", "(\n  -vector_selector\n)"),
    (
        "-histogram_quantile(0.9, -rate(foo[1m] @ start()))",
        "-histogram_quantile(\n  0.9,\n  -rate(\n    foo[1m] @ start()\n  )\n)",
    ),
    ("rate(foo[2*1h])", "rate(\n  foo[2 * 1h]\n)"),
    ("rate(foo[-5m+35m])", "rate(\n  foo[-5m + 35m]\n)"),
    (
        "(node_timex_offset_seconds > 0.05 and deriv(node_timex_offset_seconds[5m]) >= 0) or "
        "(node_timex_offset_seconds < -0.05 and deriv(node_timex_offset_seconds[5m]) <= 0)",
        "  (\n        node_timex_offset_seconds\n      >\n        0.05\n    and\n        deriv(\n"
        "          node_timex_offset_seconds[5m]\n        )\n      >=\n        0\n  )\nor\n  (\n"
        "        node_timex_offset_seconds\n      <\n        -0.05\n    and\n        deriv(\n"
        "          node_timex_offset_seconds[5m]\n        )\n      <=\n        0\n  )",
    ),
]


@pytest.mark.parametrize(("text", "want"), PRETTY_CASES)
def test_prettify_matches_prometheus(text: str, want: str) -> None:
    assert prettify(p(text), max_line=10) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("foo", "foo @ 100.000"),
        ("rate(foo[5m]) + bar @ 5", "rate(foo[5m] @ 100.000) + bar @ 5.000"),
        ("max_over_time(rate(x[1m])[5m:1m])", "max_over_time(rate(x[1m] @ 100.000)[5m:1m] @ 100.000)"),
        ("max_over_time(rate(x[1m])[5m:1m] @ end())", "max_over_time(rate(x[1m])[5m:1m] @ end())"),
        ("time() + 1", "time() + 1"),
    ],
)
def test_add_at_modifiers(text: str, want: str) -> None:
    printed = to_string(add_at_modifiers(p(text), 100_000))
    assert printed == want
    assert to_string(p(printed)) == printed
