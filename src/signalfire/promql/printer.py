"""Print a PromQL syntax tree back to text, as Prometheus does.

:func:`to_string` is the canonical one-line form of Prometheus's ``String()`` methods
(``promql/parser/printer.go``): label matchers sorted, durations in canonical units,
``@`` as seconds with three decimals, aggregations as ``sum by (job) (x)``. The conformance
runner uses it to reprint a query after adding ``@`` modifiers, so
``parse(to_string(parse(q)))`` must give the same tree.

:func:`prettify` is ``/api/v1/format_query``'s multi-line form (``Pretty()`` in
``promql/parser/prettier.go``): a node whose one-line form is longer than 100 characters
is split, one operand or argument per line, two spaces of indent per level.
"""

from __future__ import annotations

from signalfire.labels import METRIC_NAME, MatchType, is_legacy_label_name, is_legacy_metric_name
from signalfire.promql import ast
from signalfire.promql.check import iter_children
from signalfire.promql.durations import format_duration
from signalfire.promql.numbers import format_float
from signalfire.promql.parser.lexer import go_quote

__all__ = ["add_at_modifiers", "duration_to_string", "prettify", "to_string"]

MAX_LINE = 100
_DUR_PREC = {"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}


def _label(name: str) -> str:
    return name if is_legacy_label_name(name) else go_quote(name)


def _grouping(names: list[str]) -> str:
    return ", ".join(_label(n) for n in names)


def duration_to_string(d: ast.Duration | float, parent_prec: int = 0, right: bool = False) -> str:
    """A duration tree as text: ``5m``, ``step() + 1m``, ``min_of(step(), 1s)``."""
    if isinstance(d, int | float | ast.DurLit):
        # A negative literal reads back as a unary minus, which binds like "*".
        neg = (d.ms if isinstance(d, ast.DurLit) else d) < 0
        text = format_duration(d.ms) if isinstance(d, ast.DurLit) else format_float(float(d))
        return f"({text})" if neg and parent_prec > 5 else text
    if isinstance(d, ast.DurStep):
        return "step()"
    if isinstance(d, ast.DurRange):
        return "range()"
    if isinstance(d, ast.DurCall):
        return f"{d.func}({', '.join(duration_to_string(a) for a in d.args)})"
    if isinstance(d, ast.DurUnary):
        text = d.op + duration_to_string(d.arg, 6)
        return f"({text})" if parent_prec > 5 else text
    prec = _DUR_PREC[d.op]
    # "^" is right-associative: its left operand needs parentheses at equal precedence.
    lhs = duration_to_string(d.lhs, prec + 1 if d.op == "^" else prec)
    rhs = duration_to_string(d.rhs, prec if d.op == "^" else prec + 1, right=True)
    text = f"{lhs} {d.op} {rhs}"
    return f"({text})" if prec < parent_prec else text


def _dur_atom(d: ast.Duration) -> str:
    """A duration where the grammar takes one atom (after ``offset``)."""
    if isinstance(d, ast.DurLit | ast.DurStep | ast.DurRange | ast.DurCall):
        return duration_to_string(d)
    return f"({duration_to_string(d)})"


def _offset(d: ast.Duration) -> str:
    if isinstance(d, ast.DurLit):
        if d.ms == 0:
            return ""
        return f" offset {format_duration(d.ms)}"
    if isinstance(d, ast.DurUnary):
        return f" offset {d.op}{_dur_atom(d.arg)}"
    return f" offset {_dur_atom(d)}"


def _at(kind: ast.AtKind, at_ms: int) -> str:
    if kind is ast.AtKind.TIMESTAMP:
        return f" @ {at_ms / 1000:.3f}"
    if kind is ast.AtKind.START:
        return " @ start()"
    if kind is ast.AtKind.END:
        return " @ end()"
    return ""


def _selector_body(vs: ast.VectorSelector) -> str:
    parts = []
    name = vs.name
    for m in vs.matchers:
        if m.name == METRIC_NAME and m.type is MatchType.EQUAL and m.value == vs.name and m.value != "":
            continue
        parts.append(f"{_label(m.name)}{m.type.value}{go_quote(m.value)}")
    parts.sort()
    if name and not is_legacy_metric_name(name):
        parts.insert(0, go_quote(name))
        name = ""
    if not parts:
        return name
    return f"{name}{{{','.join(parts)}}}"


def _extended(vs: ast.VectorSelector) -> str:
    if vs.anchored:
        return " anchored"
    if vs.smoothed:
        return " smoothed"
    return ""


def _fill(vm: ast.VectorMatching) -> str:
    if vm.fill_left is None and vm.fill_right is None:
        return ""
    if vm.fill_left is not None and _same_float(vm.fill_left, vm.fill_right):
        return f" fill ({format_float(vm.fill_left)})"
    out = ""
    if vm.fill_left is not None:
        out += f" fill_left ({format_float(vm.fill_left)})"
    if vm.fill_right is not None:
        out += f" fill_right ({format_float(vm.fill_right)})"
    return out


def _same_float(a: float, b: float | None) -> bool:
    return b is not None and (a == b or (a != a and b != b))


def _matching(node: ast.BinaryExpr) -> str:
    out = " bool" if node.return_bool else ""
    vm = node.matching
    if vm is None:
        return out
    grouped = vm.card in (ast.Cardinality.MANY_TO_ONE, ast.Cardinality.ONE_TO_MANY)
    # An empty ignoring () is dropped unless group_x needs it to be valid syntax.
    if vm.labels or vm.on or grouped:
        out += f" {'on' if vm.on else 'ignoring'} ({_grouping(vm.labels)})"
        if vm.card in (ast.Cardinality.MANY_TO_ONE, ast.Cardinality.ONE_TO_MANY):
            side = "left" if vm.card is ast.Cardinality.MANY_TO_ONE else "right"
            out += f" group_{side} ({_grouping(vm.include)})"
    return out + _fill(vm)


def _agg_head(node: ast.AggregateExpr) -> str:
    if node.without:
        return f"{node.op} without ({_grouping(node.grouping)}) "
    if node.grouping:
        return f"{node.op} by ({_grouping(node.grouping)}) "
    return node.op


def to_string(node: ast.Expr) -> str:
    """The canonical one-line text of ``node`` (Prometheus's ``String()``)."""
    if isinstance(node, ast.NumberLiteral):
        if node.duration and node.value == node.value and abs(node.value) != float("inf"):
            return format_duration(round(node.value * 1000))
        return format_float(node.value)
    if isinstance(node, ast.StringLiteral):
        return go_quote(node.value)
    if isinstance(node, ast.VectorSelector):
        suffix = "@st" if node.start_timestamp else ""
        return (
            _selector_body(node) + suffix + _extended(node) + _at(node.at, node.at_ms) + _offset(node.offset)
        )
    if isinstance(node, ast.MatrixSelector):
        vs = node.vector
        body = _selector_body(vs) + ("@st" if vs.start_timestamp else "")
        rng = duration_to_string(node.range)
        return f"{body}[{rng}]{_extended(vs)}{_at(vs.at, vs.at_ms)}{_offset(vs.offset)}"
    if isinstance(node, ast.SubqueryExpr):
        return to_string(node.expr) + _subquery_suffix(node)
    if isinstance(node, ast.ParenExpr):
        return f"({to_string(node.expr)})"
    if isinstance(node, ast.UnaryExpr):
        return f"{node.op}{to_string(node.expr)}"
    if isinstance(node, ast.BinaryExpr):
        lhs = to_string(node.lhs)
        if node.op == "^" and lhs == "+Inf":
            lhs = "Inf"  # "+Inf ^ x" would read back as +(Inf ^ x)
        return f"{lhs} {node.op}{_matching(node)} {to_string(node.rhs)}"
    if isinstance(node, ast.AggregateExpr):
        param = f"{to_string(node.param)}, " if node.param is not None else ""
        return f"{_agg_head(node)}({param}{to_string(node.expr)})"
    if isinstance(node, ast.Call):
        return f"{node.func}({', '.join(to_string(a) for a in node.args)})"
    if isinstance(node, ast.DurationExpr):
        return duration_to_string(node.duration)
    raise AssertionError(f"BUG: cannot print {type(node).__name__}")


def _subquery_suffix(node: ast.SubqueryExpr) -> str:
    """``[range:step]`` and the modifiers, as written after a subquery's inner expression."""
    step = duration_to_string(node.step) if node.step is not None else ""
    return f"[{duration_to_string(node.range)}:{step}]{_at(node.at, node.at_ms)}{_offset(node.offset)}"


def prettify(node: ast.Expr, *, max_line: int = MAX_LINE) -> str:
    """The multi-line form of ``/api/v1/format_query`` (Prometheus's ``Prettify``).

    A node whose one-line form is longer than ``max_line`` bytes is split: operands and
    arguments go on their own lines, two spaces of indent per level.
    """
    return _pretty(node, 0, max_line)


def _pretty(node: ast.Expr, level: int, max_line: int) -> str:
    indent = "  " * level
    flat = to_string(node)
    if len(flat.encode("utf-8", "surrogatepass")) <= max_line:  # Go measures bytes
        # Prometheus does not indent a subquery that fits on its line; we keep its output.
        return flat if isinstance(node, ast.SubqueryExpr) else indent + flat
    if isinstance(node, ast.AggregateExpr):
        out = f"{indent}{_agg_head(node)}(\n"
        if node.param is not None:
            out += _pretty(node.param, level + 1, max_line) + ",\n"
        return out + _pretty(node.expr, level + 1, max_line) + f"\n{indent})"
    if isinstance(node, ast.BinaryExpr):
        lhs, rhs = _pretty(node.lhs, level + 1, max_line), _pretty(node.rhs, level + 1, max_line)
        if node.op == "^" and lhs.strip() == "+Inf":
            lhs = lhs.replace("+Inf", "Inf")
        return f"{lhs}\n{indent}{node.op}{_matching(node)}\n{rhs}"
    if isinstance(node, ast.Call):
        args = ",\n".join(_pretty(a, level + 1, max_line) for a in node.args)
        return f"{indent}{node.func}(\n{args}\n{indent})"
    if isinstance(node, ast.ParenExpr):
        return f"{indent}(\n{_pretty(node.expr, level + 1, max_line)}\n{indent})"
    if isinstance(node, ast.UnaryExpr):
        return f"{indent}{node.op}{_pretty(node.expr, level, max_line).strip()}"
    if isinstance(node, ast.SubqueryExpr):
        return _pretty(node.expr, level, max_line) + _subquery_suffix(node)
    return indent + flat


def add_at_modifiers(expr: ast.Expr, at_ms: int) -> ast.Expr:
    """Give every selector and subquery without ``@`` the modifier ``@ at_ms``, in place.

    This is how Prometheus's test runner checks step invariance: subqueries that already
    have an ``@`` are left alone together with everything inside them. Returns ``expr``;
    parse the text again for an untouched tree.
    """
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.SubqueryExpr):
            if node.at is not ast.AtKind.NONE:
                continue
            node.at, node.at_ms = ast.AtKind.TIMESTAMP, at_ms
        elif isinstance(node, ast.MatrixSelector):
            node = node.vector
        if isinstance(node, ast.VectorSelector):
            if node.at is ast.AtKind.NONE:
                node.at, node.at_ms = ast.AtKind.TIMESTAMP, at_ms
            continue
        stack.extend(iter_children(node))
    return expr
