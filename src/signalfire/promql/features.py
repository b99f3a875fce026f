"""Every ``--enable-feature`` name signalfire knows, spelled as Prometheus spells them.

This is the one place these names are written: the parser gates syntax on
:data:`SYNTAX`, the engine reads the few that change evaluation (delayed name removal),
the function table marks experimental functions, and :mod:`signalfire.database` and the
conformance runner enable :data:`CONFORMANCE`. Unknown names are accepted and ignored,
as Prometheus logs and ignores them.
"""

from __future__ import annotations

from collections.abc import Iterable

EXPERIMENTAL_FUNCTIONS = "promql-experimental-functions"
DURATION_EXPR = "promql-duration-expr"
DELAYED_NAME_REMOVAL = "promql-delayed-name-removal"
EXTENDED_RANGE_SELECTORS = "promql-extended-range-selectors"
BINOP_FILL_MODIFIERS = "promql-binop-fill-modifiers"
PER_STEP_STATS = "promql-per-step-stats"
TYPE_AND_UNIT_LABELS = "type-and-unit-labels"
USE_START_TIMESTAMPS = "st-storage"

#: Every language feature the parser knows (what it accepts depends only on these).
SYNTAX = frozenset({EXPERIMENTAL_FUNCTIONS, DURATION_EXPR, EXTENDED_RANGE_SELECTORS, BINOP_FILL_MODIFIERS})

#: What the conformance suite turns on: the syntax and the features that change answers.
CONFORMANCE = SYNTAX | {DELAYED_NAME_REMOVAL, USE_START_TIMESTAMPS}

#: Every name signalfire knows.
KNOWN = CONFORMANCE | {PER_STEP_STATS, TYPE_AND_UNIT_LABELS}


def parse_features(values: Iterable[str]) -> frozenset[str]:
    """Flags as given to ``--enable-feature`` (comma-separated lists allowed)."""
    out: set[str] = set()
    for v in values:
        out.update(part.strip() for part in v.split(",") if part.strip())
    return frozenset(out)
