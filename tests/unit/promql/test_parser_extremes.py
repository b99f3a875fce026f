"""Extreme numeric input to the PromQL parser is a PromQLParseError with a position.

The class: every place the parser turns text into a number, a duration, a timestamp or
a tree: huge and long numbers in every base, durations beyond Go's 292 years (as tokens,
as seconds, as arithmetic), ``@`` times beyond int64 milliseconds, offsets, and nesting
deep enough to exhaust Python's stack. Nothing else (OverflowError, ValueError,
RecursionError, ZeroDivisionError, TypeError) may escape, and queries that parse must
evaluate without such errors too.
"""

from __future__ import annotations

import contextlib
import tempfile

import numpy as np
import pytest

import signalfire
from signalfire.errors import PromQLParseError, QueryError
from signalfire.promql import ALL_FEATURES, parse_expr

OUT_OF_RANGE = "out of range"

CASES = [
    # numbers: decimal, octal, hex, binary, underscores, exponents
    ("0" + "1" * 400, 0, "value out of range"),  # octal syntax, too long for int64: a decimal 1e399
    ("1" * 400, 0, "value out of range"),
    ("1" * 5000, 0, "value out of range"),  # past Python's 4300-digit int() limit
    ("0" + "7" * 5000, 0, "value out of range"),
    ("1e400", 0, "value out of range"),
    ("-1e400", 1, "value out of range"),
    ("0x" + "f" * 400, 0, "invalid syntax"),
    ("0b" + "1" * 100, 0, "bad number or duration syntax"),
    ("1_" * 400 + "1", 0, "value out of range"),
    ("x + fill(1e400) y", 9, "value out of range"),
    ("topk(1e999, x)", 5, "value out of range"),
    # durations as tokens
    ("x[99999999999999999999y]", 2, OUT_OF_RANGE),
    ("x[" + "9" * 5000 + "ms]", 2, OUT_OF_RANGE),
    ("x[300y]", 2, OUT_OF_RANGE),
    ("x[5m:99999999999999999999s]", 5, OUT_OF_RANGE),
    ("x offset 99999999999999999999y", 9, OUT_OF_RANGE),
    ("x offset -9223372036854775807ms", 10, OUT_OF_RANGE),
    # durations as seconds and arithmetic
    ("x[1e308]", 2, OUT_OF_RANGE),
    ("x[inf]", 2, "unexpected character in duration expression"),
    ("x[nan]", 2, "unexpected character in duration expression"),
    ("x offset 1e308", 9, OUT_OF_RANGE),
    ("x offset (1e300 * 1e300)", 9, OUT_OF_RANGE),
    ("x[10 ^ 400]", 2, OUT_OF_RANGE),
    ("x[5m * 99999999999999]", 2, OUT_OF_RANGE),
    ("x[(-1m) ^ 0.5]", 2, OUT_OF_RANGE),  # a complex number in Python
    ("x[max_of(1e308, 5m)]", 9, OUT_OF_RANGE),
    ("x[5m:1m] offset (300y - 1s)", 17, OUT_OF_RANGE),
    # @ timestamps: int64 milliseconds
    ("x @ 1e16", 0, "timestamp out of bounds for @ modifier"),
    ("x @ -1e16", 0, "timestamp out of bounds for @ modifier"),
    ("x @ 99999999999999999999", 0, "timestamp out of bounds for @ modifier"),
    ("x @ 1e400", 4, "value out of range"),
    ("x @ inf", 0, "timestamp out of bounds for @ modifier"),
    ("x @ nan", 0, "timestamp out of bounds for @ modifier"),
    ("x[5m] @ 9223372036854775807", 0, "timestamp out of bounds for @ modifier"),
    # nesting deeper than the stack
    ("x[5m" + " + 5m" * 5000 + "]", 2, "nested too deeply"),
    ("x offset (1s" + " + 1s" * 3000 + ")", 9, "nested too deeply"),
    ("x[" + "(" * 3000 + "5m" + ")" * 3000 + "]", None, "nested too deeply"),
    ("x[" + "-" * 3000 + "5m]", None, "nested too deeply"),
    ("(" * 5000 + "1" + ")" * 5000, None, "nested too deeply"),
    ("x" + "[5m:1m]" * 500, None, ""),
    # text that is not valid UTF-8, NUL bytes
    ('x{a="\ud800"}', None, ""),
    ("\udcff", 0, ""),
    ("x\x00", 1, ""),
    ('"\\U00110000"', 0, "invalid Unicode code point"),
]


@pytest.mark.parametrize(("query", "offset", "message"), CASES, ids=[c[0][:40] for c in CASES])
def test_extreme_input_is_a_parse_error_with_a_position(query, offset, message):
    with pytest.raises(PromQLParseError) as info:
        parse_expr(query, features=ALL_FEATURES)
    err = info.value
    assert message in str(err)
    size = len(query.encode("utf-8", "surrogatepass"))
    assert 0 <= err.offset <= size and err.line >= 1 and err.column >= 1
    assert str(err).startswith(f"{err.line}:{err.column}: parse error: ")
    if offset is not None:
        assert err.offset == offset, str(err)


EXTREMES_THAT_PARSE = [
    "x @ 9.2e15",
    "x @ -9.2e15 offset 292y",
    "x[292y] @ -9.2e15",
    "x[1ms:1ms] @ 9.2e15",
    "x[5m:] @ 9.2e15 offset -292y",
    "rate(x[292y])",
    "max_over_time(x[292y:1y])",
    "x[step() * 1e300]",
    "x[5m / (step() - step())]",
    "x offset (range() * 1e300)",
    "x[step() ^ 1e308]",
    "0" + "7" * 21,  # octal that fits in int64
    "0" + "7" * 22,  # does not: read as decimal
]


@pytest.mark.parametrize("query", EXTREMES_THAT_PARSE)
def test_extremes_that_parse_evaluate_without_python_errors(query):
    parse_expr(query, features=ALL_FEATURES)
    with signalfire.open(tempfile.mkdtemp(), features=ALL_FEATURES, max_samples=100_000) as db:
        db.append({"__name__": "x"}, np.arange(10) * 15_000, np.arange(10.0))
        for run in (
            lambda: db.query(query, 100),
            lambda: db.query(query, 9.2e15),
            lambda: db.query(query, -9.2e15),
            lambda: db.query_range(query, 0, 1000, 1),
            lambda: db.query_range(query, 9.2e15, 9.2e15 + 100, 10),
        ):
            with contextlib.suppress(QueryError):
                run()
