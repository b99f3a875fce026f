"""Parser: trees, feature gates, type checks and Prometheus's error texts and positions."""

from __future__ import annotations

import math

import pytest
from parser_corpus import conformance_expressions

from signalfire.errors import PromQLParseError
from signalfire.labels import Matcher, MatchType
from signalfire.promql import ALL_FEATURES, ast, parse_duration, parse_expr, parse_metric_selector
from signalfire.promql.parser import position_of


def p(text: str, **kw: object) -> ast.Expr:
    return parse_expr(text, features=ALL_FEATURES, **kw)  # type: ignore[arg-type]


def err(text: str, features: frozenset[str] = ALL_FEATURES) -> str:
    with pytest.raises(PromQLParseError) as info:
        parse_expr(text, features=features)
    e = info.value
    assert e.line >= 1 and e.column >= 1 and 0 <= e.offset <= len(text.encode())
    assert str(e).startswith(f"{e.line}:{e.column}: parse error: ")
    return str(e)


def test_conformance_scripts_found() -> None:
    assert len(conformance_expressions()) >= 2000


def test_every_conformance_expression_parses() -> None:
    failures = []
    for where, text in conformance_expressions():
        try:
            p(text)
        except PromQLParseError as e:
            failures.append(f"{where}: {text!r}: {e}")
    assert not failures, "\n".join(failures[:20])


# ------------------------------------------------------------------ trees


def test_selector_with_matchers() -> None:
    e = p('http_requests_total{job="api", code=~"5..", x!="", y!~"a|b"}')
    assert isinstance(e, ast.VectorSelector)
    assert e.name == "http_requests_total"
    assert [(m.name, m.type) for m in e.matchers] == [
        ("job", MatchType.EQUAL),
        ("code", MatchType.REGEX),
        ("x", MatchType.NOT_EQUAL),
        ("y", MatchType.NOT_REGEX),
        ("__name__", MatchType.EQUAL),
    ]
    assert (e.pos, e.end) == (0, 60)


def test_utf8_quoted_names() -> None:
    e = p('{"my.metric", "a.b"="c"}')
    assert isinstance(e, ast.VectorSelector)
    assert e.name == ""
    assert Matcher(MatchType.EQUAL, "__name__", "my.metric") in e.matchers
    assert Matcher(MatchType.EQUAL, "a.b", "c") in e.matchers
    g = p('sum by ("a.b", job) (x)')
    assert isinstance(g, ast.AggregateExpr) and g.grouping == ["a.b", "job"]


def test_range_subquery_offset_at() -> None:
    e = p("rate(foo[5m] offset -1m @ 100)")
    assert isinstance(e, ast.Call)
    ms = e.args[0]
    assert isinstance(ms, ast.MatrixSelector)
    assert ms.range == ast.DurLit(300_000)
    assert ms.vector.offset == ast.DurLit(-60_000)
    assert (ms.vector.at, ms.vector.at_ms) == (ast.AtKind.TIMESTAMP, 100_000)
    sq = p("max_over_time(rate(foo[1m])[1h:5m] @ end())").args[0]  # type: ignore[union-attr]
    assert isinstance(sq, ast.SubqueryExpr)
    assert (sq.range, sq.step, sq.at) == (ast.DurLit(3_600_000), ast.DurLit(300_000), ast.AtKind.END)
    assert p("foo[10m:]").step is None  # type: ignore[union-attr]
    assert p("foo @ start()").at is ast.AtKind.START  # type: ignore[union-attr]
    assert p("foo @ 1m40s").at_ms == 100_000  # type: ignore[union-attr]
    assert p("foo @ -1.5").at_ms == -1500  # type: ignore[union-attr]


