"""OpenMetrics 1.0 text: bytes -> :class:`ParsedScrape`, with exemplars and start timestamps.

Follows Prometheus's ``model/textparse/openmetricsparse.go``: exactly one space
between tokens, no free comments or blank lines, ``# EOF`` last, timestamps in
float seconds, ``# {labels} value [ts]`` exemplars, ``# UNIT`` checked against
the name. ``_created`` samples of counters, histograms and summaries become the
start timestamps of their family's samples with the same labels (``le`` and
``quantile`` aside) and, by default, are left out of the batch: that is what
Prometheus 3.x does when it consumes created timestamps
(``created-timestamp-zero-ingestion``). Pass ``keep_created_series=True`` to keep
them as ordinary samples as well (Prometheus's default without that feature).
"""

from __future__ import annotations

import re

from signalfire.errors import ExpositionParseError
from signalfire.exposition._lex import (
    FLOAT,
    LNAME,
    NAME,
    QSTRING,
    FloatSyntaxError,
    error_at,
    has_surrogates,
    seconds_to_ms,
    unescape,
    value_at,
)
from signalfire.exposition.labelset import OM_ITEMS, BucketMemo, check_utf8, fast_labels, split_items
from signalfire.exposition.om_errors import locate_error
from signalfire.exposition.result import Exemplar, LabelCache, ParsedScrape, ScrapeBuilder
from signalfire.exposition.text import decode_lines
from signalfire.labels import Labels
from signalfire.util.gofmt import go_quote

_EITEMS = rf"(?:(?:{LNAME}|{QSTRING})={QSTRING}(?:,(?:{LNAME}|{QSTRING})={QSTRING})*+,?+)?+"
_SAMPLE_RE = re.compile(
    rf"(?:({NAME})(?:\{{({OM_ITEMS})\}})?+|\{{({OM_ITEMS})\}}) ([^ ]++)(?: (?!# \{{)([^ ]++))?+"
    rf"(?: # \{{({_EITEMS})\}} ([^ ]++)(?: ([^ ]++))?+)?+"
)
_META_RE = re.compile(rf"# (HELP|TYPE|UNIT) ({NAME}|{QSTRING}) (.*+)")
_EPAIR_RE = re.compile(rf"({LNAME}|{QSTRING})=({QSTRING})")
_TYPES = frozenset(
    ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")
)
#: Types whose samples take a start timestamp from ``_created`` (``typeRequiresCT``).
_CT_TYPES = frozenset(("counter", "summary", "histogram"))
_NORMALIZED = {"histogram": "le", "summary": "quantile"}
_INF = float("inf")
_FLOATS_RE = re.compile(rf"(?:(?:{FLOAT})\n)*+(?:{FLOAT})?+")


