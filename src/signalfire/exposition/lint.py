"""``promtool check metrics``: lint a text-format body for naming and metadata problems.

The rules and their messages are client_golang's ``testutil/promlint`` (the
default validations promtool runs): help text, base units, ``_total`` on
counters only, names and labels reserved for histograms and summaries, types in
names, colons, camelCase, abbreviated units, ``_timestamp_seconds`` on gauges,
and duplicate series. Samples are grouped into families as expfmt's text parser
does: a sample joins the family of its own name, or for typed histograms and
summaries the family its ``_bucket``/``_sum``/``_count`` suffix points to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from signalfire.errors import ExpositionParseError
from signalfire.exposition.text import _comment, decode_lines, parse_text
from signalfire.labels import Labels

_UNITS = {
    "amperes": "amperes",
    "bytes": "bytes",
    "celsius": "celsius",
    "grams": "grams",
    "joules": "joules",
    "kelvin": "kelvin",
    "meters": "meters",
    "metres": "metres",
    "seconds": "seconds",
    "volts": "volts",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "kelvins": "kelvin",
    "fahrenheit": "celsius",
    "rankine": "celsius",
    "inches": "meters",
    "yards": "meters",
    "miles": "meters",
    "bits": "bytes",
    "calories": "joules",
    "pounds": "grams",
    "ounces": "grams",
}
_PREFIXES = (
    "pico",
    "nano",
    "micro",
    "milli",
    "centi",
    "deci",
    "deca",
    "hecto",
    "kilo",
    "kibi",
    "mega",
    "mibi",
    "giga",
    "gibi",
    "tera",
    "tebi",
    "peta",
    "pebi",
)
_ABBREVIATIONS = ("s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d")
#: dto.MetricType names (untyped excluded), lower-cased, as lintMetricTypeInName checks them.
_TYPE_NAMES = ("counter", "gauge", "summary", "histogram", "gauge_histogram")
_CAMEL = re.compile(r"[a-z][A-Z]")


@dataclass(frozen=True, slots=True, order=True)
class LintProblem:
    """One problem: the family name and promlint's text (promtool prints ``metric text``)."""

    metric: str
    text: str


@dataclass
class _Family:
    name: str
    type: str = "untyped"
    has_help: bool = False
    series: list[Labels] = field(default_factory=list)


def lint(body: bytes) -> list[LintProblem]:
    """Lint a text-format body; problems sorted by metric, then text (as promlint sorts).

    Raises :class:`~signalfire.errors.ExpositionParseError` when the body does not
    parse, or repeats a HELP/TYPE line (expfmt rejects both).
    """
    families = _families(body)
    problems: list[LintProblem] = []
    for fam in families.values():
        problems.extend(LintProblem(fam.name, text) for text in _lint_family(fam))
    return sorted(problems)


def _families(body: bytes) -> dict[str, _Family]:
    parsed = parse_text(body)
    families: dict[str, _Family] = {}
    lines, _ = decode_lines(body)
    samples = iter(parsed.labels)
    seen_samples: set[str] = set()
    for line_no, line in enumerate(lines, 1):
        stripped = line.lstrip(" \t")
        if not stripped:
            continue
        if not stripped.startswith("#"):
            # parse_text kept one label set per sample line, in line order.
            lset = next(samples)
            metric = lset.metric_name
            seen_samples.add(metric)
            fam = families.get(metric) or _suffix_family(metric, families)
            if fam is None:
                fam = families.setdefault(metric, _Family(metric))
            fam.series.append(lset)
            continue
        meta = _comment(stripped, line_no)
        if meta is None:
            continue
        kind, name, text = meta
        fam = families.setdefault(name, _Family(name))
        if kind == "HELP":
            if fam.has_help:
                raise ExpositionParseError(
                    f"second HELP line for metric name {name!r}", line=line_no, column=1
                )
            fam.has_help = True
        else:
            if fam.type != "untyped" or name in seen_samples:
                raise ExpositionParseError(
                    f"second TYPE line for metric name {name!r}, or TYPE reported after samples",
                    line=line_no,
                    column=1,
                )
            fam.type = text
    return families


