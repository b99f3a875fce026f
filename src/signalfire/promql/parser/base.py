"""Token access, error recording and shared tables for the PromQL parser.

The parser proper is split by what it reads: :mod:`.durations` (duration arithmetic in
``[...]`` and after ``offset``), :mod:`.selectors` (selectors and their postfix modifiers)
and :mod:`.parse` (operators, calls, aggregations and the entry points). They share the
:class:`TokenStream` base defined here.

Errors follow Prometheus: a *semantic* problem (unknown function, modifier in the wrong
place) is recorded and parsing goes on; a *syntax* problem is recorded and unwinds with
:class:`Abort`. The first recorded problem in reading order is what the user sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from signalfire.errors import ParseError, PromQLParseError
from signalfire.promql import features
from signalfire.promql.durations import parse_duration
from signalfire.promql.function_table import AGGREGATORS
from signalfire.promql.numbers import parse_number
from signalfire.promql.parser.lexer import (
    DURATION,
    EOF,
    ERROR,
    IDENT,
    METRIC_IDENT,
    NUMBER,
    STRING,
    Token,
    go_quote,
    lex,
)

#: Parse-time recursion limit (parentheses, calls, signs); deeper input is a parse error,
#: never a RecursionError.
MAX_NESTING = 100

PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    "==": 3,
    "!=": 3,
    "<=": 3,
    "<": 3,
    ">=": 3,
    ">": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "</": 5,
    ">/": 5,
    "^": 6,
}
WORD_OPS = frozenset({"and", "or", "unless", "atan2"})
SYMBOL_OPS = frozenset(op for op in PRECEDENCE if op not in WORD_OPS)
_PUNCT_DESC = frozenset({"(", ")", "{", "}", "[", "]", ",", "=", ":"})
_OP_DESC = SYMBOL_OPS | {"=~", "!~", "@"}
KEYWORDS = frozenset(
    {"offset", "smoothed", "anchored", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
)


@dataclass(frozen=True, slots=True)
class ParserOptions:
    """Which experimental language features are on (``--enable-feature`` names)."""

    features: frozenset[str] = frozenset()

    @property
    def experimental_functions(self) -> bool:
        return features.EXPERIMENTAL_FUNCTIONS in self.features

    @property
    def duration_functions(self) -> bool:
        return features.DURATION_EXPR in self.features or self.experimental_functions

    @property
    def extended_range_selectors(self) -> bool:
        return features.EXTENDED_RANGE_SELECTORS in self.features

    @property
    def binop_fill(self) -> bool:
        return features.BINOP_FILL_MODIFIERS in self.features


class Abort(Exception):
    """A syntax error was recorded; unwind to the entry point."""


def position_of(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of byte ``offset`` in ``text``; columns count bytes."""
    data = text.encode("utf-8", "surrogatepass")
    offset = max(0, min(offset, len(data)))
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - data.rfind(b"\n", 0, offset)


def describe(tok: Token) -> str:
    """A token as Prometheus names it in "unexpected ..." messages."""
    k, v = tok.kind, tok.val
    if k == EOF:
        return "end of input"
    if k == IDENT and not tok.in_braces:
        low = v.lower()
        if low in KEYWORDS:
            return f"<{v}>"
        if low in AGGREGATORS:
            return f"<aggr:{v}>"
        if low in WORD_OPS:
            return f"<op:{v}>"
        return f"identifier {go_quote(v)}"
    if k == IDENT:
        return f"identifier {go_quote(v)}"
    if k == METRIC_IDENT:
        return f"metric identifier {go_quote(v)}"
    if k in _OP_DESC:
        return f"<op:{v}>"
    if k in _PUNCT_DESC:
        return go_quote(v)
    short = go_quote(v[:10]) + "..." if len(v.encode()) > 10 else go_quote(v)
    return {NUMBER: "number ", DURATION: "duration ", STRING: "string "}.get(k, "") + short


class TokenStream:
    """The token cursor and error list every parser part works on."""

    def __init__(self, text: str, options: ParserOptions) -> None:
        self.text = text
        self.opts = options
        self.toks = lex(text)
        self.i = 0
        self.errors: list[tuple[int, str, str, str]] = []  # (byte pos, reason, expected, found)
        self.depth = 0
        self.last_end = 0

    # -- token access -----------------------------------------------------------

    def peek(self, k: int = 0) -> Token:
        tok = self.toks[min(self.i + k, len(self.toks) - 1)]
        if k == 0 and tok.kind == ERROR:
            self.errors.append((tok.pos, tok.val, "", ""))
            raise Abort
        return tok

    def next(self) -> Token:
        tok = self.peek()
        if tok.kind != EOF:
            self.i += 1
        self.last_end = tok.end
        return tok

    def at(self, kind: str, word: str = "") -> bool:
        tok = self.peek()
        if tok.kind != kind:
            return False
        return not word or tok.val.lower() == word

    def is_word(self, *words: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == IDENT and tok.val.lower() in words

    # -- errors -----------------------------------------------------------------

    def semantic(self, pos: int, msg: str) -> None:
        """Record a problem and keep parsing (Prometheus's addParseErr)."""
        self.errors.append((pos, msg, "", ""))

    def unexpected(self, context: str, expected: str) -> Abort:
        tok = self.peek()
        found = describe(tok)
        msg = f"unexpected {found}"
        if context:
            msg += f" in {context}"
        if expected:
            msg += f", expected {expected}"
        self.errors.append((tok.pos, msg, expected, found))
        return Abort()

    def expect(self, kind: str, context: str, expected: str) -> Token:
        if self.peek().kind != kind:
            raise self.unexpected(context, expected)
        return self.next()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            tok = self.peek()
            msg = f"expression nested too deeply (more than {MAX_NESTING} levels)"
            self.errors.append((tok.pos, msg, "", ""))
            raise Abort

    # -- expressions ------------------------------------------------------------

    def number_value(self, tok: Token) -> float:
        try:
            return parse_number(tok.val)
        except ValueError as err:
            msg = f"error parsing number: strconv.ParseFloat: parsing {go_quote(tok.val)}: {err}"
            self.semantic(tok.pos, msg)
            return 0.0

    def duration_ms(self, tok: Token) -> int:
        try:
            return parse_duration(tok.val)
        except ParseError as err:
            self.semantic(tok.pos, err.message)
            return 0

    # -- calls and aggregations -------------------------------------------------


def valid_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def go_f(v: float) -> str:
    """Go's ``%f``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:f}"


def raise_first(text: str, errors: list[tuple[int, str, str, str]]) -> None:
    pos, reason, expected, found = errors[0]
    line, col = position_of(text, pos)
    text = f"{line}:{col}: parse error: {reason}"
    err = PromQLParseError(text, line=line, column=col, offset=pos, expected=expected, found=found)
    err.reason = reason  # type: ignore[attr-defined]
    raise err
