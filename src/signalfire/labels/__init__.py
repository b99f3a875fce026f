"""Label sets and label matchers."""

from signalfire.labels.labels import (
    BUCKET_LABEL,
    EMPTY_LABELS,
    METRIC_NAME,
    QUANTILE_LABEL,
    TYPE_LABEL,
    UNIT_LABEL,
    Labels,
    format_labels,
    is_legacy_label_name,
    is_legacy_metric_name,
    quote,
)
from signalfire.labels.matcher import Matcher, MatchType, compile_regex, matches_all

__all__ = [
    "BUCKET_LABEL",
    "EMPTY_LABELS",
    "METRIC_NAME",
    "QUANTILE_LABEL",
    "TYPE_LABEL",
    "UNIT_LABEL",
    "Labels",
    "MatchType",
    "Matcher",
    "compile_regex",
    "format_labels",
    "is_legacy_label_name",
    "is_legacy_metric_name",
    "matches_all",
    "quote",
]
