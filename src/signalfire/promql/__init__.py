"""PromQL: parsing (our own Prometheus 3.x parser with positioned errors), printing, evaluation.

The public surface, and what other packages import (never the modules inside): the
:class:`Engine` with its :class:`EngineOptions` and the :class:`QueryResult` /
:class:`QueryStats` it returns; :func:`parse_expr` (``features`` takes ``--enable-feature``
names from :mod:`signalfire.promql.features`; :data:`ALL_FEATURES` is every one of them),
:func:`parse_metric_selector` and the printers :func:`to_string` / :func:`prettify`; the
function table :data:`FUNCTIONS`; and the duration and type helpers the HTTP API needs.
"""

from signalfire.promql import features
from signalfire.promql.check import documented_type, iter_children, value_type
from signalfire.promql.durations import format_duration, parse_duration
from signalfire.promql.engine import Engine, EngineOptions
from signalfire.promql.features import KNOWN as ALL_FEATURES
from signalfire.promql.function_table import FUNCTIONS, FunctionSpec
from signalfire.promql.limits import check_resolution
from signalfire.promql.parser import ParserOptions, parse_expr, parse_metric_selector, position_of
from signalfire.promql.printer import add_at_modifiers, prettify, to_string
from signalfire.promql.result import QueryResult
from signalfire.promql.stats import QueryStats

__all__ = [
    "ALL_FEATURES",
    "FUNCTIONS",
    "Engine",
    "EngineOptions",
    "FunctionSpec",
    "ParserOptions",
    "QueryResult",
    "QueryStats",
    "add_at_modifiers",
    "check_resolution",
    "documented_type",
    "features",
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
