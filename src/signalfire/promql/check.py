"""Type checking of a parsed PromQL tree, as Prometheus's parser does after parsing.

The rules and messages are those of ``checkAST`` in ``promql/parser/parse.go``: function
argument counts and types, operand types of binary operators, aggregation parameter
types, vector matching only between instant vectors, non-empty selectors, and so on.
The walk visits nodes in the same order, so the first error reported is the same one.

It also normalises the tree the way Prometheus does: set operators get many-to-many
matching, and binary operations that are not between two instant vectors lose their
``matching``.
"""

from __future__ import annotations

from collections.abc import Iterator

from signalfire.labels import METRIC_NAME
from signalfire.promql import ast
from signalfire.promql.function_table import FUNCTIONS
from signalfire.promql.parser.lexer import go_quote

__all__ = ["CheckError", "check_expr", "documented_type", "iter_children", "tree_depth", "value_type"]

_COMPARISON = frozenset({"==", "!=", "<=", "<", ">=", ">"})
_SET_OPS = frozenset({"and", "or", "unless"})
_SCALAR = ast.ValueType.SCALAR
_VECTOR = ast.ValueType.VECTOR


class CheckError(Exception):
    """A type error at byte offset ``pos`` (turned into a PromQLParseError by the parser)."""

    def __init__(self, pos: int, reason: str) -> None:
        super().__init__(reason)
        self.pos = pos
        self.reason = reason


def value_type(node: ast.Expr) -> ast.ValueType:
    """The PromQL type an expression evaluates to."""
    while isinstance(node, ast.ParenExpr | ast.UnaryExpr):
        node = node.expr
    if isinstance(node, ast.NumberLiteral | ast.DurationExpr):
        return _SCALAR
    if isinstance(node, ast.StringLiteral):
        return ast.ValueType.STRING
    if isinstance(node, ast.VectorSelector | ast.AggregateExpr):
        return _VECTOR
    if isinstance(node, ast.MatrixSelector | ast.SubqueryExpr):
        return ast.ValueType.MATRIX
    if isinstance(node, ast.BinaryExpr):
        if value_type(node.lhs) is _SCALAR and value_type(node.rhs) is _SCALAR:
            return _SCALAR
        return _VECTOR
    if isinstance(node, ast.Call):
        sig = FUNCTIONS.get(node.func)
        return sig.return_type if sig is not None else ast.ValueType.NONE
    return ast.ValueType.NONE


def documented_type(t: ast.ValueType) -> str:
    """Prometheus's names for types in messages: "instant vector", "range vector", ..."""
    return {_VECTOR: "instant vector", ast.ValueType.MATRIX: "range vector"}.get(t, t.value)


def iter_children(node: ast.Expr) -> Iterator[ast.Expr]:
    """The direct sub-expressions of ``node``, in source order."""
    if isinstance(node, ast.ParenExpr | ast.UnaryExpr | ast.SubqueryExpr):
        yield node.expr
    elif isinstance(node, ast.MatrixSelector):
        yield node.vector
    elif isinstance(node, ast.BinaryExpr):
        yield node.lhs
        yield node.rhs
    elif isinstance(node, ast.AggregateExpr):
        if node.param is not None:
            yield node.param
        yield node.expr
    elif isinstance(node, ast.Call):
        yield from node.args


def tree_depth(root: ast.Expr) -> tuple[int, ast.Expr]:
    """(depth, deepest node) of the tree, computed without recursion."""
    best, deepest = 0, root
    stack = [(root, 1)]
    while stack:
        node, d = stack.pop()
        if d > best:
            best, deepest = d, node
        stack.extend((c, d + 1) for c in iter_children(node))
    return best, deepest


def check_expr(expr: ast.Expr, *, text: str = "", max_depth: int = 250) -> None:
    """Type-check ``expr`` (parsed from ``text``) in place; raise CheckError on the first problem."""
    depth, deepest = tree_depth(expr)
    if depth > max_depth:
        raise CheckError(deepest.pos, f"expression nested too deeply (more than {max_depth} levels)")
    _Checker(text.encode("utf-8", "surrogatepass")).check(expr)


