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

from signalfire.labels import Matcher
from signalfire.promql import ast, features
from signalfire.promql.function_table import (
    AGGREGATORS,
    AGGREGATORS_WITH_PARAM,
    EXPERIMENTAL_AGGREGATORS,
    FUNCTIONS,
)
from signalfire.promql.parser.base import (
    KEYWORDS,
    PRECEDENCE,
    SYMBOL_OPS,
    WORD_OPS,
    Abort,
    ParserOptions,
    position_of,
    raise_first,
    valid_utf8,
)
from signalfire.promql.parser.lexer import DURATION, EOF, IDENT, METRIC_IDENT, NUMBER, STRING, go_quote
from signalfire.promql.parser.selectors import SelectorParser

__all__ = ["ParserOptions", "parse_expr", "parse_metric_selector", "position_of"]

#: Largest accepted syntax-tree depth, so the checker, printer and evaluator stay well
#: inside Python's recursion limit even for long operator chains.
MAX_TREE_DEPTH = 250


class _Parser(SelectorParser):
    """Operators, calls and aggregations; the entry points below drive it."""

    def parse_top(self) -> ast.Expr:
        if self.peek().kind == EOF:
            self.errors.append((0, "no expression found in input", "expression", "end of input"))
            raise Abort
        expr = self.parse_binary(0)
        if self.peek().kind != EOF:
            raise self.unexpected("", "")
        return expr

    def binop(self) -> str | None:
        tok = self.peek()
        if tok.kind in SYMBOL_OPS:
            return tok.kind
        if tok.kind == IDENT:
            low = tok.val.lower()
            if low in WORD_OPS:
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
            if low in WORD_OPS or (low in KEYWORDS and self.peek(1).kind != "{"):
                raise self.unexpected("", "")
            if self.peek(1).kind == "(":
                if low in ("step", "range"):
                    return self.parse_duration_value()
                return self.parse_call()
            self.next()
            return self.parse_vector_selector(tok)
        raise self.unexpected("", "")

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
                flag = f"--enable-feature={features.EXPERIMENTAL_FUNCTIONS}"
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
            elif tok.kind == STRING and tok.text and valid_utf8(tok.text):
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


def parse_expr(text: str, *, features: frozenset[str] = frozenset()) -> ast.Expr:
    """Parse and type-check a PromQL expression.

    ``features`` holds ``--enable-feature`` names (see
    :data:`~signalfire.promql.features.SYNTAX`); experimental syntax is
    rejected without them, with Prometheus's message. Every node carries ``pos``/``end``
    byte offsets. Raises :class:`~signalfire.errors.PromQLParseError` whose text is
    Prometheus's (``1:5: parse error: ...``) and whose ``offset``/``line``/``column``
    locate the problem.
    """
    from signalfire.promql.check import CheckError, check_expr

    p = _Parser(text, ParserOptions(frozenset(features)))
    expr: ast.Expr | None = None
    with contextlib.suppress(Abort):
        expr = p.parse_top()
    if p.errors or expr is None:
        raise_first(text, p.errors)
    assert expr is not None
    try:
        check_expr(expr, text=text, max_depth=MAX_TREE_DEPTH)
    except CheckError as err:
        raise_first(text, [(err.pos, err.reason, "", "")])
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
    except Abort:
        pass
    if p.errors:
        raise_first(text, p.errors)
    return matchers
