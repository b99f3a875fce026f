"""PromQL: parsing (our own Prometheus 3.x parser with positioned errors), printing, evaluation.

Parse with :func:`parse_expr` (``features`` takes ``--enable-feature`` names such as
``promql-experimental-functions``), print with :func:`to_string` / :func:`prettify`.
"""

from signalfire.promql.check import documented_type, iter_children, value_type
from signalfire.promql.durations import format_duration, parse_duration
from signalfire.promql.function_signatures import ALL_FEATURES, FUNCTIONS, FunctionSignature
from signalfire.promql.parser import ParserOptions, parse_expr, parse_metric_selector, position_of
from signalfire.promql.printer import add_at_modifiers, prettify, to_string

__all__ = [
    "ALL_FEATURES",
    "FUNCTIONS",
    "FunctionSignature",
    "ParserOptions",
    "add_at_modifiers",
    "documented_type",
    "format_duration",
    "iter_children",
    "parse_duration",
    "parse_expr",
    "parse_metric_selector",
    "position_of",
    "prettify",
    "to_string",
    "value_type",
]
