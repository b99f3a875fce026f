"""Parse time is linear in the input, whatever the input: about 1 MiB of adversarial text
must not take much longer than 1 MiB of ordinary valid text.

A backtracking regular expression (or a loop that rescans what it has read) is fast on
the inputs it was written for and exponential or quadratic on some near-valid ones: a
valid prefix repeated and then one corrupted token, or one line holding a long run of
digits, letters, escapes, spaces, braces or quotes. Every such body here is about 1 MiB
and goes through each parser (text, OpenMetrics by its line parser and by its sample-only
path, the PromQL lexer and parser); its time is compared with a valid body of the same
size parsed by the same parser. The bound (20 times the valid time plus half a second) is
generous enough not to flake on a busy machine and far below what an exponential or a
quadratic parse of 1 MiB takes (minutes to hours); an alarm stops the parse at the bound,
so a blow-up fails the test instead of hanging it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signalfire.exposition import parse_openmetrics, parse_text
from signalfire.promql import ALL_FEATURES, parse_expr
from signalfire.promql.parser.lexer import lex
from time_budget import cpu_seconds

MIB = 1 << 20
RATIO = 20.0
SLACK_S = 0.5


def timed(fn: Callable[[], object], limit_s: float) -> float:
    """CPU seconds ``fn`` took (``OVER`` past ``limit_s``). Whatever ``fn`` raises counts as
    its end: this test measures time; which errors the parsers raise is the fuzzers' business."""
    return cpu_seconds(fn, limit_s, expected=(Exception,))


def check_linear(parse: Callable[[Any], object], valid: Any, cases: Iterator[tuple[str, Any]]) -> None:
    """Each adversarial case within RATIO x the time of a valid body of its size + SLACK_S.

    The valid body's time is measured once (best of two) and scaled to each case's length:
    the valid parse is itself linear, so this is the time of a valid body of the same size.
    A case over the bound is measured a second time before it counts as a failure."""
    per_byte = min(timed(lambda: parse(valid), 60.0) for _ in range(2)) / len(valid)
    slow = []
    for name, body in cases:
        limit = RATIO * per_byte * len(body) + SLACK_S
        took = timed(lambda b=body: parse(b), limit)  # type: ignore[misc]
        if took > limit:
            took = timed(lambda b=body: parse(b), limit)  # type: ignore[misc]
        if took > limit:
            slow.append(f"{name} ({len(body)} bytes): over {limit:.2f} s")
    assert not slow, f"valid body {per_byte * MIB:.3f} s per MiB; slow:\n" + "\n".join(slow)


# -- exposition bodies ---------------------------------------------------------------------

#: One valid sample line per format and the tokens it is built from.
_NAME, _LABELS, _VALUE = "om_series_total", '{instance="x",job="j"}', "42"
_TS = {"text": "1700000000042", "om": "1700000000.042"}
#: Values of every form the value grammar has, for the repeated valid prefix: a run of digits
#: is what a regex with two quantifiers over digits splits in many ways.
_PREFIX_VALUES = ("1234567890", "12345", "1.5", "1e5", "-0.25e-3", ".5", "5.", "+Inf", "NaN")
#: Corrupted tokens for each production of a sample line.
_BAD = {
    "name": ("om_series!total", "9om", "om_séries", 'om"x'),
    "labels": (
        '{instance="x",job="j"',
        '{instance="x",,job="j"}',
        '{instance="x" job="j"}',
        '{instance=x,job="j"}',
        '{instance="x\\',
        '{9x="y"}',
        '{"instance"="x","om"}',
        '{instance="x",job="j"}}',
    ),
    "value": ("42o1700000000.042", "1234e", "1.2.3", "+-1", "nan1", "0x1p3", "", "1e+"),
    "ts": ("17000x", "1.2.3", "1e", "NaN", "1" * 30),
    "exemplar": ('# {a="b"} 1x', '# {a="b" 1', "# {a=} 1", "# 1", '# {a="b"} 1 2 3'),
}


def _line(fmt: str, value: str, *, name: str = _NAME, labels: str = _LABELS, ts: str | None = None) -> str:
    return f"{name}{labels} {value} {_TS[fmt] if ts is None else ts}"


