"""Render metric families as the text format or OpenMetrics (``/metrics``, ``/federate``).

Output matches prometheus/common's ``expfmt`` writers: values in Go's shortest
``%g`` form (``+Inf``, ``-Inf``, ``NaN``), text timestamps in integer ms,
OpenMetrics timestamps in seconds, names quoted (``{"my.metric"}``) when they are
not legacy names and the client allowed UTF-8, or escaped with the negotiated
``escaping`` scheme otherwise. Rendering is string building by nature and works
sample by sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from signalfire.exposition.negotiate import escape_name
from signalfire.exposition.result import Exemplar, ParsedScrape
from signalfire.labels import METRIC_NAME, Labels, is_legacy_label_name, is_legacy_metric_name
from signalfire.util.gofmt import format_go_g as format_go_float
from signalfire.util.gofmt import format_om_float

#: Suffixes a family's sample names may carry, per type (OpenMetrics naming).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("_count", "_sum", "_created"),
    "info": ("_info",),
}
#: OpenMetrics-only types as the text format spells them.
_TEXT_TYPE = {"unknown": "untyped", "gaugehistogram": "histogram", "info": "gauge", "stateset": "gauge"}


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample to render: ``labels`` include ``__name__``; times in ms.

    ``timestamp`` None writes no timestamp; a non-zero ``start_timestamp`` of a
    counter, histogram or summary sample becomes an OpenMetrics ``_created`` line.
    """

    labels: Labels
    value: float
    timestamp: int | None = None
    exemplar: tuple[Labels, float, int | None] | None = None
    start_timestamp: int = 0


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """A family to render; ``help`` None writes no HELP line, ``type`` uses Prometheus's names."""

    name: str
    type: str = "unknown"
    help: str | None = None
    unit: str = ""
    samples: Sequence[Sample] = field(default_factory=tuple)


def _escape_value(v: str) -> str:
    if "\\" in v or '"' in v or "\n" in v:
        v = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v


def _escape_help(v: str, openmetrics: bool) -> str:
    v = v.replace("\\", "\\\\").replace("\n", "\\n")
    return v.replace('"', '\\"') if openmetrics else v


def _series(labels: Labels, escaping: str, extra: str = "") -> str:
    """``name{a="b",...}`` with UTF-8 names quoted or escaped; ``extra`` is appended to the name."""
    name = ""
    parts = []
    for n, v in labels:
        if n == METRIC_NAME:
            name = v + extra
            continue
        if escaping != "allow-utf-8":
            n = escape_name(n, escaping)
        elif not is_legacy_label_name(n):
            n = '"' + _escape_value(n) + '"'
        parts.append(f'{n}="{_escape_value(v)}"')
    if escaping != "allow-utf-8":
        name = escape_name(name, escaping)
    elif name and not is_legacy_metric_name(name):
        parts.insert(0, '"' + _escape_value(name) + '"')
        name = ""
    return name + "{" + ",".join(parts) + "}" if parts else name


def _meta_name(name: str, escaping: str) -> str:
    if escaping != "allow-utf-8":
        return escape_name(name, escaping)
    return name if is_legacy_metric_name(name) else '"' + _escape_value(name) + '"'


def _om_ts(ms: int) -> str:
    sign = "-" if ms < 0 else ""
    a = abs(ms)
    return f"{sign}{a // 1000}.{a % 1000:03d}" if a % 1000 else f"{sign}{a // 1000}"


def write_text(families: Iterable[MetricFamily], *, escaping: str = "allow-utf-8") -> bytes:
    """The families in the Prometheus text format 0.0.4 (UTF-8 names quoted unless escaped)."""
    out: list[str] = []
    for fam in families:
        mname = _meta_name(fam.name, escaping)
        if fam.help is not None:
            out.append(f"# HELP {mname} {_escape_help(fam.help, False)}\n")
        out.append(f"# TYPE {mname} {_TEXT_TYPE.get(fam.type, fam.type)}\n")
        for s in fam.samples:
            ts = "" if s.timestamp is None else f" {s.timestamp}"
            out.append(f"{_series(s.labels, escaping)} {format_go_float(s.value)}{ts}\n")
    return "".join(out).encode("utf-8", "surrogateescape")


