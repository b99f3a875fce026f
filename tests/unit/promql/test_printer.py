"""Printer: Prometheus's String() forms, Pretty() and parse/print round trips."""

from __future__ import annotations

import pytest
from parser_corpus import conformance_expressions, same_tree

from signalfire.promql import ALL_FEATURES, ast, format_duration, parse_expr, prettify, to_string
from signalfire.promql.printer import duration_to_string


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
        ('foo{b="2",a="1"}', 'foo{a="1", b="2"}'),
        ("sum(x) by (job)", "sum by (job) (x)"),
        ("sum without(a,b)(x)", "sum without (a, b) (x)"),
        ("topk(3, x)", "topk(3, x)"),
        ("a + on(x) group_left(y) b", "a + on (x) group_left (y) b"),
        ("a > ignoring(x) group_right b", "a > ignoring (x) group_right () b"),
        ("a == bool b", "a == bool b"),
        ("a + fill(0) b", "a + fill(0) b"),
        ("a + fill_left(1) fill_right(2) b", "a + fill_left(1) fill_right(2) b"),
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
        ('{"my.metric", "a.b"="c"}', '{"a.b"="c", __name__="my.metric"}'),
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
