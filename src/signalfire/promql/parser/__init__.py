"""The PromQL parser: query text -> :mod:`signalfire.promql.ast`, with positioned errors.

One room for everything that reads PromQL text: :mod:`.lexer` (tokens with byte
positions), :mod:`.base` (token access and error recording), :mod:`.durations` (duration
arithmetic), :mod:`.selectors` (selectors and their modifiers) and :mod:`.parse`
(operators, calls, aggregations, the entry points). The AST, the type checker
(:mod:`signalfire.promql.check`) and the printer stay beside it in :mod:`signalfire.promql`,
since the engine and the printer share them; the function table the parser checks calls
against is :mod:`signalfire.promql.function_table`.
"""

from signalfire.promql.parser.parse import ParserOptions, parse_expr, parse_metric_selector, position_of

__all__ = ["ParserOptions", "parse_expr", "parse_metric_selector", "position_of"]
