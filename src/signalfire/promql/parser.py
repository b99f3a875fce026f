"""PromQL parser: text -> :mod:`signalfire.promql.ast`, with Prometheus 3.x's grammar.

Recursive descent for the primaries and precedence climbing for the binary operators
(lowest first: ``or``; ``and unless``; comparisons; ``+ -``; ``* / % atan2 </ >/``;
``^``, right-associative). A unary sign binds like ``*``, so ``-a ^ b`` is ``-(a ^ b)``.
The postfix modifiers ``[range]``, ``[range:step]``, ``offset``, ``@``, ``anchored`` and
``smoothed`` bind tighter than every operator, to the expression right before them.

Errors carry Prometheus's wording and position (``1:14: parse error: unexpected <by> in
aggregation``). As in Prometheus, semantic problems found while parsing (an unknown
function, a modifier on the wrong expression) do not stop the parse: the first problem
in reading order is reported, and type checking (:mod:`signalfire.promql.check`) runs
only when the text parsed cleanly.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from signalfire.errors import BadDataError, ParseError, PromQLParseError
from signalfire.labels import METRIC_NAME, Matcher, MatchType
from signalfire.promql import ast
from signalfire.promql.durations import parse_duration
from signalfire.promql.function_signatures import (
    AGGREGATORS,
    AGGREGATORS_WITH_PARAM,
    EXPERIMENTAL_AGGREGATORS,
    FEATURE_BINOP_FILL,
    FEATURE_DURATION_EXPR,
    FEATURE_EXPERIMENTAL_FUNCTIONS,
    FEATURE_EXTENDED_RANGE_SELECTORS,
    FUNCTIONS,
)
from signalfire.promql.lexer import (
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
from signalfire.promql.numbers import parse_number, round_half_away

__all__ = ["ParserOptions", "parse_expr", "parse_metric_selector", "position_of"]

#: Parse-time recursion limit (parentheses, calls, signs); deeper input is a parse error,
#: never a RecursionError.
MAX_NESTING = 100
#: Largest accepted syntax-tree depth, so the checker, printer and evaluator stay well
#: inside Python's recursion limit even for long operator chains.
MAX_TREE_DEPTH = 250

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
_WORD_OPS = frozenset({"and", "or", "unless", "atan2"})
_SYMBOL_OPS = frozenset(op for op in PRECEDENCE if op not in _WORD_OPS)
KEYWORDS = frozenset(
    {"offset", "smoothed", "anchored", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
)
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})
_DUR_OPS = {"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}
_PUNCT_DESC = frozenset({"(", ")", "{", "}", "[", "]", ",", "=", ":"})
_OP_DESC = _SYMBOL_OPS | {"=~", "!~", "@"}
_RANGE_CONTEXT = "subquery or range selector"
_DURATION_EXPECTED = "number, duration, step(), or range()"
_MAX_DURATION_MS = ((1 << 63) - 1) // 1_000_000  # Go's time.Duration limit, in ms
_SELECTOR_OR_SUBQUERY = "an instant vector selector or range vector selector or a subquery"


@dataclass(frozen=True, slots=True)
class ParserOptions:
    """Which experimental language features are on (``--enable-feature`` names)."""

    features: frozenset[str] = frozenset()

    @property
    def experimental_functions(self) -> bool:
        return FEATURE_EXPERIMENTAL_FUNCTIONS in self.features

    @property
    def duration_functions(self) -> bool:
        return FEATURE_DURATION_EXPR in self.features or self.experimental_functions

    @property
    def extended_range_selectors(self) -> bool:
        return FEATURE_EXTENDED_RANGE_SELECTORS in self.features

    @property
    def binop_fill(self) -> bool:
        return FEATURE_BINOP_FILL in self.features


class _Abort(Exception):
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
    if k == IDENT:
        low = v.lower()
        if low in KEYWORDS:
            return f"<{v}>"
        if low in AGGREGATORS:
            return f"<aggr:{v}>"
        if low in _WORD_OPS:
            return f"<op:{v}>"
        return f"identifier {go_quote(v)}"
    if k == METRIC_IDENT:
        return f"metric identifier {go_quote(v)}"
    if k in _OP_DESC:
        return f"<op:{v}>"
    if k in _PUNCT_DESC:
        return go_quote(v)
    short = go_quote(v[:10]) + "..." if len(v.encode()) > 10 else go_quote(v)
    return {NUMBER: "number ", DURATION: "duration ", STRING: "string "}.get(k, "") + short


class _Parser:
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
            raise _Abort
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

    def unexpected(self, context: str, expected: str) -> _Abort:
        tok = self.peek()
        found = describe(tok)
        msg = f"unexpected {found}"
        if context:
            msg += f" in {context}"
        if expected:
            msg += f", expected {expected}"
        self.errors.append((tok.pos, msg, expected, found))
        return _Abort()

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
            raise _Abort

    # -- expressions ------------------------------------------------------------

    def parse_top(self) -> ast.Expr:
        if self.peek().kind == EOF:
            self.errors.append((0, "no expression found in input", "expression", "end of input"))
            raise _Abort
        expr = self.parse_binary(0)
        if self.peek().kind != EOF:
            raise self.unexpected("", "")
        return expr

    def binop(self) -> str | None:
        tok = self.peek()
        if tok.kind in _SYMBOL_OPS:
            return tok.kind
        if tok.kind == IDENT:
            low = tok.val.lower()
            if low in _WORD_OPS:
                return low
        return None

    def parse_binary(self, min_prec: int) -> ast.Expr:
        self.enter()
        lhs = self.parse_unary()
        while True:
            op = self.binop()
            if op is None or PRECEDENCE[op] < min_prec:
                break
            self.next()
            matching, return_bool, fill_pos = self.parse_bin_modifiers()
            prec = PRECEDENCE[op]
            rhs = self.parse_binary(prec if op == "^" else prec + 1)
            lhs = ast.BinaryExpr(op, lhs, rhs, matching, return_bool, pos=lhs.pos, end=rhs.end)
            if fill_pos >= 0 and not self.opts.binop_fill:
                self.semantic(lhs.pos, "binop fill modifiers are experimental and not enabled")
        self.depth -= 1
        return lhs

    def parse_bin_modifiers(self) -> tuple[ast.VectorMatching, bool, int]:
        vm = ast.VectorMatching()
        return_bool = False
        if self.is_word("bool"):
            self.next()
            return_bool = True
        if self.is_word("on", "ignoring"):
            vm.on = self.next().val.lower() == "on"
            vm.labels = self.parse_grouping()
            if self.is_word("group_left", "group_right"):
                side = self.next().val.lower()
                vm.card = ast.Cardinality.MANY_TO_ONE if side == "group_left" else ast.Cardinality.ONE_TO_MANY
                if self.peek().kind == "(":
                    vm.include = self.parse_grouping()
        fill_pos = -1
        while self.is_word("fill", "fill_left", "fill_right") and self.peek(1).kind == "(":
            word = self.next()
            fill_pos = word.pos
            self.next()
            value = self.parse_signed_number("fill modifier")
            self.expect(")", "fill modifier", '")"')
            kind = word.val.lower()
            if kind in ("fill", "fill_left"):
                vm.fill_left = value
            if kind in ("fill", "fill_right"):
                vm.fill_right = value
        return vm, return_bool, fill_pos

    def parse_signed_number(self, context: str) -> float:
        sign = 1.0
        if self.peek().kind in ("+", "-"):
            sign = -1.0 if self.next().kind == "-" else 1.0
        tok = self.peek()
        if tok.kind == NUMBER:
            return sign * self.number_value(self.next())
        if tok.kind == DURATION:
            return sign * self.duration_ms(self.next()) / 1000.0
        raise self.unexpected(context, "number")

    def parse_unary(self) -> ast.Expr:
        tok = self.peek()
        if tok.kind in ("+", "-"):
            self.next()
            operand = self.parse_binary(PRECEDENCE["^"])
            if isinstance(operand, ast.NumberLiteral):
                # Prometheus folds a sign into a number literal: "-1" is the number -1.
                if tok.kind == "-":
                    operand.value = -operand.value
                operand.pos = tok.pos
                return operand
            return ast.UnaryExpr(tok.kind, operand, pos=tok.pos, end=operand.end)
        return self.parse_postfix(self.parse_primary())

    def parse_primary(self) -> ast.Expr:
        tok = self.peek()
        kind = tok.kind
        if kind == NUMBER:
            self.next()
            return ast.NumberLiteral(self.number_value(tok), pos=tok.pos, end=tok.end)
        if kind == DURATION:
            self.next()
            return ast.NumberLiteral(self.duration_ms(tok) / 1000.0, True, pos=tok.pos, end=tok.end)
        if kind == STRING:
            self.next()
            return ast.StringLiteral(tok.text, pos=tok.pos, end=tok.end)
        if kind == "(":
            self.next()
            inner = self.parse_binary(0)
            close = self.expect(")", "", "")
            return ast.ParenExpr(inner, pos=tok.pos, end=close.end)
        if kind == "{":
            return self.parse_vector_selector(None)
        if kind == METRIC_IDENT:
            self.next()
            return self.parse_vector_selector(tok)
        if kind == IDENT:
            low = tok.val.lower()
            # Aggregators and most keywords are names too when the syntax allows it:
            # "sum(sum)", "a + sum" and offset{job="x"} select metrics.
            if low in AGGREGATORS and (self.peek(1).kind == "(" or self.is_word("by", "without", k=1)):
                return self.parse_aggregation()
            if low in _WORD_OPS or (low in KEYWORDS and self.peek(1).kind != "{"):
                raise self.unexpected("", "")
            if self.peek(1).kind == "(":
                if low in ("step", "range"):
                    return self.parse_duration_value()
                return self.parse_call()
            self.next()
            return self.parse_vector_selector(tok)
        raise self.unexpected("", "")

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

    def parse_call(self) -> ast.Expr:
        name = self.next()
        sig = FUNCTIONS.get(name.val)
        if sig is None:
            self.semantic(name.pos, f"unknown function with name {go_quote(name.val)}")
        elif sig.experimental and not self.opts.experimental_functions:
            self.semantic(name.pos, f"function {go_quote(name.val)} is not enabled")
        args = self.parse_call_args("")
        return ast.Call(name.val, args, pos=name.pos, end=self.last_end)

    def parse_call_args(self, context: str) -> list[ast.Expr]:
        self.expect("(", context, '"("')
        self.enter()
        args: list[ast.Expr] = []
        if self.peek().kind == ")":
            self.next()
            self.depth -= 1
            return args
        while True:
            args.append(self.parse_binary(0))
            tok = self.peek()
            if tok.kind == ",":
                self.next()
                if self.peek().kind == ")":
                    self.semantic(tok.pos, "trailing commas not allowed in function call args")
                    self.next()
                    break
                continue
            if tok.kind == ")":
                self.next()
                break
            raise self.unexpected(context, "")
        self.depth -= 1
        return args

    def parse_aggregation(self) -> ast.Expr:
        op_tok = self.next()
        op = op_tok.val.lower()
        grouping: list[str] | None = None
        without = False
        if self.is_word("by", "without"):
            without = self.next().val.lower() == "without"
            grouping = self.parse_grouping()
        if self.peek().kind != "(":
            raise self.unexpected("aggregation", "")
        args = self.parse_call_args("aggregation")
        if grouping is None and self.is_word("by", "without"):
            without = self.next().val.lower() == "without"
            grouping = self.parse_grouping()
        node = ast.AggregateExpr(
            op,
            args[-1] if args else ast.NumberLiteral(0.0),
            grouping=grouping or [],
            without=without,
            by_given=grouping is not None and not without,
            pos=op_tok.pos,
            end=self.last_end,
        )
        if not args:
            self.semantic(node.pos, "no arguments for aggregate expression provided")
            return node
        desired = 1
        if op in AGGREGATORS_WITH_PARAM:
            if op in EXPERIMENTAL_AGGREGATORS and not self.opts.experimental_functions:
                flag = f"--enable-feature={FEATURE_EXPERIMENTAL_FUNCTIONS}"
                self.semantic(node.pos, f"{op}() is experimental and must be enabled with {flag}")
                return node
            desired = 2
            node.param = args[0]
        if len(args) != desired:
            counts = f"expected {desired}, got {len(args)}"
            self.semantic(node.pos, f"wrong number of arguments for aggregate expression provided, {counts}")
        return node

    def parse_grouping(self) -> list[str]:
        self.expect("(", "grouping opts", '"("')
        labels: list[str] = []
        if self.peek().kind == ")":
            self.next()
            return labels
        while True:
            tok = self.peek()
            if tok.kind == IDENT:
                labels.append(tok.val)
            elif tok.kind == STRING and tok.text and _valid_utf8(tok.text):
                labels.append(tok.text)
            else:
                raise self.unexpected("grouping opts", "label")
            self.next()
            tok = self.peek()
            if tok.kind == ",":
                self.next()
                if self.peek().kind == ")":
                    self.next()
                    return labels
                continue
            if tok.kind == ")":
                self.next()
                return labels
            raise self.unexpected("grouping opts", '"," or ")"')

    # -- selectors --------------------------------------------------------------

    def parse_vector_selector(self, name_tok: Token | None) -> ast.VectorSelector:
        start = name_tok.pos if name_tok is not None else self.peek().pos
        matchers: list[Matcher] = []
        if self.peek().kind == "{":
            matchers = self.parse_label_matchers()
        name = ""
        if name_tok is not None:
            name = name_tok.val
            matchers.append(Matcher(MatchType.EQUAL, METRIC_NAME, name))
        return ast.VectorSelector(name, matchers, pos=start, end=self.last_end)

    def parse_label_matchers(self) -> list[Matcher]:
        self.next()  # "{"
        matchers: list[Matcher] = []
        if self.peek().kind == "}":
            self.next()
            return matchers
        while True:
            m = self.parse_label_matcher()
            if m is not None:
                matchers.append(m)
            tok = self.peek()
            if tok.kind == ",":
                self.next()
                if self.peek().kind == "}":
                    self.next()
                    return matchers
                continue
            if tok.kind == "}":
                self.next()
                return matchers
            raise self.unexpected("label matching", '"," or "}"')

    def parse_label_matcher(self) -> Matcher | None:
        tok = self.peek()
        if tok.kind == IDENT:
            name = tok.val
        elif tok.kind == STRING:
            name = tok.text
        else:
            raise self.unexpected("label matching", 'identifier or "}"')
        self.next()
        op = self.peek()
        if op.kind not in _MATCH_OPS:
            if tok.kind == STRING:  # {"metric.name"}: a quoted metric name alone
                return Matcher(MatchType.EQUAL, METRIC_NAME, name)
            raise self.unexpected("label matching", "label matching operator")
        self.next()
        value = self.peek()
        if value.kind != STRING:
            raise self.unexpected("label matching", "string")
        self.next()
        try:
            return Matcher(MatchType(op.kind), name, value.text)
        except BadDataError as err:
            self.semantic(tok.pos, str(err))
        except UnicodeError:  # a regex built from escapes that are not valid UTF-8
            self.semantic(tok.pos, f"error parsing regexp: invalid UTF-8: {go_quote(value.text)}")
        return None

    # -- postfix modifiers ------------------------------------------------------

    def parse_postfix(self, expr: ast.Expr) -> ast.Expr:
        while True:
            tok = self.peek()
            if tok.kind == "[":
                expr = self.parse_range_or_subquery(expr)
            elif tok.kind == "@":
                self.parse_at(expr)
            elif tok.kind == IDENT and tok.val.lower() == "offset":
                self.parse_offset(expr)
            elif tok.kind == IDENT and tok.val.lower() in ("anchored", "smoothed"):
                self.next()
                self.set_extended(expr, tok.val.lower())
            else:
                return expr
            expr.end = self.last_end

    def parse_range_or_subquery(self, expr: ast.Expr) -> ast.Expr:
        lb = self.next()
        if self.peek().kind in ("]", ":"):
            raise self.unexpected(_RANGE_CONTEXT, _DURATION_EXPECTED)
        rng_pos = self.peek().pos
        rng = self.as_duration(rng_pos, self.parse_dur_expr(0, _RANGE_CONTEXT, _DURATION_EXPECTED))
        self.check_positive(rng_pos, rng)
        tok = self.peek()
        if tok.kind == "]":
            self.next()
            vs = expr if isinstance(expr, ast.VectorSelector) else None
            msg = ""
            if vs is None:
                msg = "ranges only allowed for vector selectors"
            elif vs.offset != ast.DurLit(0):
                msg = "no offset modifiers allowed before range"
            elif vs.at is not ast.AtKind.NONE:
                msg = "no @ modifiers allowed before range"
            if msg or vs is None:
                self.semantic(lb.pos, msg)
                return expr
            return ast.MatrixSelector(vs, rng, pos=expr.pos, end=self.last_end)
        if tok.kind != ":":
            raise self.unexpected(_RANGE_CONTEXT, '":" or "]"')
        self.next()
        step: ast.Duration | None = None
        if self.peek().kind != "]":
            pos = self.peek().pos
            step = self.as_duration(pos, self.parse_dur_expr(0, "subquery selector", 'duration or "]"'))
            self.check_positive(pos, step)
        self.expect("]", "subquery selector", '"]"')
        return ast.SubqueryExpr(expr, rng, step, pos=expr.pos, end=self.last_end)

    def parse_offset(self, expr: ast.Expr) -> None:
        self.next()
        dur = self.parse_offset_duration()
        target: ast.VectorSelector | ast.SubqueryExpr
        if isinstance(expr, ast.VectorSelector | ast.SubqueryExpr):
            target = expr
        elif isinstance(expr, ast.MatrixSelector):
            target = expr.vector
        else:
            self.semantic(expr.pos, "offset modifier must be preceded by " + _SELECTOR_OR_SUBQUERY)
            return
        if target.offset != ast.DurLit(0):
            self.semantic(expr.pos, "offset may not be set multiple times")
            return
        target.offset = dur

    def parse_offset_duration(self) -> ast.Duration:
        sign = ""
        if self.peek().kind in ("+", "-"):
            sign = self.next().kind
        d = self.as_duration(self.peek().pos, self.parse_dur_atom("offset", _DURATION_EXPECTED))
        if sign == "-":
            return ast.DurLit(-d.ms) if isinstance(d, ast.DurLit) else ast.DurUnary("-", d)
        return d  # a unary plus changes nothing; Prometheus prints it away too

    def parse_at(self, expr: ast.Expr) -> None:
        self.next()
        tok = self.peek()
        kind = ast.AtKind.TIMESTAMP
        at_ms = 0
        if tok.kind == IDENT and tok.val.lower() in ("start", "end") and self.peek(1).kind == "(":
            self.next()
            self.next()
            self.expect(")", "@", '")"')
            kind = ast.AtKind.START if tok.val.lower() == "start" else ast.AtKind.END
        elif tok.kind == IDENT and tok.val == "st":
            self.next()
            self.set_start_timestamp(expr, tok)
            return
        else:
            sign = 1.0
            if tok.kind in ("+", "-"):
                sign = -1.0 if self.next().kind == "-" else 1.0
                tok = self.peek()
            if tok.kind == NUMBER:
                ts = sign * self.number_value(self.next())
            elif tok.kind == DURATION:
                ts = sign * self.duration_ms(self.next()) / 1000.0
            else:
                raise self.unexpected("@", "timestamp")
            if math.isnan(ts) or math.isinf(ts) or abs(ts) >= 9.223372036854776e18:
                self.semantic(expr.pos, f"timestamp out of bounds for @ modifier: {_go_f(ts)}")
                return
            at_ms = round_half_away(ts * 1000.0)
        target: ast.VectorSelector | ast.SubqueryExpr
        if isinstance(expr, ast.VectorSelector | ast.SubqueryExpr):
            target = expr
        elif isinstance(expr, ast.MatrixSelector):
            target = expr.vector
        else:
            self.semantic(expr.pos, "@ modifier must be preceded by " + _SELECTOR_OR_SUBQUERY)
            return
        if target.at is not ast.AtKind.NONE:
            self.semantic(expr.pos, "@ <timestamp> may not be set multiple times")
            return
        target.at = kind
        target.at_ms = at_ms

    def set_start_timestamp(self, expr: ast.Expr, tok: Token) -> None:
        if not self.opts.experimental_functions:
            self.semantic(tok.pos, "@st modifier is experimental and not enabled")
            return
        vs = expr.vector if isinstance(expr, ast.MatrixSelector) else expr
        if not isinstance(vs, ast.VectorSelector):
            self.semantic(expr.pos, "@st modifier must be preceded by an instant or range vector selector")
            return
        vs.start_timestamp = True

    def set_extended(self, expr: ast.Expr, which: str) -> None:
        if not self.opts.extended_range_selectors:
            self.semantic(expr.pos, f"{which} modifier is experimental and not enabled")
            return
        if isinstance(expr, ast.SubqueryExpr):
            self.semantic(expr.pos, f"{which} modifier is not supported for subqueries")
            return
        vs = expr.vector if isinstance(expr, ast.MatrixSelector) else expr
        if not isinstance(vs, ast.VectorSelector):
            self.semantic(expr.pos, f"{which} modifier not implemented")
            return
        if which == "anchored":
            vs.anchored = True
        else:
            vs.smoothed = True
        if vs.anchored and vs.smoothed:
            self.semantic(expr.pos, "anchored and smoothed modifiers cannot be used together")

    # -- duration expressions ---------------------------------------------------

    def as_duration(self, pos: int, d: ast.Duration | float) -> ast.Duration:
        """A bare number in a duration position means seconds (Go truncates to whole ms)."""
        if not isinstance(d, float):
            return d
        if math.isnan(d) or math.isinf(d) or abs(d) * 1000 > _MAX_DURATION_MS:
            self.semantic(pos, "duration out of range")
            return ast.DurLit(0)
        return ast.DurLit(int(d * 1000))

    def check_positive(self, pos: int, d: ast.Duration) -> None:
        """Ranges and subquery steps known at parse time must be positive."""
        value = _const_seconds(d)
        if value is not None and int(value * 1000) <= 0:
            self.semantic(pos, "duration must be greater than 0")

    def parse_duration_value(self) -> ast.Expr:
        tok = self.peek()
        d = self.parse_dur_atom("", "")
        assert not isinstance(d, float), "BUG: step()/range() parsed to a number"
        return ast.DurationExpr(d, pos=tok.pos, end=self.last_end)

    def parse_dur_expr(self, min_prec: int, context: str, expected: str) -> ast.Duration | float:
        self.enter()
        tok = self.peek()
        lhs: ast.Duration | float
        if tok.kind in ("+", "-"):
            self.next()
            lhs = _dur_unary(tok.kind, self.parse_dur_expr(_DUR_OPS["^"], context, expected))
        else:
            lhs = self.parse_dur_atom(context, expected)
        while True:
            op_tok = self.peek()
            op = op_tok.kind
            if op not in _DUR_OPS or _DUR_OPS[op] < min_prec:
                break
            self.next()
            prec = _DUR_OPS[op]
            rhs = self.parse_dur_expr(prec if op == "^" else prec + 1, context, expected)
            if op in "/%" and _const_seconds(rhs) == 0:
                self.semantic(op_tok.pos, "division by zero" if op == "/" else "modulo by zero")
            lhs = ast.DurBinary(op, lhs, rhs)
        self.depth -= 1
        return lhs

    def parse_dur_atom(self, context: str, expected: str) -> ast.Duration | float:
        tok = self.peek()
        if tok.kind == NUMBER:
            self.next()
            return self.number_value(tok)
        if tok.kind == DURATION:
            self.next()
            return ast.DurLit(self.duration_ms(tok))
        if tok.kind == "(":
            self.next()
            inner = self.parse_dur_expr(0, context, expected)
            self.expect(")", context, '")"')
            return inner
        if tok.kind == IDENT and tok.val.lower() in ("step", "range", "min_of", "max_of", "min", "max"):
            low = tok.val.lower()
            low = {"min": "min_of", "max": "max_of"}.get(low, low)
            self.next()
            if self.peek().kind != "(":
                raise self.unexpected(context, expected)
            if not self.opts.duration_functions:
                self.semantic(tok.pos, f"function {go_quote(tok.val)} is not enabled")
            self.next()
            if low in ("step", "range"):
                self.expect(")", context, '")"')
                return ast.DurStep() if low == "step" else ast.DurRange()
            a = self.as_duration(self.peek().pos, self.parse_dur_expr(0, context, expected))
            self.expect(",", context, '","')
            b = self.as_duration(self.peek().pos, self.parse_dur_expr(0, context, expected))
            self.expect(")", context, '")"')
            return ast.DurCall(low, (a, b))
        raise self.unexpected(context, expected)


def _const_seconds(d: ast.Duration | float) -> float | None:
    """The value in seconds of a duration that does not depend on the query, else None."""
    stack: list[ast.Duration | float] = [d]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.DurStep | ast.DurRange):
            return None
        if isinstance(node, ast.DurUnary):
            stack.append(node.arg)
        elif isinstance(node, ast.DurBinary):
            stack.extend((node.lhs, node.rhs))
        elif isinstance(node, ast.DurCall):
            stack.extend(node.args)
    try:
        return float(ast.eval_duration(d, 0, 0)) / 1000.0
    except (ArithmeticError, ValueError):
        return None


def _dur_unary(op: str, arg: ast.Duration | float) -> ast.Duration | float:
    if isinstance(arg, float):
        return -arg if op == "-" else arg
    if isinstance(arg, ast.DurLit):
        return ast.DurLit(-arg.ms) if op == "-" else arg
    return ast.DurUnary(op, arg) if op == "-" else arg


def _valid_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _go_f(v: float) -> str:
    """Go's ``%f``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:f}"


