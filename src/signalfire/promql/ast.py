"""PromQL syntax tree: the contract between the parser and the evaluator.

Every node records ``pos``, the byte offset in the query text where it starts (for
positioned errors and ``(line:col)`` annotations), and ``end``, the offset just past it.
Durations are kept as small expression trees (:class:`Duration`), because with
``promql-duration-expr`` they may depend on the query's step and range; the engine
resolves them with :func:`eval_duration`. Constant durations are plain :class:`DurLit`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from signalfire.labels import Matcher


class ValueType(enum.Enum):
    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"
    STRING = "string"
    NONE = "none"


# ---------------------------------------------------------------- durations


@dataclass(frozen=True, slots=True)
class DurLit:
    """A constant duration in milliseconds (may be negative in offsets)."""

    ms: int


@dataclass(frozen=True, slots=True)
class DurStep:
    """``step()``: the query's step."""


@dataclass(frozen=True, slots=True)
class DurRange:
    """``range()``: end - start of the query (0 for instant queries)."""


@dataclass(frozen=True, slots=True)
class DurUnary:
    op: str  # "-" or "+"
    arg: Duration


@dataclass(frozen=True, slots=True)
class DurBinary:
    op: str  # + - * / % ^
    lhs: Duration | float
    rhs: Duration | float  # plain floats are dimensionless numbers (seconds when alone)


@dataclass(frozen=True, slots=True)
class DurCall:
    func: str  # "min_of" / "max_of"
    args: tuple[Duration, ...]


Duration = DurLit | DurStep | DurRange | DurUnary | DurBinary | DurCall


# ---------------------------------------------------------------- expressions


@dataclass(eq=False, slots=True)
class Node:
    pos: int = field(default=0, kw_only=True)
    end: int = field(default=0, kw_only=True)


@dataclass(eq=False, slots=True)
class NumberLiteral(Node):
    """A float literal; ``duration`` is True when it was written as a duration (``5m`` = 300)."""

    value: float
    duration: bool = False


@dataclass(eq=False, slots=True)
class StringLiteral(Node):
    value: str


class AtKind(enum.Enum):
    NONE = "none"
    TIMESTAMP = "timestamp"  # @ <number>: fixed time, ``at_ms``
    START = "start"  # @ start()
    END = "end"  # @ end()


@dataclass(eq=False, slots=True)
class VectorSelector(Node):
    """``name{matchers} offset d @ t``; ``matchers`` includes the ``__name__`` matcher."""

    name: str
    matchers: list[Matcher]
    offset: Duration = DurLit(0)
    at: AtKind = AtKind.NONE
    at_ms: int = 0
    anchored: bool = False
    smoothed: bool = False
    start_timestamp: bool = False  # the ``@st`` suffix: select start timestamps instead of values


@dataclass(eq=False, slots=True)
class MatrixSelector(Node):
    """``vs[range]``; offset, @ and modifiers live on the inner selector."""

    vector: VectorSelector
    range: Duration


@dataclass(eq=False, slots=True)
class SubqueryExpr(Node):
    """``expr[range:step] offset d @ t``; ``step`` None means the default evaluation interval."""

    expr: Expr
    range: Duration
    step: Duration | None = None
    offset: Duration = DurLit(0)
    at: AtKind = AtKind.NONE
    at_ms: int = 0


@dataclass(eq=False, slots=True)
class ParenExpr(Node):
    expr: Expr


@dataclass(eq=False, slots=True)
class UnaryExpr(Node):
    op: str  # "-" or "+"
    expr: Expr


class Cardinality(enum.Enum):
    ONE_TO_ONE = "one-to-one"
    MANY_TO_ONE = "many-to-one"  # group_left
    ONE_TO_MANY = "one-to-many"  # group_right
    MANY_TO_MANY = "many-to-many"  # and / or / unless