def parse_openmetrics(
    body: bytes,
    *,
    default_ts: int | None = None,
    keep_created_series: bool = False,
    label_cache: LabelCache | None = None,
) -> ParsedScrape:
    """Parse an OpenMetrics 1.0 body into one batch.

    Raises :class:`~signalfire.errors.ExpositionParseError` (line, column, reason)
    at the first malformed line, or when the body does not end with ``# EOF``.
    ``label_cache`` works as in :func:`~signalfire.exposition.parse_text`.
    """
    plain = _plain_samples(body, default_ts, label_cache)
    if plain is not None:
        return plain
    lines, dirty = decode_lines(body)
    b = ScrapeBuilder()
    mtype = "unknown"
    family = ""
    normalize: str | None = None
    created: dict[tuple[str, Labels], int] = {}
    wants_ct: list[tuple[int, str]] = []
    vals: list[str] = []
    memo: BucketMemo = {}
    starts: list[int] = []
    tss: list[str | None] = []  # timestamp tokens, converted at the end like ``vals``
    ts_at: list[int] = []
    ct_family = False
    sample_re = _SAMPLE_RE.fullmatch
    eof_at = 0
    last = len(lines)
    for line_no, line in enumerate(lines, 1):
        if line_no == last and not line:
            break  # The empty string after the final newline is no line.
        if line.startswith("#"):
            if line == "# EOF":
                eof_at = line_no
                break
            m = _META_RE.fullmatch(line)
            if m is None:
                raise locate_error(line, line_no)
            kind, name, text = m.groups()
            if name[0] == '"':
                name = unescape(name[1:-1])
            family = name
            if kind == "TYPE":
                if text not in _TYPES:
                    raise error_at(
                        line_no,
                        line,
                        m.start(3),
                        f"invalid metric type {go_quote(text)}",
                        expected="metric type",
                        found=text,
                    )
                mtype = text
                normalize = _NORMALIZED.get(mtype)
                ct_family = mtype in _CT_TYPES
                b.set_type(name, mtype)
            elif kind == "HELP":
                if has_surrogates(text):
                    raise error_at(
                        line_no, line, m.start(3), f"help text {go_quote(text)} is not a valid utf8 string"
                    )
                b.set_help(name, unescape(text))
            else:
                if text and not (name.endswith("_" + text)):
                    raise error_at(
                        line_no,
                        line,
                        m.start(3),
                        f"unit {go_quote(text)} not a suffix of metric {go_quote(name)}",
                    )
                b.set_unit(name, text)
            continue
        if dirty:
            check_utf8(line, line_no)
        m = sample_re(line)
        if m is None:
            raise locate_error(line, line_no)
        name, items1, items2, val, ts, eitems, evalue, ets = m.groups()
        items = items1 if items1 is not None else items2
        key = line[: m.start(4) - 1]
        if label_cache is None:
            lset = fast_labels(name, items or "", normalize, line_no, line, memo)
        else:
            ck = key if normalize is None else (key, normalize)
            cached = label_cache.get(ck)
            if cached is None:
                cached = label_cache[ck] = fast_labels(name, items or "", normalize, line_no, line, memo)
            lset = cached
        metric = name if name is not None else lset.metric_name
        if ct_family and metric.endswith("_created"):
            # A created timestamp: seconds as written, converted exactly to ms.
            _float(val, line, line_no, m.start(4))
            created[(metric[:-8], lset.without("__name__"))] = _ms(val, line, line_no, m.start(4))
            if not keep_created_series:
                continue
        elif ct_family and metric.startswith(family):
            wants_ct.append((len(vals), family))
        if eitems is not None:
            b.exemplars.append(_exemplar(len(vals), eitems, evalue, ets, m, line, line_no))
        b.labels.append(lset)
        b.keys.append(key)
        vals.append(val)
        starts.append(m.start(4))
        b.line_nos.append(line_no)
        tss.append(ts)
        ts_at.append(m.start(5))
    if not eof_at:
        raise error_at(last, lines[-1], len(lines[-1]), "data does not end with # EOF", expected="# EOF")
    if eof_at < len(lines) and not (eof_at == len(lines) - 1 and lines[-1] == ""):
        raise error_at(eof_at + 1, lines[eof_at], 0, "unexpected data after # EOF", expected="end of data")
    b.values = _floats(vals, starts, b.line_nos, lines)
    b.ts = _timestamps(tss, ts_at, b.line_nos, lines)
    b.start_ts = [0] * len(vals)
    if created:
        for idx, fam in wants_ct:
            lset = b.labels[idx]
            typ = b.type_of(fam)
            rest = lset.without("__name__", "le" if typ == "histogram" else "quantile")
            b.start_ts[idx] = created.get((fam, rest), 0)
    return b.build(default_ts)


#: Deletes the characters of plain decimal literals (and the newlines joining them).
_DECIMAL_CHARS = str.maketrans("", "", "0123456789.eE+-\n")
#: A series as a sample line writes it: ``name``, ``name{...}`` or ``{...}``.
_SERIES_RE = re.compile(rf"({NAME})(?:\{{({OM_ITEMS})\}})?+|\{{({OM_ITEMS})\}}")