def _valid_body(fmt: str, size: int = MIB) -> bytes:
    """Ordinary valid lines of about ``size`` bytes (values of many forms)."""
    lines = [_line(fmt, v) for v in _PREFIX_VALUES]
    block = "\n".join(lines) + "\n"
    body = block * (size // len(block) + 1)
    return (body + ("# EOF\n" if fmt == "om" else "")).encode()


def _wrap(fmt: str, text: str) -> bytes:
    return (text + ("\n# EOF\n" if fmt == "om" else "\n")).encode()


def _corrupted_lines(fmt: str) -> Iterator[tuple[str, str]]:
    for bad in _BAD["name"]:
        yield f"name {bad!r}", _line(fmt, "1", name=bad)
    for bad in _BAD["labels"]:
        yield f"labels {bad!r}", _line(fmt, "1", labels=bad)
    for bad in _BAD["value"]:
        yield f"value {bad!r}", _line(fmt, bad)
    for bad in _BAD["ts"]:
        yield f"ts {bad!r}", _line(fmt, "1", ts=bad)
    if fmt == "om":
        for bad in _BAD["exemplar"]:
            yield f"exemplar {bad!r}", _line(fmt, "1") + " " + bad


def _prefix_cases(fmt: str) -> Iterator[tuple[str, bytes]]:
    """A valid line repeated to ~1 MiB, then one corrupted line: for each value form of the
    prefix and each corrupted token (the batch checks look at all lines at once)."""
    for value in ("1234567890", "-0.25e-3", "NaN"):
        good = _line(fmt, value) + "\n"
        prefix = good * (MIB // len(good))
        for name, bad in _corrupted_lines(fmt):
            if value != "1234567890" and not name.startswith("value"):
                continue  # the other value forms only matter in front of a bad value
            yield f"{value!r} x {MIB // len(good)} then {name}", _wrap(fmt, prefix + bad)
    # The example, and the same with the corrupted line in the middle.
    good = _line(fmt, "42") + "\n"
    bad = _line(fmt, "42o1700000000.042") + "\n"
    half = good * (MIB // len(good) // 2)
    yield "bad line in the middle", _wrap(fmt, half + bad + half)


def _run_cases(fmt: str) -> Iterator[tuple[str, bytes]]:
    """One line (or one run of lines) of about 1 MiB: long runs inside each production."""
    n = MIB
    k = MIB // 8
    lines = {
        "name run": "a" * n + "! 1",
        "name run, no value": "a" * n,
        "digit run value": "m " + "1" * n + "x",
        "digit run value, valid": "m " + "1" * n,
        "digits and dots": "m " + "1." * (n // 2),
        "exponent digit run": "m 1e" + "1" * n + "e",
        "digit run timestamp": "m 1 " + "1" * n + "x",
        "digit run timestamp, dot": "m 1 " + "1" * n + ".",
        "many labels, no close": "m{" + 'a="b",' * k,
        "many labels, bad end": "m{" + 'a="b",' * k + "}x 1",
        "many labels, valid": "m{" + ",".join(f'a{i}="b"' for i in range(n // 10)) + "} 1",
        "escape run": 'm{a="' + "\\\\" * (n // 2) + '"} 1',
        "escaped quote run": 'm{a="' + '\\"' * (n // 2),
        "bad escape run": 'm{a="' + "\\" * n,
        "value run": 'm{a="' + "x" * n + '"} 1',
        "value run, no close": 'm{a="' + "x" * n,
        "quoted names": "{" + '"a",' * k + "} 1",
        "quoted names 2": '{"m",' + '"a"="b",' * k + "} 1",
        "spaces": " " * n,
        "spaces in sample": "m" + " " * n + "1",
        "tabs in sample": "m" + "\t" * n + "1 1",
        "spaces in braces": "m{" + " " * n + "}",
        "open braces": "{" * n,
        "close braces": "}" * n,
        "brace after name": "m" + "{" * n,
        "quotes": '"' * n,
        "quotes in braces": "m{" + '"' * n,
        "commas": "m{" + "," * n + "} 1",
        "equals": "m{a" + "=" * n,
        "hashes": "#" * n,
        "help text run": "# HELP m " + "x\\n" * (n // 3),
        "type run": "# TYPE m " + "x" * n,
        "help name run": "# HELP " + "a" * n,
        "unit run": "# UNIT m_" + "s" * n + " " + "s" * n,
        "comment run": "# " + "a " * (n // 2),
        "exemplar labels run": "m 1 # {" + 'a="b",' * k + "} 1",
        "exemplar bad run": "m 1 # {" + 'a="b",' * k,
        "exemplar value run": 'm 1 # {a="b"} ' + "1" * n + "x",
        "blank lines": "\n" * n,
        "dot runs": "m ." + "." * n,
        "sign runs": "m " + "+-" * (n // 2) + "1",
        "letters in value": "m " + "nN" * (n // 2),
        "inf run": "m " + "inf" * (n // 3),
    }
    for name, text in lines.items():
        yield name, _wrap(fmt, text)


def _parse_om(body: bytes) -> object:
    return parse_openmetrics(body)


def _parse_text(body: bytes) -> object:
    return parse_text(body)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "om"])
def test_exposition_prefix_then_corrupted_token(fmt: str) -> None:
    parse = _parse_om if fmt == "om" else _parse_text
    check_linear(parse, _valid_body(fmt), _prefix_cases(fmt))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "om"])
def test_exposition_long_runs(fmt: str) -> None:
    parse = _parse_om if fmt == "om" else _parse_text
    check_linear(parse, _valid_body(fmt), _run_cases(fmt))


@pytest.mark.slow
def test_openmetrics_sample_only_path() -> None:
    """Bodies of ``series value timestamp`` lines only take the sample-only path first (and
    fall back to the line parser when it declines): valid ones of every value and timestamp
    form, and ones whose last value or timestamp is corrupted."""
    valid = _valid_body("om")
    cases = []
    forms = (("1234567890", "1700000000.042"), ("1.5", "1700000000.5"), ("-0.25e-3", "1.7e9"), ("NaN", "17"))
    for value, ts in forms:
        good = _line("om", value, ts=ts) + "\n"
        prefix = good * (MIB // len(good))
        cases.append((f"{value!r} {ts!r} valid", (prefix + "# EOF\n").encode()))
        cases.append((f"{value!r} {ts!r} then a bad value", _wrap("om", prefix + _line("om", "42o17.042"))))
        cases.append((f"{value!r} {ts!r} then a bad ts", _wrap("om", prefix + _line("om", "1", ts="1.2.3"))))
    check_linear(_parse_om, valid, iter(cases))


# -- PromQL --------------------------------------------------------------------------------


def _parse_query(q: str) -> object:
    lex(q)
    return parse_expr(q, features=ALL_FEATURES)


def _promql_cases() -> Iterator[tuple[str, str]]:
    """Runs inside each token kind at 1 MiB; structures (chains, nesting, lists), where the
    parser does work per token, at 1/8 MiB to keep the test short (the bound scales)."""
    n = MIB
    yield from {
        "digit run then letter": "1" * n + "x",
        "octal run, bad end": "0" + "7" * n + "8",
        "underscore run, bad": "1" + "_1" * (n // 2) + "_",
        "hex run": "0x" + "f" * n,
        "exponent run": "1e" + "1" * n + "e",
        "identifier run, bad": "a" * n + "$",
        "metric identifier run": "a:" * (n // 2),
        "non-ASCII": "é" * (n // 2),
        "string, no close": '"' + "a" * n,
        "escape run": '"' + "\\\\" * (n // 2) + '"',
        "escaped quote run": '"' + '\\"' * (n // 2),
        "unicode escapes": '"' + "\\u00e9" * (n // 6) + '"',
        "raw string, no close": "`" + "a" * n,
        "spaces": " " * n + "x",
        "comment": "#" * n,
        "one long regex": 'x{a=~"' + "(a|b)*" * (n // 6) + '"}',
        "duration run, bad": "x[" + "1h30m" * (n // 5) + "x]",
        "offset digits": "x offset " + "1" * n + "s",
    }.items()
    n = MIB // 8
    yield from {
        "binary chain": "x" + " + x" * (n // 4),
        "or chain": "x" + " or x" * (n // 5),
        "unary chain": "-" * n + "x",
        "parens": "(" * n,
        "brackets": "x" + "[" * n,
        "braces": "{" * n,
        "matchers, no close": "x{" + 'a="b",' * (n // 6),
        "regex matchers": "x{" + 'a=~"b|c",' * (n // 10) + "}",
        "nested regex": 'x{a=~"' + "(" * (n // 4) + "a" + ")" * (n // 4) + '"}',
        "grouping labels, no close": "sum by (" + "a," * (n // 2),
        "function args": "label_join(x, " + '"a", ' * (n // 5) + '"b")',
        "at run": "x" + " @ 1" * (n // 4),
        "duration arithmetic": "x[" + "5m+" * (n // 3) + "5m]",
        "subquery steps": "x[5m:" + "1m" * (n // 2) + "]",
    }.items()


@pytest.mark.slow
def test_promql_long_queries() -> None:
    # A valid query (1/4 MiB; the bound scales): a selector with many matchers, so names,
    # strings, operators and punctuation, the token mix of a typical query.
    valid = "x{" + ", ".join(f'l{i}="v{i}"' for i in range(MIB // 52)) + "}"
    check_linear(_parse_query, valid, _promql_cases())