@dataclass(eq=False, slots=True)
class VectorMatching:
    """How the two sides of a binary operation between vectors are matched.

    ``on`` True means ``on(labels)``; False with labels means ``ignoring(labels)``;
    ``include`` are the extra labels of ``group_left(...)``/``group_right(...)``.
    ``fill_left``/``fill_right`` are the experimental ``fill`` defaults (None: no fill).
    """

    card: Cardinality = Cardinality.ONE_TO_ONE
    on: bool = False
    labels: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    fill_left: float | None = None
    fill_right: float | None = None


@dataclass(eq=False, slots=True)
class BinaryExpr(Node):
    """``lhs op rhs``. ``op`` is the token text (``+ - * / % ^ atan2 == != > < >= <= and or unless``,
    plus the native-histogram trimming operators ``</`` and ``>/``)."""

    op: str
    lhs: Expr
    rhs: Expr
    matching: VectorMatching | None = None
    return_bool: bool = False


@dataclass(eq=False, slots=True)
class AggregateExpr(Node):
    """``op by|without (grouping) (param, expr)``; ``param`` is set for topk, quantile, ..."""

    op: str
    expr: Expr
    param: Expr | None = None
    grouping: list[str] = field(default_factory=list)
    without: bool = False
    by_given: bool = False  # ``by ()`` written explicitly


@dataclass(eq=False, slots=True)
class Call(Node):
    func: str
    args: list[Expr]


@dataclass(eq=False, slots=True)
class DurationExpr(Node):
    """A duration expression used as a value (e.g. ``step()`` or ``range()`` alone): seconds."""

    duration: Duration


Expr = (
    NumberLiteral
    | StringLiteral
    | VectorSelector
    | MatrixSelector
    | SubqueryExpr
    | ParenExpr
    | UnaryExpr
    | BinaryExpr
    | AggregateExpr
    | Call
    | DurationExpr
)


#: Go's ``time.Duration`` counts nanoseconds in an int64: about 292 years, in ms.
MAX_DURATION_MS = ((1 << 63) - 1) // 1_000_000


class DurationRangeError(ValueError):
    """A duration expression whose value is not a finite duration Go could hold."""

    def __init__(self) -> None:
        super().__init__("duration out of range")


def eval_duration(d: Duration | float, step_ms: int, range_ms: int) -> int:
    """Resolve a duration tree to milliseconds for a query with the given step and range.

    Plain numbers in duration arithmetic are seconds, as in Prometheus. The arithmetic is
    float64 as in Go (overflow gives Inf, ``x/0`` Inf or NaN), and this is the one place
    its result becomes milliseconds: anything infinite, NaN or beyond
    :data:`MAX_DURATION_MS` raises :class:`DurationRangeError`, never an int64 overflow later.
    """
    ms = _eval_seconds(d, step_ms, range_ms) * 1000.0
    if not math.isfinite(ms) or abs(ms) > MAX_DURATION_MS:
        raise DurationRangeError()
    return round(ms)


def _eval_seconds(d: Duration | float, step_ms: int, range_ms: int) -> float:
    if isinstance(d, int | float):
        return float(d)
    if isinstance(d, DurLit):
        return d.ms / 1000.0
    if isinstance(d, DurStep):
        return step_ms / 1000.0
    if isinstance(d, DurRange):
        return range_ms / 1000.0
    if isinstance(d, DurUnary):
        v = _eval_seconds(d.arg, step_ms, range_ms)
        return -v if d.op == "-" else v
    if isinstance(d, DurCall):
        vals = [_eval_seconds(a, step_ms, range_ms) for a in d.args]
        return min(vals) if d.func == "min_of" else max(vals)
    a = _eval_seconds(d.lhs, step_ms, range_ms)
    b = _eval_seconds(d.rhs, step_ms, range_ms)
    if d.op == "+":
        return a + b
    if d.op == "-":
        return a - b
    if d.op == "*":
        return a * b
    if d.op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    if d.op == "%":
        return math.nan if b == 0 or math.isinf(a) else a % b
    if d.op == "^":
        try:
            return float(math.pow(a, b))
        except OverflowError:
            return math.inf
        except ValueError:  # a negative base to a fractional power
            return math.nan
    raise AssertionError(f"BUG: unknown duration operator {d.op}")