def _plain_samples(
    body: bytes, default_ts: int | None, label_cache: LabelCache | None
) -> ParsedScrape | None:
    """A body of ``series value timestamp`` lines and ``# EOF`` only (what backfill files
    and dumps hold), parsed without a loop over lines; None for anything else.

    Each line is cut at its last two spaces. A series text may hold spaces (in quoted
    values), but a cut inside one leaves an unbalanced quote, so checking each distinct
    series text against the full grammar (once: the label cache remembers checked ones)
    proves every cut right. Any doubt (metadata, exemplars, a line without timestamp,
    invalid UTF-8, values or timestamps of unusual form, a label error) returns None,
    and the line parser reads the body and reports the error exactly as it always does."""
    if body.endswith(b"\n# EOF\n"):
        end = len(body) - 7
    elif body.endswith(b"\n# EOF"):
        end = len(body) - 6
    else:
        return None
    if end <= 0 or body.find(b"\n#", 0, end) >= 0:
        return None  # (metadata on the first line fails the series check below)
    try:
        lines = str(memoryview(body)[:end], "utf-8").split("\n")
    except UnicodeDecodeError:
        return None
    rows = [line.rsplit(" ", 2) for line in lines]
    if min(map(len, rows)) != 3:
        return None
    values = _plain_floats([r[1] for r in rows])
    if values is None:
        return None
    ts = _plain_ms_all([r[2] for r in rows])
    if ts is None:
        return None
    keys = [r[0] for r in rows]
    cache = label_cache if label_cache is not None else {}
    lsets = list(map(cache.get, keys))
    if None in lsets:
        memo: BucketMemo = {}
        try:
            for k in [k for k, ls in enumerate(lsets) if ls is None]:
                got = cache.get(keys[k])
                if got is None:
                    m = _SERIES_RE.fullmatch(keys[k])
                    if m is None:
                        return None
                    name, items1, items2 = m.groups()
                    items = items1 if items1 is not None else items2
                    got = cache[keys[k]] = fast_labels(name, items or "", None, k + 1, lines[k], memo)
                lsets[k] = got
        except ExpositionParseError:
            return None
    b = ScrapeBuilder()
    b.labels = lsets  # type: ignore[assignment]  # no None left
    b.keys = keys
    b.values = values
    b.ts = ts  # type: ignore[assignment]  # list[int] is a list[int | None] here
    b.start_ts = [0] * len(keys)
    b.line_nos = list(range(1, len(keys) + 1))
    return b.build(default_ts)


def _floats(vals: list[str], starts: list[int], line_nos: list[int], lines: list[str]) -> list[float]:
    """All sample values at once (:func:`_plain_floats`); only when that fails are the
    tokens looked at one by one to find the line to blame."""
    values = _plain_floats(vals)
    if values is not None:
        return values
    return [_float(v, lines[n - 1], n, lines[n - 1].find(" " + v) + 1) for v, n in zip(vals, line_nos)]


def _plain_floats(vals: list[str]) -> list[float] | None:
    """Value tokens as floats when every one is a finite literal Go's ``ParseFloat`` takes;
    None otherwise.

    ``float`` alone is laxer than Go (tabs, underscores, other scripts' digits, signed
    NaN, overflow). Over the characters of plain decimal literals both take the same
    literals, so a character check suffices there; other tokens (NaN, Inf spellings) are
    checked against Go's syntax by one regex over the joined tokens. Infinities (also
    from overflow, which Go rejects) are left to the token-by-token path.
    """
    joined = "\n".join(vals)
    if joined.translate(_DECIMAL_CHARS) and _FLOATS_RE.fullmatch(joined) is None:
        return None
    try:
        values = list(map(float, vals))
    except ValueError:  # e.g. "1.2.3", or "" from a doubled space
        return None
    if _INF in values or -_INF in values:
        return None
    return values


