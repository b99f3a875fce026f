"""Duration expressions: ``[5m + 1m]``, ``[step() * 2:]``, ``offset -min_of(step(), 1s)``.

Inside ``[...]`` the whole arithmetic is allowed (``+ - * / % ^``, unary signs, parentheses,
``step()``, ``range()``, ``min_of()``/``max_of()``); after ``offset`` only one atom, so
``x offset 5m * 2`` multiplies the selected vector. Plain numbers are seconds. Values that do
not depend on the query are checked here as Prometheus does (division by zero, positive
ranges, the int64-nanosecond range of Go durations).
"""

from __future__ import annotations

import math

from signalfire.promql import ast
from signalfire.promql.parser.base import TokenStream
from signalfire.promql.parser.lexer import DURATION, IDENT, NUMBER, go_quote

_DUR_OPS = {"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}
RANGE_CONTEXT = "subquery or range selector"
DURATION_EXPECTED = "number, duration, step(), or range()"
_MAX_DURATION_MS = ast.MAX_DURATION_MS
#: Deepest accepted duration expression tree (``5m + 5m + ...`` chains nest to the left).
MAX_DURATION_DEPTH = 250


class DurationParser(TokenStream):
    """Reads duration expressions into :data:`ast.Duration` trees."""

    def as_duration(self, pos: int, d: ast.Duration | float) -> ast.Duration:
        """A bare number in a duration position means seconds (Go truncates to whole ms).

        Every duration expression passes here once complete, so this is where its tree
        depth is bounded (evaluating and printing it recurse) and where a value that
        does not depend on the query is range-checked, as a parse error at ``pos``.
        """
        if not isinstance(d, float):
            if _depth(d) > MAX_DURATION_DEPTH:
                self.semantic(
                    pos, f"duration expression nested too deeply (more than {MAX_DURATION_DEPTH} levels)"
                )
                return ast.DurLit(0)
            if _is_const(d):
                try:
                    ast.eval_duration(d, 0, 0)
                except ast.DurationRangeError:
                    self.semantic(pos, "duration out of range")
                    return ast.DurLit(0)
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

    def parse_offset_duration(self) -> ast.Duration:
        sign = ""
        if self.peek().kind in ("+", "-"):
            sign = self.next().kind
        d = self.as_duration(self.peek().pos, self.parse_dur_atom("offset", DURATION_EXPECTED))
        if sign == "-":
            return ast.DurLit(-d.ms) if isinstance(d, ast.DurLit) else ast.DurUnary("-", d)
        return d  # a unary plus changes nothing; Prometheus prints it away too


def _children(node: ast.Duration | float) -> tuple[ast.Duration | float, ...]:
    if isinstance(node, ast.DurUnary):
        return (node.arg,)
    if isinstance(node, ast.DurBinary):
        return (node.lhs, node.rhs)
    if isinstance(node, ast.DurCall):
        return tuple(node.args)
    return ()


def _depth(d: ast.Duration | float) -> int:
    """Depth of a duration tree, without recursion (the tree may be deeper than Python's limit)."""
    deepest = 0
    stack: list[tuple[ast.Duration | float, int]] = [(d, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DURATION_DEPTH:
            return deepest
        stack.extend((c, level + 1) for c in _children(node))
    return deepest


def _is_const(d: ast.Duration | float) -> bool:
    """True when the value does not depend on the query (no ``step()``/``range()``)."""
    stack: list[ast.Duration | float] = [d]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.DurStep | ast.DurRange):
            return False
        stack.extend(_children(node))
    return True


def _const_seconds(d: ast.Duration | float) -> float | None:
    """The value in seconds of a duration that does not depend on the query, else None
    (also when it is out of range or too deep to evaluate)."""
    if _depth(d) > MAX_DURATION_DEPTH or not _is_const(d):
        return None
    try:
        return float(ast.eval_duration(d, 0, 0)) / 1000.0
    except ast.DurationRangeError:
        return None


def _dur_unary(op: str, arg: ast.Duration | float) -> ast.Duration | float:
    if isinstance(arg, float):
        return -arg if op == "-" else arg
    if isinstance(arg, ast.DurLit):
        return ast.DurLit(-arg.ms) if op == "-" else arg
    return ast.DurUnary(op, arg) if op == "-" else arg
