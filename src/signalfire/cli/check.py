"""``signalfire check metrics``: lint an exposition body from stdin, promtool's exit codes.

promtool prints each problem as ``<metric> <text>`` on stderr and exits 3 when there are
lint problems, 1 when the input cannot be parsed ("error while linting: ..."), 0 when
clean. ``--extended`` adds the cardinality table promtool prints (metric family, series,
share of all series).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, BinaryIO, TextIO

from signalfire.cli._format import tabwrite
from signalfire.errors import SignalfireError
from signalfire.labels import METRIC_NAME

SUCCESS = 0
FAILURE = 1
LINT_ERROR = 3
TEXT_TYPE = "text/plain; version=0.0.4"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0"
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info", "_gcount", "_gsum")


def _content_type(body: bytes) -> str:
    """OpenMetrics when the body ends with ``# EOF`` (its mandatory last line), else text format."""
    return OPENMETRICS_TYPE if body.rstrip().endswith(b"# EOF") else TEXT_TYPE


def _problem_text(p: Any) -> str:
    if isinstance(p, tuple):
        return " ".join(str(x) for x in p)
    metric = getattr(p, "metric", "")
    text = getattr(p, "text", str(p))
    return f"{metric} {text}" if metric else str(text)


def family_of(name: str, families: set[str]) -> str:
    """The metric family a sample name belongs to (``foo_bucket`` -> ``foo`` if ``foo`` is declared)."""
    if name in families:
        return name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            return name[: -len(suffix)]
    return name


def cardinality_table(scrape: Any) -> str:
    """promtool's ``--extended`` table: series per family, largest first, and a total."""
    families = set(scrape.metadata)
    counts: Counter[str] = Counter()
    for ls in dict.fromkeys(scrape.labels):  # one entry per distinct series
        counts[family_of(ls.get(METRIC_NAME), families)] += 1
    total = sum(counts.values())
    rows = [("Metric", "Cardinality", "Percentage", "")]
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append((name, str(n), f"{100 * n / total:.2f}%", ""))
    rows.append(("Total", str(total), "100%", ""))
    return tabwrite(rows, minwidth=4, padding=4)


def check_metrics(
    stdin: BinaryIO, extended: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Lint the body read from ``stdin``; returns promtool's exit code."""
    from signalfire.exposition import lint, parse

    out = out or sys.stdout
    err = err or sys.stderr
    body = stdin.read()
    try:
        problems = list(lint(body))
    except SignalfireError as e:
        print(f"error while linting: {e}", file=err)
        return FAILURE
    for p in problems:
        print(_problem_text(p), file=err)
    if extended:
        try:
            scrape = parse(body, _content_type(body))
        except SignalfireError as e:
            print(f"error while parsing text to metric families: {e}", file=err)
            return FAILURE
        out.write(cardinality_table(scrape))
    return LINT_ERROR if problems else SUCCESS
