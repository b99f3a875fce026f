"""Content negotiation: Accept / Content-Type headers, formats and name escaping.

The scrape side reads a target's ``Content-Type`` to pick a parser (:func:`parse`)
and builds the ``Accept`` header Prometheus sends (:func:`scrape_accept_header`).
The serving side (``/metrics``, ``/federate``) picks an output format from the
client's ``Accept`` header (:func:`negotiate`), including the ``escaping=``
parameter of Prometheus 3.x: ``allow-utf-8`` (names as they are),
``underscores``, ``dots`` and ``values`` (prometheus/common ``model.EscapeName``).
"""

from __future__ import annotations

from dataclasses import dataclass

from signalfire.errors import BadDataError
from signalfire.exposition.openmetrics import parse_openmetrics
from signalfire.exposition.result import LabelCache, ParsedScrape
from signalfire.exposition.text import parse_text
from signalfire.labels import is_legacy_metric_name

TEXT = "text"
OPENMETRICS = "openmetrics"
#: ``escaping=`` values; "allow-utf-8" means no escaping.
ESCAPING_SCHEMES = ("allow-utf-8", "underscores", "dots", "values")
#: Default when a client names no (or an unknown) scheme: prometheus/common's ``NameEscapingScheme``.
DEFAULT_ESCAPING = "underscores"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Format:
    """A negotiated exposition format: ``kind`` (text/openmetrics), version and name escaping."""

    kind: str = TEXT
    version: str = "0.0.4"
    escaping: str = DEFAULT_ESCAPING

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` to answer with, escaping included as Prometheus does."""
        if self.kind == OPENMETRICS:
            base = f"application/openmetrics-text; version={self.version}; charset=utf-8"
        else:
            base = f"text/plain; version={self.version}; charset=utf-8"
        return f"{base}; escaping={self.escaping}"


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """``"text/plain; version=0.0.4"`` -> ``("text/plain", {"version": "0.0.4"})`` (lower-cased type)."""
    parts = value.split(";")
    media = parts[0].strip().lower()
    params: dict[str, str] = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        if eq:
            params[k.strip().lower()] = v.strip().strip('"')
    return media, params


def parse_accept(header: str) -> list[tuple[str, dict[str, str], float]]:
    """Accept header entries as (media type, params, q), best first (stable for equal q)."""
    entries = []
    for pos, item in enumerate(header.split(",")):
        if not item.strip():
            continue
        media, params = parse_media_type(item)
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        entries.append((-q, pos, media, params))
    entries.sort()
    return [(media, params, -negq) for negq, _, media, params in entries if negq < 0]


def negotiate(accept: str, *, openmetrics: bool = True) -> Format:
    """The output format for an ``Accept`` header (expfmt ``NegotiateIncludingOpenMetrics``).

    Text for ``text/plain`` (version 0.0.4, 1.0.0 or none), OpenMetrics for
    ``application/openmetrics-text`` when ``openmetrics`` is allowed, text when
    nothing matches. Protobuf is not offered.
    """
    for media, params, _ in parse_accept(accept):
        escaping = params.get("escaping", DEFAULT_ESCAPING)
        if escaping not in ESCAPING_SCHEMES:
            escaping = DEFAULT_ESCAPING
        version = params.get("version", "")
        if media == "text/plain" and version in ("", "0.0.4", "1.0.0"):
            return Format(TEXT, version or "0.0.4", escaping)
        if openmetrics and media == "application/openmetrics-text" and version in ("", "0.0.1", "1.0.0"):
            return Format(OPENMETRICS, version or "1.0.0", escaping)
    return Format(TEXT, "0.0.4", DEFAULT_ESCAPING)


def scrape_format(content_type: str, fallback: str = "") -> str:
    """Which parser a scraped ``Content-Type`` needs: ``"text"`` or ``"openmetrics"``.

    An empty or unknown type uses ``fallback`` (a scrape config's
    ``fallback_scrape_protocol``); without one it is an error, as in Prometheus 3.x.
    """
    media, _ = parse_media_type(content_type)
    if media == "application/openmetrics-text":
        return OPENMETRICS
    if media == "text/plain":
        return TEXT
    if fallback:
        fb = fallback.lower()
        return OPENMETRICS if fb.startswith("openmetrics") else TEXT
    raise BadDataError(
        f"received unsupported Content-Type {content_type!r} "
        "and no fallback_scrape_protocol specified for target"
    )


def scrape_accept_header(protocols: tuple[str, ...] | None = None, escaping: str = "allow-utf-8") -> str:
    """The ``Accept`` header Prometheus sends for ``scrape_protocols`` (protobuf left out).

    Protocol names are Prometheus's: ``OpenMetricsText1.0.0``, ``OpenMetricsText0.0.1``,
    ``PrometheusText1.0.0``, ``PrometheusText0.0.4``.
    """
    headers = {
        "OpenMetricsText1.0.0": f"application/openmetrics-text;version=1.0.0;escaping={escaping}",
        "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
        "PrometheusText1.0.0": f"text/plain;version=1.0.0;escaping={escaping}",
        "PrometheusText0.0.4": "text/plain;version=0.0.4",
    }
    chosen = [p for p in (protocols or tuple(headers)) if p in headers]
    weight = len(chosen) + 1
    parts = []
    for p in chosen:
        parts.append(f"{headers[p]};q=0.{weight}")
        weight -= 1
    parts.append(f"*/*;q=0.{weight}")
    return ",".join(parts)


def parse(
    body: bytes,
    content_type: str = "",
    *,
    default_ts: int | None = None,
    keep_created_series: bool = False,
    label_cache: LabelCache | None = None,
) -> ParsedScrape:
    """Parse a scrape body, OpenMetrics if ``content_type`` says so, the text format otherwise.

    See :func:`parse_text` and :func:`parse_openmetrics` for the keyword arguments.
    """
    media, _ = parse_media_type(content_type)
    if media == "application/openmetrics-text":
        return parse_openmetrics(
            body, default_ts=default_ts, keep_created_series=keep_created_series, label_cache=label_cache
        )
    return parse_text(body, default_ts=default_ts, label_cache=label_cache)


def _legacy_rune(c: str, i: int) -> bool:
    return c.isascii() and (c.isalpha() or c in "_:" or (c.isdigit() and i > 0))


def escape_name(name: str, scheme: str) -> str:
    """``model.EscapeName``: make a UTF-8 name legacy-valid under ``scheme``.

    ``underscores`` replaces each invalid character with ``_``; ``dots`` writes
    ``.`` as ``_dot_``, ``_`` as ``__`` and other invalid characters as ``__``;
    ``values`` prefixes ``U__`` and writes each invalid character as ``_<hex>_``.
    """
    if not name or scheme == "allow-utf-8":
        return name
    if scheme == "underscores":
        if is_legacy_metric_name(name):
            return name
        return "".join(c if _legacy_rune(c, i) else "_" for i, c in enumerate(name))
    if scheme == "dots":
        out = []
        for i, c in enumerate(name):
            if c == "_":
                out.append("__")
            elif c == ".":
                out.append("_dot_")
            else:
                out.append(c if _legacy_rune(c, i) else "__")
        return "".join(out)
    if scheme == "values":
        if is_legacy_metric_name(name):
            return name
        out = ["U__"]
        for i, c in enumerate(name):
            if c == "_":
                out.append("__")
            elif _legacy_rune(c, i):
                out.append(c)
            elif 0xD800 <= ord(c) <= 0xDFFF:
                out.append("_FFFD_")
            else:
                out.append(f"_{ord(c):x}_")
        return "".join(out)
    raise ValueError(f"unknown escaping scheme {scheme!r}")


def unescape_name(name: str, scheme: str) -> str:
    """The inverse of :func:`escape_name` for ``dots`` and ``values`` (others are lossy)."""
    if scheme == "dots":
        out, i, n = [], 0, len(name)
        while i < n:
            if name.startswith("_dot_", i):
                out.append(".")
                i += 5
            elif name.startswith("__", i):
                out.append("_")
                i += 2
            else:
                out.append(name[i])
                i += 1
        return "".join(out)
    if scheme == "values" and name.startswith("U__"):
        out, i, n = [], 3, len(name)
        while i < n:
            if name.startswith("__", i):
                out.append("_")
                i += 2
            elif name[i] == "_":
                j = name.find("_", i + 1)
                if j < 0:
                    return name
                try:
                    out.append(chr(int(name[i + 1 : j], 16)))
                except ValueError:
                    return name
                i = j + 1
            else:
                out.append(name[i])
                i += 1
        return "".join(out)
    return name
