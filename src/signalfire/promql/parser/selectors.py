"""Selectors and the postfix modifiers that bind to them.

``name{matchers}``, ``{"utf8.name", "a.b"="c"}``, then any of ``[range]``,
``[range:step]``, ``offset d``, ``@ t`` / ``@ start()`` / ``@ end()``, ``@st``,
``anchored`` and ``smoothed``, with Prometheus's rules on where each may appear.
"""

from __future__ import annotations

import math

import re2

from signalfire.errors import BadDataError
from signalfire.labels import METRIC_NAME, Matcher, MatchType
from signalfire.promql import ast
from signalfire.promql.numbers import round_half_away
from signalfire.promql.parser.base import go_f
from signalfire.promql.parser.durations import DURATION_EXPECTED, RANGE_CONTEXT, DurationParser
from signalfire.promql.parser.lexer import DURATION, IDENT, NUMBER, STRING, Token, go_quote

_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})

# RE2's error codes as Go's regexp/syntax words them, which Prometheus reports.
_GO_REGEX_ERRORS = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid escape sequence": "invalid escape sequence",
    "invalid named capture group": "invalid named capture",
    "invalid character class range": "invalid character class range",
    "invalid character class": "invalid character class",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "trailing \\": "trailing backslash at end of expression",
    "pattern too large - compile failed": "expression too large",
    "bad nesting depth": "expression nests too deeply",
}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def regex_error(pattern: str) -> str:
    """Prometheus's message for an invalid regex matcher (Go's ``error parsing regexp:
    <reason>: `<fragment>```), or "" when ``pattern`` compiles."""
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except UnicodeError:  # escapes that produced bytes that are not UTF-8
        return f"error parsing regexp: invalid UTF-8: `{go_quote(pattern)[1:-1]}`"
    except re2.error as err:
        raw = err.args[0] if err.args else ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        code, _, fragment = text.partition(": ")
        return f"error parsing regexp: {_GO_REGEX_ERRORS.get(code, code)}: `{fragment}`"
    return ""


_SELECTOR_OR_SUBQUERY = "an instant vector selector or range vector selector or a subquery"


class SelectorParser(DurationParser):
    """Reads vector selectors, label matchers and postfix modifiers."""

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
        if op.kind in ("=~", "!~"):
            problem = regex_error(value.text)
            if problem:
                self.semantic(tok.pos, problem)
                return None
        try:
            return Matcher(MatchType(op.kind), name, value.text)
        except (BadDataError, UnicodeError) as err:
            self.semantic(tok.pos, str(err))
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
            raise self.unexpected(RANGE_CONTEXT, DURATION_EXPECTED)
        rng_pos = self.peek().pos
        rng = self.as_duration(rng_pos, self.parse_dur_expr(0, RANGE_CONTEXT, DURATION_EXPECTED))
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
            raise self.unexpected(RANGE_CONTEXT, '":" or "]"')
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
        target = self.modifier_target(expr, "offset")
        if target is None:
            return
        if target.offset != ast.DurLit(0):
            self.semantic(expr.pos, "offset may not be set multiple times")
            return
        target.offset = dur

    def modifier_target(self, expr: ast.Expr, modifier: str) -> ast.VectorSelector | ast.SubqueryExpr | None:
        """The node an ``offset`` or ``@`` written after ``expr`` sets (a range selector's
        inner selector); None, with the error recorded, when ``expr`` takes no modifier."""
        if isinstance(expr, ast.VectorSelector | ast.SubqueryExpr):
            return expr
        if isinstance(expr, ast.MatrixSelector):
            return expr.vector
        self.semantic(expr.pos, f"{modifier} modifier must be preceded by {_SELECTOR_OR_SUBQUERY}")
        return None

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
            # Prometheus bounds the seconds by int64 and then overflows converting them to
            # ms; here the milliseconds must fit in int64 too, with the same message.
            if math.isnan(ts) or math.isinf(ts) or abs(ts) * 1000.0 >= 9.223372036854776e18:
                self.semantic(expr.pos, f"timestamp out of bounds for @ modifier: {go_f(ts)}")
                return
            at_ms = round_half_away(ts * 1000.0)
        target = self.modifier_target(expr, "@")
        if target is None:
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