def test_duration_expressions() -> None:
    ms = p("foo[5m+1m]")
    assert isinstance(ms, ast.MatrixSelector)
    assert ms.range == ast.DurBinary("+", ast.DurLit(300_000), ast.DurLit(60_000))
    assert ast.eval_duration(ms.range, 0, 0) == 360_000
    sq = p("foo[step()*2:step()]")
    assert isinstance(sq, ast.SubqueryExpr) and sq.step == ast.DurStep()
    assert ast.eval_duration(sq.range, 15_000, 0) == 30_000
    assert p("foo[10]").range == ast.DurLit(10_000)  # type: ignore[union-attr]
    off = p("foo offset -min_of(step(), 1s)").offset  # type: ignore[union-attr]
    assert off == ast.DurUnary("-", ast.DurCall("min_of", (ast.DurStep(), ast.DurLit(1000))))
    # offset takes one atom; the rest of the arithmetic applies to the vector.
    b = p("foo offset 100 + 2")
    assert isinstance(b, ast.BinaryExpr) and b.lhs.offset == ast.DurLit(100_000)  # type: ignore[union-attr]
    assert isinstance(p("step()"), ast.DurationExpr)
    assert isinstance(p("range() + 1"), ast.BinaryExpr)


def test_precedence_and_associativity() -> None:
    e = p("a + b * c ^ d ^ e")
    assert isinstance(e, ast.BinaryExpr) and e.op == "+"
    mul = e.rhs
    assert isinstance(mul, ast.BinaryExpr) and mul.op == "*"
    pow1 = mul.rhs
    assert isinstance(pow1, ast.BinaryExpr) and pow1.op == "^" and isinstance(pow1.rhs, ast.BinaryExpr)
    u = p("-a ^ b")
    assert isinstance(u, ast.UnaryExpr) and isinstance(u.expr, ast.BinaryExpr)
    u2 = p("-a * b")
    assert isinstance(u2, ast.BinaryExpr) and isinstance(u2.lhs, ast.UnaryExpr)
    o = p("a or b and c unless d == bool e")
    assert isinstance(o, ast.BinaryExpr) and o.op == "or"
    assert p("a AND b").op == "and"  # type: ignore[union-attr]
    assert p("a </ 1").op == "</"  # type: ignore[union-attr]


def test_vector_matching_and_fill() -> None:
    e = p("a * on(x, y) group_left(z) fill(0) b")
    assert isinstance(e, ast.BinaryExpr) and e.matching is not None
    vm = e.matching
    assert (vm.on, vm.labels, vm.include, vm.card) == (True, ["x", "y"], ["z"], ast.Cardinality.MANY_TO_ONE)
    assert (vm.fill_left, vm.fill_right) == (0.0, 0.0)
    f = p("a + fill_left(5) fill_right(-Inf) b").matching  # type: ignore[union-attr]
    assert f.fill_left == 5.0 and f.fill_right == -math.inf
    assert p("a and b").matching.card is ast.Cardinality.MANY_TO_MANY  # type: ignore[union-attr]
    assert p("a + 1").matching is None  # type: ignore[union-attr]
    # "fill" without a parenthesis is a metric name.
    assert isinstance(p("other + fill").rhs, ast.VectorSelector)  # type: ignore[union-attr]


def test_aggregations() -> None:
    a = p("sum without (a) (x)")
    assert isinstance(a, ast.AggregateExpr) and a.without and a.grouping == ["a"]
    b = p("SUM(x) BY (job)")
    assert isinstance(b, ast.AggregateExpr) and b.op == "sum" and b.by_given and b.grouping == ["job"]
    c = p('count_values("v", x)')
    assert isinstance(c, ast.AggregateExpr) and isinstance(c.param, ast.StringLiteral)
    d = p("topk by (a) (3, x)")
    assert isinstance(d, ast.AggregateExpr) and isinstance(d.param, ast.NumberLiteral)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x1F", 31.0),
        ("017", 15.0),
        ("1_000", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("-2.5e-1", -0.25),
        ("+Inf", math.inf),
        ("-inF", -math.inf),
        ("1h30m", 5400.0),
        ("-5m", -300.0),
    ],
)
def test_numbers(text: str, value: float) -> None:
    e = p(text)
    assert isinstance(e, ast.NumberLiteral) and e.value == value


def test_nan_and_string() -> None:
    assert math.isnan(p("NaN").value)  # type: ignore[union-attr]
    assert p("'a\\tb'").value == "a\tb"  # type: ignore[union-attr]


