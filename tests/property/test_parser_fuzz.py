"""Fuzz the PromQL parser: 100,000 mutated and random queries, fixed seed.

Whatever the input, the parser may only succeed or raise PromQLParseError with a valid
position; anything else (IndexError, RecursionError, AssertionError, ...) is a bug. Every
query that parses must also print and parse back to the same tree. Each parse runs under
a CPU-time budget (a query of a few kilobytes that takes over a second is a failure,
reported with the query); one round in ten is a long valid query (several corpus queries
joined by binary operators) with the mutation at its end, so a parser that rescans or
backtracks over what it has read would show up.
"""

from __future__ import annotations

import random
import re
import time

import pytest

from shared_data import PROMQLTEST
from signalfire.errors import PromQLParseError
from signalfire.promql import ALL_FEATURES, iter_children, parse_expr, prettify, to_string
from signalfire.promql.ast import Expr
from time_budget import OVER, cpu_seconds

SCRIPTS = PROMQLTEST
_EVAL = re.compile(r"^eval\S*\s+(?:instant\s+at\s+\S+|range\s+from\s+\S+\s+to\s+\S+\s+step\s+\S+)\s+(.*)$")

ROUNDS = 100_000
FRAGMENTS = [
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "@",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "</",
    ">/",
    "=",
    "=~",
    "!~",
    "!",
    "~",
    '"',
    "'",
    "`",
    "#",
    "\\",
    ".",
    "_",
    "0x",
    "1e",
    "5m",
    "1h30m",
    "0",
    "1.5",
    ".5",
    "5.",
    "Inf",
    "NaN",
    "-Inf",
    "foo",
    "bar:baz",
    "__name__",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "sum",
    "topk",
    "count_values",
    "limitk",
    "rate",
    "label_replace",
    "info",
    "histogram_quantiles",
    "step()",
    "range()",
    "start()",
    "end()",
    "min_of",
    "max_of",
    "fill",
    "fill_left(1)",
    "fill_right",
    "anchored",
    "smoothed",
    "@st",
    'x{a="b"}',
    "[5m:1m]",
    "é",
    "\udcff",
    "\x00",
    "\t",
    "\n",
    " ",
    "9" * 400,
    "1e999",
    "0x" + "f" * 20,
    "[0s]",
    "/0",
]


def corpus() -> list[str]:
    out = []
    for path in sorted(SCRIPTS.glob("*.test")):
        for line in path.read_text().split("\n"):
            m = _EVAL.match(line.strip(" \t"))
            if m:
                out.append(m.group(1))
    return out


def mutate(rng: random.Random, q: str) -> str:
    """One to three random edits: delete, insert, replace, duplicate or splice."""
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(q))
        j = min(len(q), i + rng.randint(0, 6))
        r = rng.random()
        if r < 0.25:
            q = q[:i] + q[j:]
        elif r < 0.55:
            q = q[:i] + rng.choice(FRAGMENTS) + q[i:]
        elif r < 0.75:
            q = q[:i] + rng.choice(FRAGMENTS) + q[j:]
        elif r < 0.9:
            q = q[:i] + q[i:j] * rng.randint(2, 4) + q[j:]
        else:
            q = q[:i]
    return q


def long_then_mutated(rng: random.Random, base: list[str]) -> str:
    """5 to 20 corpus queries joined by binary operators, then one mutated query."""
    parts = [f"({rng.choice(base)})" for _ in range(rng.randint(5, 20))]
    ops = [rng.choice([" + ", " or ", " and ", " / ", " > bool "]) for _ in parts]
    return "".join(p + o for p, o in zip(parts, ops)) + mutate(rng, rng.choice(base))


#: CPU seconds one parse of one fuzz query may take (they are a few kilobytes at most).
BUDGET_S = 1.0


def random_query(rng: random.Random) -> str:
    return "".join(rng.choice(FRAGMENTS) + rng.choice(["", " "]) for _ in range(rng.randint(1, 15)))


