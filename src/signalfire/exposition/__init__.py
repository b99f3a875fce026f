"""Exposition formats: parse scrape bodies into batches, render, negotiate, lint.

- :func:`parse` / :func:`parse_text` / :func:`parse_openmetrics`: a whole scrape
  body (Prometheus text 0.0.4 with UTF-8 names, or OpenMetrics 1.0) into one
  :class:`ParsedScrape` batch; malformed input raises
  :class:`~signalfire.errors.ExpositionParseError` with line and column.
- :func:`write_text` / :func:`write_openmetrics`: render :class:`MetricFamily`
  values for ``/metrics`` and ``/federate``.
- :func:`negotiate`, :func:`scrape_format`, :func:`escape_name`: headers and name escaping.
- :func:`lint`: ``promtool check metrics``.
"""

from signalfire.exposition.lint import LintProblem, MetricCardinality, cardinality, format_problems, lint
from signalfire.exposition.negotiate import (
    DEFAULT_ESCAPING,
    ESCAPING_SCHEMES,
    OPENMETRICS,
    OPENMETRICS_CONTENT_TYPE,
    TEXT,
    TEXT_CONTENT_TYPE,
    Format,
    escape_name,
    negotiate,
    parse,
    parse_accept,
    parse_media_type,
    scrape_accept_header,
    scrape_format,
    unescape_name,
)
from signalfire.exposition.openmetrics import parse_openmetrics
from signalfire.exposition.result import NORMAL_NAN, Exemplar, LabelCache, MetricMetadata, ParsedScrape
from signalfire.exposition.text import parse_text
from signalfire.exposition.write import (
    MetricFamily,
    Sample,
    families_from_parsed,
    write_openmetrics,
    write_text,
)

__all__ = [
    "DEFAULT_ESCAPING",
    "ESCAPING_SCHEMES",
    "NORMAL_NAN",
    "OPENMETRICS",
    "OPENMETRICS_CONTENT_TYPE",
    "TEXT",
    "TEXT_CONTENT_TYPE",
    "Exemplar",
    "Format",
    "LabelCache",
    "LintProblem",
    "MetricCardinality",
    "MetricFamily",
    "MetricMetadata",
    "ParsedScrape",
    "Sample",
    "cardinality",
    "escape_name",
    "families_from_parsed",
    "format_problems",
    "lint",
    "negotiate",
    "parse",
    "parse_accept",
    "parse_media_type",
    "parse_openmetrics",
    "parse_text",
    "scrape_accept_header",
    "scrape_format",
    "unescape_name",
    "write_openmetrics",
    "write_text",
]