def write_openmetrics(families: Iterable[MetricFamily], *, escaping: str = "allow-utf-8") -> bytes:
    """The families as OpenMetrics 1.0 text, ending with ``# EOF``."""
    out: list[str] = []
    for fam in families:
        mname = _meta_name(fam.name, escaping)
        if fam.help is not None:
            out.append(f"# HELP {mname} {_escape_help(fam.help, True)}\n")
        out.append(f"# TYPE {mname} {fam.type}\n")
        if fam.unit:
            out.append(f"# UNIT {mname} {fam.unit}\n")
        created = _CREATED_DROP.get(fam.type)
        if created is not None and any(x.labels.metric_name.endswith("_created") for x in fam.samples):
            created = None  # The family carries its _created samples itself.
        group: Labels | None = None
        group_st = 0
        for s in fam.samples:
            if created is not None:
                # A _created line follows the last sample of its label group, where
                # Prometheus's parser looks for it (it only peeks ahead).
                g = s.labels.without(*created)
                if g != group:
                    _created_line(out, fam.name, group, group_st, escaping)
                    group, group_st = g, s.start_timestamp
            line = f"{_series(s.labels, escaping)} {format_om_float(s.value)}"
            if s.timestamp is not None:
                line += " " + _om_ts(s.timestamp)
            if s.exemplar is not None:
                elabels, evalue, ets = s.exemplar
                line += f" # {_series(elabels, escaping) or '{}'} {format_om_float(evalue)}"
                if ets is not None:
                    line += " " + _om_ts(ets)
            out.append(line + "\n")
        _created_line(out, fam.name, group, group_st, escaping)
    out.append("# EOF\n")
    return "".join(out).encode("utf-8", "surrogateescape")


#: Family types with start timestamps, and the labels a _created line does not carry.
_CREATED_DROP = {
    "counter": (METRIC_NAME,),
    "histogram": (METRIC_NAME, "le"),
    "summary": (METRIC_NAME, "quantile"),
}


def _created_line(out: list[str], family: str, group: Labels | None, st: int, escaping: str) -> None:
    if group is None or not st:
        return
    lset = Labels(tuple(sorted((*group, (METRIC_NAME, family + "_created")))))
    out.append(f"{_series(lset, escaping)} {_om_ts(st)}\n")


def family_name(metric: str, metadata: dict[str, str]) -> str:
    """The family a sample named ``metric`` belongs to, given family name -> type."""
    if metric in metadata:
        return metric
    for typ_suffixes in _SUFFIXES.items():
        typ, suffixes = typ_suffixes
        for suf in suffixes:
            if metric.endswith(suf) and metadata.get(metric[: -len(suf)]) == typ:
                return metric[: -len(suf)]
    return metric


def families_from_parsed(parsed: ParsedScrape) -> list[MetricFamily]:
    """Group a parse result back into families (consecutive samples of one family, in order)."""
    types = {name: m.type for name, m in parsed.metadata.items()}
    exemplars: dict[int, Exemplar] = {e.sample_idx: e for e in parsed.exemplars}
    families: list[MetricFamily] = []
    current: str | None = None
    samples: list[Sample] = []
    seen: set[str] = set()

    def flush() -> None:
        if current is None:
            return
        meta = parsed.metadata.get(current)
        families.append(
            MetricFamily(
                current,
                meta.type if meta else "unknown",
                meta.help if meta and current in parsed.metadata else None,
                meta.unit if meta else "",
                tuple(samples),
            )
        )
        seen.add(current)

    for i, lset in enumerate(parsed.labels):
        fam = family_name(lset.metric_name, types)
        if fam != current:
            flush()
            current, samples = fam, []
        ex = exemplars.get(i)
        samples.append(
            Sample(
                lset,
                float(parsed.values[i]),
                int(parsed.timestamps[i]) if parsed.has_timestamp[i] else None,
                (ex.labels, ex.value, ex.ts) if ex is not None else None,
                int(parsed.start_timestamps[i]),
            )
        )
    flush()
    # Families with metadata but no samples still get their HELP/TYPE lines.
    for name, meta in parsed.metadata.items():
        if name not in seen:
            families.append(MetricFamily(name, meta.type, meta.help, meta.unit, ()))
    return families