def check_one(q: str) -> bool:
    """Parse ``q`` within BUDGET_S of CPU time; True when it parsed (and then must round-trip
    through the printer)."""
    out: list[Expr | PromQLParseError] = []

    def run() -> None:
        try:
            out.append(parse_expr(q, features=ALL_FEATURES))
        except PromQLParseError as e:
            out.append(e)

    assert cpu_seconds(run, BUDGET_S) != OVER, f"parsing ran over {BUDGET_S} s of CPU on {q!r}"
    tree = out[0]
    if isinstance(tree, PromQLParseError):
        e = tree
        size = len(q.encode("utf-8", "surrogatepass"))
        assert e.line >= 1 and e.column >= 1 and 0 <= e.offset <= size, (q, str(e))
        assert str(e).startswith(f"{e.line}:{e.column}: parse error: "), (q, str(e))
        return False
    size = len(q.encode("utf-8", "surrogatepass"))
    stack = [(tree, 0, size)]
    while stack:  # every node lies within the text and within its parent
        node, lo, hi = stack.pop()
        assert lo <= node.pos <= node.end <= hi, (q, type(node).__name__, node.pos, node.end)
        stack.extend((child, node.pos, node.end) for child in iter_children(node))
    printed = to_string(tree)
    try:
        again = parse_expr(printed, features=ALL_FEATURES)
    except PromQLParseError as e:
        raise AssertionError(f"{q!r} printed as {printed!r}, which does not parse: {e}") from e
    assert to_string(again) == printed, (q, printed)
    return True


@pytest.mark.slow
def test_fuzz_parser_raises_only_parse_errors() -> None:
    rng = random.Random(20260823)
    base = corpus()
    assert len(base) > 2000
    parsed = 0
    started = time.perf_counter()
    for n in range(ROUNDS):
        if n % 10 == 0:
            q = random_query(rng)
        elif n % 10 == 5:
            q = long_then_mutated(rng, base)
        else:
            q = mutate(rng, rng.choice(base))
        parsed += check_one(q)
    elapsed = time.perf_counter() - started
    # A good share of mutants must still parse, or the fuzzer is only testing the lexer.
    assert parsed > ROUNDS // 20
    # About 10 s on an idle core. The bound only catches pathological (e.g. exponential)
    # parsing; a loaded CI machine must not make it flaky.
    assert elapsed < 240, f"fuzz run took {elapsed:.1f}s"


def test_deep_nesting_is_a_parse_error() -> None:
    deep = [
        "(" * 5000 + "x" + ")" * 5000,
        "-" * 5000 + "x",
        "x" + "^x" * 5000,
        "sum(" * 3000 + "x" + ")" * 3000,
        "x[" + "(" * 3000 + "1" + ")" * 3000 + "]",
        " + ".join(["x"] * 20000),
    ]
    for q in deep:
        with pytest.raises(PromQLParseError, match="nested too deeply"):
            parse_expr(q, features=ALL_FEATURES)


def grammar_query(rng: random.Random, depth: int = 0) -> str:
    """A random query built from the grammar, so most of them are valid PromQL."""
    leaf = depth > 4 or rng.random() < 0.3
    if leaf:
        return rng.choice(
            [
                "x",
                'x{a="b"}',
                '{"a.b"="c", d!~"e|f"}',
                "1",
                "-2.5",
                "0x1f",
                "Inf",
                "NaN",
                "5m",
                "x offset -5m",
                "x @ 10",
                "x @ end()",
                "step()",
                "time()",
                '"s"',
            ]
        )
    sub = lambda: grammar_query(rng, depth + 1)  # noqa: E731
    kind = rng.randrange(9)
    if kind == 0:
        op = rng.choice(
            ["+", "-", "*", "/", "%", "^", "atan2", "==", "!= bool", "> bool", "and", "or", "unless"]
        )
        mod = rng.choice(
            ["", "", " on(a)", " ignoring(a, b)", " on(a) group_left(c)", " ignoring(a) group_right"]
        )
        fill = rng.choice(["", "", " fill(0)", " fill_left(-1) fill_right(2)"])
        return f"{sub()} {op}{mod}{fill} {sub()}"
    if kind == 1:
        return f"({sub()})"
    if kind == 2:
        return f"-{sub()}"
    if kind == 3:
        agg = rng.choice(["sum", "avg", "count", "max by (a)", "min without (b)", "group"])
        return f"{agg}({sub()})"
    if kind == 4:
        return f"topk({rng.choice(['1', '2 + 1', 'scalar(x)'])}, {sub()})"
    if kind == 5:
        rng_text = rng.choice(["5m", "1h30m", "10", "5m+1m", "step()*2", "(1m)", "-1m + 2m"])
        mod = rng.choice(["", " anchored", " smoothed", " offset 1m", " @ 5 offset -1s"])
        return f"{rng.choice(['rate', 'increase', 'delta'])}(x[{rng_text}]{mod})"
    if kind == 6:
        step = rng.choice(["", "1m", "step()"])
        return f"max_over_time(({sub()})[10m:{step}] offset {rng.choice(['1m', '-(2*30s)', 'step()'])})"
    if kind == 7:
        return f"{rng.choice(['abs', 'ceil', 'sort', 'absent'])}({sub()})"
    return f'label_replace({sub()}, "dst", "$1", "src", "(.*)")'