def test_positions() -> None:
    e = p("sum(rate(foo[5m])) + bar")
    assert isinstance(e, ast.BinaryExpr)
    assert (e.lhs.pos, e.lhs.end, e.rhs.pos, e.rhs.end) == (0, 18, 21, 24)
    assert position_of("a\nbc", 3) == (2, 2)
    assert position_of("é x", 3) == (1, 4)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1:1: parse error: no expression found in input"),
        ("count by (a) by (b) (x)", "1:14: parse error: unexpected <by> in aggregation"),
        ("sum by (foo)", "1:13: parse error: unexpected end of input in aggregation"),
        ("1 and 1", '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
        ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
        ("a + bool b", "1:3: parse error: bool modifier can only be used on comparison operators"),
        ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ('{a=""}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        (
            "rate(some_metric)",
            '1:6: parse error: expected type range vector in call to function "rate", got instant vector',
        ),
        ("sum(1)", "1:5: parse error: expected type instant vector in aggregation expression, got scalar"),
        ('topk("a", x)', "1:6: parse error: expected type scalar in aggregation parameter, got string"),
        ("abs()", '1:1: parse error: expected 1 argument(s) in call to "abs", got 0'),
        ("round(x, 1, 2)", '1:1: parse error: expected at most 2 argument(s) in call to "round", got 3'),
        ("label_join(x)", '1:1: parse error: expected at least 3 argument(s) in call to "label_join", got 1'),
        (
            '-"s"',
            "1:1: parse error: unary expression only allowed on expressions of type scalar or instant "
            'vector, got "string"',
        ),
        ('"a" + 1', "1:1: parse error: binary expression must contain only scalar and instant vector types"),
        ("(foo)[5m]", "1:6: parse error: ranges only allowed for vector selectors"),
        ("foo offset 1m[5m]", "1:14: parse error: no offset modifiers allowed before range"),
        ("foo @ 1 [5m]", "1:9: parse error: no @ modifiers allowed before range"),
        ("foo offset 1h offset 1h", "1:1: parse error: offset may not be set multiple times"),
        ("foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        (
            "rate(foo[5m]) offset 5m",
            "1:1: parse error: offset modifier must be preceded by an instant vector selector "
            "or range vector selector or a subquery",
        ),
        ("foo @ bar", '1:7: parse error: unexpected identifier "bar" in @, expected timestamp'),
        (
            "foo offset bar",
            '1:12: parse error: unexpected identifier "bar" in offset, '
            "expected number, duration, step(), or range()",
        ),
        ("foo[5m][1m:]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
        ('foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'),
        ("a and on(x) group_left b", '1:1: parse error: no grouping allowed for "and" operation'),
        (
            "a + on(x) group_left(x) b",
            '1:3: parse error: label "x" must not occur in ON and GROUP clause at once',
        ),
        ("1 + on(x) 2", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("a and fill(0) b", "1:1: parse error: filling in missing series not allowed for set operators"),
        ("foo{a}", '1:6: parse error: unexpected "}" in label matching, expected label matching operator'),
        ("foo{a=}", '1:7: parse error: unexpected "}" in label matching, expected string'),
        ("sum(a) by", '1:10: parse error: unexpected end of input in grouping opts, expected "("'),
        ("rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args"),
        ("unknownfn(x)", '1:1: parse error: unknown function with name "unknownfn"'),
        ("foo bool bar", "1:5: parse error: unexpected <bool>"),
        ("1 +", "1:4: parse error: unexpected end of input"),
        ("x{", "1:3: parse error: unexpected end of input inside braces"),
        # From Prometheus's parse_test.go.
        ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
        ("((1)", "1:5: parse error: unclosed left parenthesis"),
        (".", "1:1: parse error: unexpected character: '.'"),
        ("2.5.", '1:1: parse error: bad number or duration syntax: "2.5."'),
        ("100..4", '1:1: parse error: bad number or duration syntax: "100.."'),
        ("0deadbeef", '1:1: parse error: bad number or duration syntax: "0de"'),
        ("*1", "1:1: parse error: unexpected <op:*>"),
        ("@@", "1:1: parse error: unexpected <op:@>"),
        ("-=", '1:2: parse error: unexpected "="'),
        ("++-++-+-+-<", "1:11: parse error: unexpected <op:<>"),
        ("a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"),
        (
            "-test[5m]",
            "1:1: parse error: unary expression only allowed on expressions of type scalar or "
            'instant vector, got "range vector"',
        ),
        ("foo @ +Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
        ("foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"),
        ("some}", "1:5: parse error: unexpected character: '}'"),
        (
            "some_metric{a=b}",
            '1:15: parse error: unexpected identifier "b" in label matching, expected string',
        ),
        ('some_metric{a:b="b"}', "1:14: parse error: unexpected character inside braces: ':'"),
        ('foo{a>="b"}', "1:6: parse error: unexpected character inside braces: '>'"),
        ("foo{,}", '1:5: parse error: unexpected "," in label matching, expected identifier or "}"'),
        ('foo{__name__ == "bar"}', '1:15: parse error: unexpected "=" in label matching, expected string'),
        (
            'foo{__name__="bar" lol}',
            '1:20: parse error: unexpected identifier "lol" in label matching, expected "," or "}"',
        ),
        ("foo[5mm]", '1:5: parse error: bad number or duration syntax: "5mm"'),
        ("foo[5m1]", '1:5: parse error: bad number or duration syntax: "5m1"'),
        ("foo[5y1hs]", '1:5: parse error: unknown unit "hs" in duration "5y1hs"'),
        ("foo[5m1h]", '1:5: parse error: not a valid duration string: "5m1h"'),
        ("foo[0m]", "1:5: parse error: duration must be greater than 0"),
        ("foo[-1]", "1:5: parse error: duration must be greater than 0"),
        ('foo["5m"]', "1:5: parse error: unexpected character in duration expression: '\"'"),
        (
            "foo[]",
            '1:5: parse error: unexpected "]" in subquery or range selector, expected number, duration, '
            "step(), or range()",
        ),
        (
            "foo[step]",
            '1:9: parse error: unexpected "]" in subquery or range selector, expected number, '
            "duration, step(), or range()",
        ),
        ("foo[step()/0d]", "1:11: parse error: division by zero"),
        ("foo[5s%0d]", "1:7: parse error: modulo by zero"),
        ("foo offset (4d/0)", "1:15: parse error: division by zero"),
        ("foo offset 9.5e10", "1:12: parse error: duration out of range"),
        ("foo[5s x 5s]", "1:8: parse error: unexpected character: 'x', expected ':'"),
        (
            "some_metric[5m] OFFSET",
            "1:23: parse error: unexpected end of input in offset, expected number, "
            "duration, step(), or range()",
        ),
        ("some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range"),
        (
            "sum without(==)(some_metric)",
            "1:13: parse error: unexpected <op:==> in grouping opts, expected label",
        ),
        (
            "sum without(foo,,)(some_metric)",
            '1:17: parse error: unexpected "," in grouping opts, expected label',
        ),
        ("sum some_metric by (test)", '1:5: parse error: unexpected identifier "some_metric"'),
        (
            "sum (some_metric) by test",
            '1:22: parse error: unexpected identifier "test" in grouping opts, expected "("',
        ),
        ("sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"),
        ("sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"),
        (
            "topk(some_metric)",
            "1:1: parse error: wrong number of arguments for aggregate expression provided, "
            "expected 2, got 1",
        ),
        ("topk(some_metric,)", "1:17: parse error: trailing commas not allowed in function call args"),
        (
            "rate(some_metric[5m]) @ 1234",
            "1:1: parse error: @ modifier must be preceded by an instant vector "
            "selector or range vector selector or a subquery",
        ),
        (
            "floor(1)",
            '1:7: parse error: expected type instant vector in call to function "floor", got scalar',
        ),
        ("hour(a, b, c)", '1:1: parse error: expected at most 1 argument(s) in call to "hour", got 3'),
        ("a>b()", '1:3: parse error: unknown function with name "b"'),
        (
            "rate(avg)",
            '1:6: parse error: expected type range vector in call to function "rate", got instant vector',
        ),
        ("sum(rate(", "1:10: parse error: unclosed left parenthesis"),
        ('"\\c"', "1:1: parse error: unknown escape sequence U+0063 'c'"),
        ('"\\x."', "1:1: parse error: illegal character U+002E '.' in escape sequence"),
        ("rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector selectors"),
        (
            'foo{a="b" by}',
            '1:11: parse error: unexpected identifier "by" in label matching, expected "," or "}"',
        ),
        ('foo{a="b"} by', "1:12: parse error: unexpected <by>"),
        ('foo{a=~"(.*"}', "1:5: parse error: error parsing regexp: missing closing ): `(.*`"),
        ('{a!~"a["}', "1:2: parse error: error parsing regexp: missing closing ]: `[`"),
        ('{a=~"*a"}', "1:2: parse error: error parsing regexp: missing argument to repetition operator: `*`"),
        ('{a=~"\\xff"}', "1:2: parse error: error parsing regexp: invalid UTF-8: `\\xff`"),
        (
            "999" * 110,
            '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "'
            + "999" * 110
            + '": value out of range',
        ),
        ("foo\n  + $", "2:5: parse error: unexpected character: '$'"),
        (
            "foo @ 1e30",
            "1:1: parse error: timestamp out of bounds for @ modifier: "
            "1000000000000000019884624838656.000000",
        ),
        ("foo[1.5h]", '1:5: parse error: unknown unit "." in duration "1.5h"'),
        (
            "foo[5m] smoothed anchored",
            "1:1: parse error: anchored and smoothed modifiers cannot be used together",
        ),
        ("foo[5m:1m] anchored", "1:1: parse error: anchored modifier is not supported for subqueries"),
        ("info(x, y)", "1:9: parse error: expected label selectors only, got vector selector instead"),
        (
            "info(x, 1)",
            '1:1: parse error: expected type instant vector in call to function "info", got scalar',
        ),
        (
            "((((((((((" * 20 + "x" + "))))))))))" * 20,
            "1:101: parse error: expression nested too deeply (more than 100 levels)",
        ),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    assert err(text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "limitk(1, x)",
            "limitk() is experimental and must be enabled with "
            "--enable-feature=promql-experimental-functions",
        ),
        (
            "double_exponential_smoothing(x[5m], 0.1, 0.1)",
            'function "double_exponential_smoothing" is not enabled',
        ),
        ('sort_by_label(x, "a")', 'function "sort_by_label" is not enabled'),
        ("mad_over_time(x[5m])", 'function "mad_over_time" is not enabled'),
        ("info(x)", 'function "info" is not enabled'),
        ("start()", 'function "start" is not enabled'),
        ("foo[step()]", 'function "step" is not enabled'),
        ("foo[5m] anchored", "anchored modifier is experimental and not enabled"),
        ("foo[5m] smoothed", "smoothed modifier is experimental and not enabled"),
        ("a + fill(0) b", "binop fill modifiers are experimental and not enabled"),
    ],
)
def test_experimental_features_are_gated(text: str, message: str) -> None:
    assert err(text, frozenset()).endswith(message)
    p(text)


def test_stable_features_need_no_flag() -> None:
    for text in ("first_over_time(x[5m])", "x[5m+1m]", "x offset (1m*2)", "foo @ 10", "x offset -5m"):
        parse_expr(text)


def test_long_operator_chain_is_an_error_not_a_crash() -> None:
    parse_expr(" + ".join(["x"] * 200))
    assert "nested too deeply" in err(" + ".join(["x"] * 2000))


def test_parse_metric_selector() -> None:
    assert parse_metric_selector('up{job="x"}') == [
        Matcher.equal("job", "x"),
        Matcher.equal("__name__", "up"),
    ]
    assert parse_metric_selector('{"my.metric"}') == [Matcher.equal("__name__", "my.metric")]
    with pytest.raises(PromQLParseError):
        parse_metric_selector("rate(x[5m])")


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("250ms", 250),
        ("1y", 31_536_000_000),
        ("2w1d", 1_296_000_000),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration string"),
        ("5", 'not a valid duration string: "5"'),
        ("1m1h", 'not a valid duration string: "1m1h"'),
        ("1s1s", 'not a valid duration string: "1s1s"'),
        ("-5m", 'not a valid duration string: "-5m"'),
        ("5x", 'unknown unit "x" in duration "5x"'),
        ("5y1hs", 'unknown unit "hs" in duration "5y1hs"'),
        ("300000000y", "duration out of range"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    from signalfire.errors import ParseError

    with pytest.raises(ParseError) as info:
        parse_duration(text)
    assert info.value.message == message
