"""``--enable-feature`` names that change PromQL, spelled as Prometheus spells them.

The parser gates syntax on these; the engine reads the few that change evaluation
(delayed name removal). Unknown names are accepted and ignored, as Prometheus logs
and ignores them.
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

KNOWN = frozenset(
    {
        EXPERIMENTAL_FUNCTIONS,
        DURATION_EXPR,
        DELAYED_NAME_REMOVAL,
        EXTENDED_RANGE_SELECTORS,
        BINOP_FILL_MODIFIERS,
        PER_STEP_STATS,
        TYPE_AND_UNIT_LABELS,
        USE_START_TIMESTAMPS,
    }
)


def parse_features(values: Iterable[str]) -> frozenset[str]:
    """Flags as given to ``--enable-feature`` (comma-separated lists allowed)."""
    out: set[str] = set()
    for v in values:
        out.update(part.strip() for part in v.split(",") if part.strip())
    return frozenset(out)