def test_grammar_generated_queries_round_trip() -> None:
    rng = random.Random(7)
    parsed = 0
    for _ in range(5000):
        q = grammar_query(rng)
        if check_one(q):
            parsed += 1
            # The multi-line form must read back as the same one-line form too.
            pretty = prettify(parse_expr(q, features=ALL_FEATURES), max_line=20)
            assert to_string(parse_expr(pretty, features=ALL_FEATURES)) == to_string(
                parse_expr(q, features=ALL_FEATURES)
            ), (q, pretty)
    assert parsed > 1000


# ---------------------------------------------------------------- numeric extremes and nesting

_NUMERIC_TOKEN = re.compile(r"(?<![\w.])(?:\d[\w.]*|\.\d+\w*)")


def _extreme_number(rng: random.Random) -> str:
    k = rng.choice([18, 19, 20, 21, 22, 308, 309, 400, 4301])
    return rng.choice(
        [
            "9" * k,
            "0" + "7" * k,
            "0" + "1" * k,
            "0x" + "f" * k,
            "0b" + "1" * k,
            "0o" + "7" * k,
            "1_" * k + "1",
            f"1e{rng.choice([308, 309, 400, 99999, -400])}",
            "0." + "0" * k + "1",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            rng.choice(["Inf", "-Inf", "NaN", "+inf"]),
        ]
    )


def _extreme_duration(rng: random.Random) -> str:
    k = rng.choice([12, 13, 16, 19, 20, 21, 400, 4301])
    unit = rng.choice(["y", "w", "d", "h", "m", "s", "ms"])
    return rng.choice(
        [
            "9" * k + unit,
            "292y",
            "293y",
            "292y24w",
            "9223372036854775807ms",
            "9223372036854775s",
            "1y1w1d1h1m1s1ms",
            "0" * k + "5m",
            _extreme_number(rng),
        ]
    )


def _extreme_duration_expr(rng: random.Random) -> str:
    d = _extreme_duration(rng)
    k = rng.choice([2, 99, 100, 101, 249, 250, 251, 1200])
    return rng.choice(
        [
            d,
            f"{d} * {_extreme_number(rng)}",
            f"10 ^ {rng.choice(['308', '309', '400', '0.5', '-400'])}",
            f"(-1m) ^ {rng.choice(['0.5', '1e300'])}",
            "5m" + " + 5m" * k,
            "(" * k + "5m" + ")" * k,
            "-" * k + "5m",
            f"step() * {_extreme_number(rng)}",
            f"5m / (step() - step()) + {d}",
            f"max_of({d}, {_extreme_number(rng)})",
        ]
    )


def _extreme_query(rng: random.Random, base: str) -> str:
    """``base`` with one numeric token made extreme, an extreme modifier, or deep nesting."""
    r = rng.random()
    if r < 0.35:
        tokens = list(_NUMERIC_TOKEN.finditer(base))
        if tokens:
            m = rng.choice(tokens)
            repl = _extreme_duration(rng) if m.group()[-1].isalpha() else _extreme_number(rng)
            return base[: m.start()] + repl + base[m.end() :]
    if r < 0.7:
        mod = rng.choice(
            [
                f" offset {_extreme_duration(rng)}",
                f" offset ({_extreme_duration_expr(rng)})",
                f" @ {rng.choice(['', '-', '+'])}{_extreme_number(rng)}",
                f"[{_extreme_duration_expr(rng)}]",
                f"[{_extreme_duration_expr(rng)}:{_extreme_duration_expr(rng)}]",
                f"[5m:{_extreme_duration(rng)}]",
            ]
        )
        return f"({base}){mod}" if rng.random() < 0.5 else f"x{mod}"
    k = rng.choice([99, 100, 101, 249, 250, 251, 1000, 5000])
    return rng.choice(
        [
            "(" * k + base + ")" * k,
            "-" * k + base,
            "abs(" * k + base + ")" * k,
            "sum(" * k + base + ")" * k,
            base + f" + {base}" * k,
            base + "[5m:1m]" * (k // 10),
        ]
    )


def test_fuzz_numeric_extremes_and_nesting_raise_only_parse_errors() -> None:
    """The crash class the mutation fuzzer missed: numbers, durations and timestamps at the
    ends of their ranges, and nesting past Python's recursion limit, spliced into real
    queries. Only PromQLParseError (with a position) or a clean, round-tripping parse."""
    rng = random.Random(20261208)
    base = corpus()
    parsed = 0
    for _ in range(800):
        parsed += check_one(_extreme_query(rng, rng.choice(base)))
    assert parsed > 25  # the fuzzer must also reach queries that are valid