def _raise_first(text: str, errors: list[tuple[int, str, str, str]]) -> None:
    pos, reason, expected, found = errors[0]
    line, col = position_of(text, pos)
    text = f"{line}:{col}: parse error: {reason}"
    err = PromQLParseError(text, line=line, column=col, offset=pos, expected=expected, found=found)
    err.reason = reason  # type: ignore[attr-defined]
    raise err


def parse_expr(text: str, *, features: frozenset[str] = frozenset()) -> ast.Expr:
    """Parse and type-check a PromQL expression.

    ``features`` holds ``--enable-feature`` names (see
    :data:`~signalfire.promql.function_signatures.ALL_FEATURES`); experimental syntax is
    rejected without them, with Prometheus's message. Every node carries ``pos``/``end``
    byte offsets. Raises :class:`~signalfire.errors.PromQLParseError` whose text is
    Prometheus's (``1:5: parse error: ...``) and whose ``offset``/``line``/``column``
    locate the problem.
    """
    from signalfire.promql.check import CheckError, check_expr

    p = _Parser(text, ParserOptions(frozenset(features)))
    expr: ast.Expr | None = None
    with contextlib.suppress(_Abort):
        expr = p.parse_top()
    if p.errors or expr is None:
        _raise_first(text, p.errors)
    assert expr is not None
    try:
        check_expr(expr, text=text, max_depth=MAX_TREE_DEPTH)
    except CheckError as err:
        _raise_first(text, [(err.pos, err.reason, "", "")])
    return expr


def parse_metric_selector(text: str) -> list[Matcher]:
    """Parse a series selector such as ``up{job="x"}`` or ``{"my.metric"}`` into matchers
    (for ``match[]`` parameters). No type checks; raises PromQLParseError."""
    p = _Parser(text, ParserOptions())
    matchers: list[Matcher] = []
    try:
        tok = p.peek()
        if tok.kind in (IDENT, METRIC_IDENT):
            p.next()
            matchers = p.parse_vector_selector(tok).matchers
        elif tok.kind == "{":
            matchers = p.parse_vector_selector(None).matchers
        else:
            raise p.unexpected("", "")
        if p.peek().kind != EOF:
            raise p.unexpected("", "")
    except _Abort:
        pass
    if p.errors:
        _raise_first(text, p.errors)
    return matchers