def _suffix_family(metric: str, families: dict[str, _Family]) -> _Family | None:
    for suffix, types in (
        ("_bucket", ("histogram",)),
        ("_sum", ("histogram", "summary")),
        ("_count", ("histogram", "summary")),
    ):
        if metric.endswith(suffix):
            fam = families.get(metric[: -len(suffix)])
            if fam is not None and fam.type in types:
                return fam
    return None


def _lint_family(fam: _Family) -> list[str]:
    out: list[str] = []
    name, typ = fam.name, fam.type
    lower = name.lower()
    if not fam.has_help:
        out.append("no help text")
    unit = _metric_unit(name)
    if unit is not None and unit[0] != unit[1]:
        out.append(f'use base unit "{unit[1]}" instead of "{unit[0]}"')
    total = name.endswith("_total")
    if typ == "counter" and not total:
        out.append('counter metrics should have "_total" suffix')
    elif typ not in ("untyped", "counter") and total:
        out.append('non-counter metrics should not have "_total" suffix')
    if typ not in ("untyped", "gauge") and name.endswith("_timestamp_seconds"):
        out.append('non-gauge metrics should not have "_timestamp_seconds" suffix')
    if typ != "untyped":
        out.extend(_reserved(fam))
    for t in _TYPE_NAMES:
        if f"_{t}_" in lower or lower.endswith("_" + t):
            out.append(f"metric name should not include type '{t}'")
    if ":" in name:
        out.append("metric names should not contain ':'")
    if _CAMEL.search(name):
        out.append("metric names should be written in 'snake_case' not 'camelCase'")
    for lset in fam.series:
        for n, _ in lset:
            if n != "__name__" and _CAMEL.search(n):
                out.append("label names should be written in 'snake_case' not 'camelCase'")
    for a in _ABBREVIATIONS:
        if f"_{a}_" in lower or lower.endswith("_" + a):
            out.append("metric names should not contain abbreviated units")
    keys = [tuple(lset) for lset in fam.series]
    if len(set(keys)) != len(keys):
        out.extend("metric not unique" for _ in range(len(keys) - len(set(keys))))
    return out


def _reserved(fam: _Family) -> list[str]:
    out = []
    hist, summ = fam.type == "histogram", fam.type == "summary"
    if not hist and fam.name.endswith("_bucket"):
        out.append('non-histogram metrics should not have "_bucket" suffix')
    if not hist and not summ and fam.name.endswith("_count"):
        out.append('non-histogram and non-summary metrics should not have "_count" suffix')
    if not hist and not summ and fam.name.endswith("_sum"):
        out.append('non-histogram and non-summary metrics should not have "_sum" suffix')
    for lset in fam.series:
        for n, _ in lset:
            if not hist and n == "le":
                out.append('non-histogram metrics should not have "le" label')
            if not summ and n == "quantile":
                out.append('non-summary metrics should not have "quantile" label')
    return out


def _metric_unit(name: str) -> tuple[str, str] | None:
    """The first unit word in ``name`` (optionally with an SI/IEC prefix) and its base unit."""
    for part in name.split("_"):
        if part in _UNITS:
            return part, _UNITS[part]
        for p in _PREFIXES:
            if part.startswith(p) and part[len(p) :] in _UNITS:
                return part, _UNITS[part[len(p) :]]
    return None


@dataclass(frozen=True, slots=True)
class MetricCardinality:
    """One row of ``promtool check metrics --extended``: series per family and share of all."""

    metric: str
    cardinality: int
    percentage: float


def cardinality(body: bytes) -> list[MetricCardinality]:
    """Series per family, largest first (stable), as ``promtool check metrics --extended`` lists them.

    A histogram or summary counts all its series (buckets or quantiles, ``_sum``, ``_count``).
    """
    families = [f for f in _families(body).values() if f.series]
    total = sum(len(f.series) for f in families)
    rows = [MetricCardinality(f.name, len(f.series), len(f.series) / total) for f in families]
    return sorted(rows, key=lambda r: -r.cardinality)


def format_problems(problems: list[LintProblem]) -> str:
    """promtool's output: one ``metric text`` line per problem."""
    return "".join(f"{p.metric} {p.text}\n" for p in problems)