def _timestamps(
    toks: list[str | None], at: list[int], line_nos: list[int], lines: list[str]
) -> list[int | None]:
    """All sample timestamps at once, as int64 ms (None where a line has none); tokens
    :func:`_plain_ms_all` does not take go token by token through :func:`_timestamp`
    (exponents, a leading ``+``, NaN, errors with their positions)."""
    given = [t for t in toks if t is not None]
    ms = _plain_ms_all(given) if given else []
    if ms is not None:
        if len(given) == len(toks):
            return ms  # type: ignore[return-value]  # list[int] is a list[int | None] here
        it = iter(ms)
        return [None if t is None else next(it) for t in toks]
    return [
        None if t is None else _timestamp(t, lines[n - 1], n, a, "timestamp")
        for t, a, n in zip(toks, at, line_nos)
    ]


def _plain_ms_all(toks: list[str]) -> list[int] | None:
    """Timestamp tokens as exporters and ``promtool`` write them (plain decimal seconds,
    at most 15 integer digits) as int64 ms, exactly as :func:`seconds_to_ms` would
    convert each: one regex check over the joined tokens, then integer arithmetic.
    None when any token has another form."""
    joined = "\n".join(toks)
    if _MS_TS_RE.fullmatch(joined) is not None:  # three decimals: the dot is a scale of 1000
        return list(map(int, joined.replace(".", "").split("\n")))
    if _PLAIN_TS_RE.fullmatch(joined) is not None:
        return list(map(_plain_ms, toks))
    return None


#: Newline-joined timestamps with exactly three decimals (milliseconds), and plain
#: decimal seconds; neither takes an empty token.
_MS_TS = r"-?+[0-9]{1,15}+\.[0-9]{3}"
_MS_TS_RE = re.compile(rf"{_MS_TS}(?:\n{_MS_TS})*+")
_PLAIN_TS = r"-?+[0-9]{1,15}+(?:\.[0-9]++)?+"
_PLAIN_TS_RE = re.compile(rf"{_PLAIN_TS}(?:\n{_PLAIN_TS})*+")


def _plain_ms(tok: str) -> int:
    """``-?digits[.digits]`` seconds as ms, truncated toward zero (as ``seconds_to_ms``)."""
    neg = tok[0] == "-"
    whole, _, frac = tok.lstrip("-").partition(".")
    ms = int(whole) * 1000 + int((frac + "000")[:3])
    return -ms if neg else ms


def _float(tok: str, line: str, line_no: int, idx: int) -> float:
    """One value or timestamp token as Go's ``ParseFloat`` reads it, or a positioned error.
    Python's ``float`` decides alone only for plain decimal characters (it also strips
    whitespace such as a tab, which Go rejects)."""
    if not tok.translate(_DECIMAL_CHARS):
        try:
            v = float(tok)
            if v not in (_INF, -_INF):
                return v
        except ValueError:
            pass
    return value_at(tok, line, line_no, idx)


def _ms(tok: str, line: str, line_no: int, idx: int) -> int:
    try:
        return seconds_to_ms(tok)
    except FloatSyntaxError as err:
        raise error_at(line_no, line, idx, str(err), expected="timestamp", found=tok) from None


def _timestamp(tok: str, line: str, line_no: int, idx: int, what: str) -> int:
    """A float-seconds timestamp as int64 ms; NaN and Inf are errors (``invalid timestamp``)."""
    f = _float(tok, line, line_no, idx)
    if f != f or f in (_INF, -_INF):
        raise error_at(line_no, line, idx, f"invalid {what} {_go_f(f)}", expected=what, found=tok)
    return _ms(tok, line, line_no, idx)


def _go_f(f: float) -> str:
    """Go's ``%f`` of a non-finite float."""
    return "NaN" if f != f else ("+Inf" if f > 0 else "-Inf")


def _exemplar(
    idx: int, items: str, value: str, ts: str | None, m: re.Match[str], line: str, line_no: int
) -> Exemplar:
    pairs = []
    for k, v in _EPAIR_RE.findall(items):
        if k[0] == '"':
            k = unescape(k[1:-1])
        pairs.append((k, unescape(v[1:-1])))
    ev = _float(value, line, line_no, m.start(7))
    ets = _timestamp(ts, line, line_no, m.start(8), "exemplar timestamp") if ts is not None else None
    return Exemplar(idx, Labels.from_pairs(pairs), ev, ets)


__all__ = ["parse_openmetrics", "split_items"]