class _Checker:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.bypass_empty: set[int] = set()  # ids of info() label-selector arguments

    def expect_type(self, node: ast.Expr, want: ast.ValueType, context: str) -> None:
        got = self.check(node)
        if got is not want:
            raise CheckError(
                node.pos, f"expected type {documented_type(want)} in {context}, got {documented_type(got)}"
            )

    def check(self, node: ast.Expr) -> ast.ValueType:
        typ = value_type(node)
        if isinstance(node, ast.AggregateExpr):
            self.expect_type(node.expr, _VECTOR, "aggregation expression")
            if node.op in ("topk", "bottomk", "quantile", "limitk", "limit_ratio") and node.param is not None:
                self.expect_type(node.param, _SCALAR, "aggregation parameter")
            if node.op == "count_values" and node.param is not None:
                self.expect_type(node.param, ast.ValueType.STRING, "aggregation parameter")
        elif isinstance(node, ast.BinaryExpr):
            self.check_binary(node)
        elif isinstance(node, ast.Call):
            self.check_call(node)
        elif isinstance(node, ast.ParenExpr):
            self.check(node.expr)
        elif isinstance(node, ast.UnaryExpr):
            t = self.check(node.expr)
            if t not in (_SCALAR, _VECTOR):
                raise CheckError(
                    node.pos,
                    "unary expression only allowed on expressions of type scalar or instant vector, "
                    f"got {go_quote(documented_type(t))}",
                )
        elif isinstance(node, ast.SubqueryExpr):
            t = self.check(node.expr)
            if t is not _VECTOR:
                raise CheckError(
                    node.pos, f"subquery is only allowed on instant vector, got {t.value} instead"
                )
        elif isinstance(node, ast.MatrixSelector):
            self.check(node.vector)
        elif isinstance(node, ast.VectorSelector):
            self.check_selector(node)
        return typ

    def check_binary(self, node: ast.BinaryExpr) -> None:
        lt = self.check(node.lhs)
        rt = self.check(node.rhs)
        op_pos = self.op_pos(node)
        vm = node.matching or ast.VectorMatching()
        if node.return_bool and node.op not in _COMPARISON:
            raise CheckError(op_pos, "bool modifier can only be used on comparison operators")
        if node.op in _COMPARISON and not node.return_bool and lt is _SCALAR and rt is _SCALAR:
            raise CheckError(op_pos, "comparisons between scalars must use BOOL modifier")
        if node.op in _SET_OPS and vm.card is ast.Cardinality.ONE_TO_ONE:
            vm.card = ast.Cardinality.MANY_TO_MANY
        if vm.on:
            for name in vm.labels:
                if name in vm.include:
                    msg = f"label {go_quote(name)} must not occur in ON and GROUP clause at once"
                    raise CheckError(op_pos, msg)
        for side, t in ((node.lhs, lt), (node.rhs, rt)):
            if t not in (_SCALAR, _VECTOR):
                raise CheckError(
                    side.pos, "binary expression must contain only scalar and instant vector types"
                )
        filled = vm.fill_left is not None or vm.fill_right is not None
        if lt is not _VECTOR or rt is not _VECTOR:
            if vm.labels:
                raise CheckError(node.pos, "vector matching only allowed between instant vectors")
            if filled:
                raise CheckError(node.pos, "filling in missing series only allowed between instant vectors")
            node.matching = None
        elif node.op in _SET_OPS:
            if vm.card in (ast.Cardinality.ONE_TO_MANY, ast.Cardinality.MANY_TO_ONE):
                raise CheckError(node.pos, f"no grouping allowed for {go_quote(node.op)} operation")
            if filled:
                raise CheckError(node.pos, "filling in missing series not allowed for set operators")
            node.matching = vm
        else:
            node.matching = vm
        if (lt is _SCALAR or rt is _SCALAR) and node.op in _SET_OPS:
            msg = f"set operator {go_quote(node.op)} not allowed in binary scalar expression"
            raise CheckError(node.pos, msg)

    def check_call(self, node: ast.Call) -> None:
        sig = FUNCTIONS[node.func]
        n = len(node.args)
        name = go_quote(node.func)
        if sig.variadic == 0:
            if n != len(sig.arg_types):
                count = len(sig.arg_types)
                raise CheckError(node.pos, f"expected {count} argument(s) in call to {name}, got {n}")
        else:
            least = len(sig.arg_types) - 1
            if n < least:
                msg = f"expected at least {least} argument(s) in call to {name}, got {n}"
                raise CheckError(node.pos, msg)
            if sig.variadic > 0 and n > least + sig.variadic:
                most = least + sig.variadic
                raise CheckError(node.pos, f"expected at most {most} argument(s) in call to {name}, got {n}")
        if node.func == "info" and n > 1:
            second = node.args[1]
            st = value_type(second)
            if st is not _VECTOR:
                msg = f"expected type instant vector in call to function {name}, got {documented_type(st)}"
                raise CheckError(node.pos, msg)
            if isinstance(second, ast.VectorSelector) and second.name:
                raise CheckError(second.pos, "expected label selectors only, got vector selector instead")
            if not isinstance(second, ast.VectorSelector):
                raise CheckError(second.pos, "expected label selectors only")
            self.bypass_empty.add(id(second))
        for i, arg in enumerate(node.args):
            if i >= len(sig.arg_types) and sig.variadic == 0:
                break
            want = sig.arg_type(i)
            got = self.check(arg)
            if got is not want:
                wanted, actual = documented_type(want), documented_type(got)
                msg = f"expected type {wanted} in call to function {name}, got {actual}"
                raise CheckError(arg.pos, msg)

    def op_pos(self, node: ast.BinaryExpr) -> int:
        """Byte offset of the operator: the first non-space after the left operand."""
        i = node.lhs.end
        while i < len(self.data) and self.data[i] in b" \t\r\n":
            i += 1
        return i

    def check_selector(self, node: ast.VectorSelector) -> None:
        if node.name:
            for m in node.matchers[:-1]:
                if m.name == METRIC_NAME:
                    names = f"{go_quote(node.name)} or {go_quote(m.value)}"
                    raise CheckError(node.pos, f"metric name must not be set twice: {names}")
            return
        if id(node) in self.bypass_empty:
            return
        if not any(not m.matches("") for m in node.matchers):
            raise CheckError(node.pos, "vector selector must contain at least one non-empty matcher")
