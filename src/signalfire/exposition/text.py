"""Prometheus text format 0.0.4 (and its UTF-8 extension): bytes -> :class:`ParsedScrape`.

Grammar and error wording follow Prometheus's ``model/textparse/promparse.go``
and ``promlex.l``: spaces and tabs between tokens, optional commas between
labels, ``#`` comments, ``# HELP``/``# TYPE`` metadata, integer millisecond
timestamps. The whole body is first matched by one regular expression
(``findall``) for the common shape ``name{a="b",...} value [ts]``; a body with
any other line goes line by line, where only the unusual lines take the
token-by-token path, which is also the one that words the errors.
"""

from __future__ import annotations

import re

from signalfire.exposition._lex import (
    FLOAT,
    LNAME_RE,
    NAME,
    NAME_RE,
    QSTRING_RE,
    check_int64,
    error_at,
    has_surrogates,
    token_error,
    unescape,
    unescape_help_text,
    value_at,
)
from signalfire.exposition.labelset import TEXT_ITEMS, BucketMemo, check_utf8, fast_labels, make_labels
from signalfire.exposition.result import LabelCache, ParsedScrape, ScrapeBuilder
from signalfire.util.gofmt import go_quote

_SAMPLE_RE = re.compile(rf"(?=[a-zA-Z_:{{])({NAME})?+(?:\{{({TEXT_ITEMS})\}})?+ ({FLOAT})(?: ([0-9]++))?+")
#: The whole body at once: per line (key, name, label items, value, ts, comment), or all empty.
_BODY_RE = re.compile(
    rf"^(?:((?=[a-zA-Z_:{{])({NAME})?+(?:\{{({TEXT_ITEMS})\}})?+) ([0-9a-zA-Z.+-]++)(?: ([0-9]++))?+"
    rf"|(#.*+)|)$",
    re.M,
)
_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "untyped": "unknown",
}
#: Which label a family type normalises to float form (Prometheus 3.x).
NORMALIZED_LABEL = {"histogram": "le", "summary": "quantile"}
_WS = " \t"


def decode_lines(body: bytes) -> tuple[list[str], bool]:
    """Split a body into lines; the flag says whether it held invalid UTF-8.

    Invalid bytes are kept as surrogates so comments may carry them (Prometheus
    ignores comments) while names and values are checked where they are used.
    """
    try:
        text = body.decode("utf-8")
        dirty = False
    except UnicodeDecodeError:
        text = body.decode("utf-8", "surrogateescape")
        dirty = True
    return text.split("\n"), dirty


def parse_text(
    body: bytes, *, default_ts: int | None = None, label_cache: LabelCache | None = None
) -> ParsedScrape:
    """Parse a Prometheus text-format scrape body into one batch.

    ``label_cache`` (owned by the caller, typically one per scrape target) maps
    series text to the label set built for it, so a series seen in an earlier
    scrape costs one dict lookup instead of a label parse; the caller bounds it.

    Raises :class:`~signalfire.errors.ExpositionParseError` (line, column, reason)
    at the first malformed line; nothing else escapes.
    """
    lines, dirty = decode_lines(body)
    if not dirty:
        text = "\n".join(lines) if len(lines) > 1 else lines[0]
        rows = _BODY_RE.findall(text)
        # Every line matched the common shape: no per-line regex call is needed.
        if len(rows) == len(lines):
            return _parse_rows(rows, lines, default_ts, label_cache)
    return _parse_lines(lines, dirty, default_ts)


def _parse_rows(
    rows: list[tuple[str, ...]], lines: list[str], default_ts: int | None, cache: LabelCache | None
) -> ParsedScrape:
    """The fast path: one ``findall`` tuple per line, in line order."""
    b = ScrapeBuilder()
    normalize: str | None = None
    labels, keys, vals, tss, line_nos = b.labels, b.keys, [], b.ts, b.line_nos
    build = fast_labels
    memo: BucketMemo = {}
    for line_no, (key, name, items, val, ts, comment) in enumerate(rows, 1):
        if not val:
            if comment:
                normalize = _metadata(b, comment, line_no, normalize)
            continue
        if not name and not items.startswith('"'):
            line = lines[line_no - 1]
            raise error_at(line_no, line, 0, f"metric name not set while parsing: {go_quote(line)}")
        if cache is None:
            labels.append(build(name or None, items, normalize, line_no, lines[line_no - 1], memo))
        else:
            ck = key if normalize is None else (key, normalize)
            lset = cache.get(ck)
            if lset is None:
                lset = cache[ck] = build(name or None, items, normalize, line_no, lines[line_no - 1], memo)
            labels.append(lset)
        keys.append(key)
        vals.append(val)
        tss.append(int(ts) if ts else None)
        line_nos.append(line_no)
    try:
        b.values = [float(v) for v in vals]
    except ValueError:
        return _parse_lines(lines, False, default_ts)  # raises, with the exact position
    # float() is laxer than Go's ParseFloat only for overflow and signed NaN; int64 bounds timestamps.
    if _overflow(b.values, vals) or _signed_nan(b.values, vals) or _big(tss):
        return _parse_lines(lines, False, default_ts)
    b.start_ts = [0] * len(vals)
    return b.build(default_ts)


_SIGNED_NAN_RE = re.compile(r"(?:^|\n)[+-][nN]")


def _overflow(values: list[float], vals: list[str]) -> bool:
    """A finite literal that float() turned into an infinity (Go: "value out of range")."""
    if _INF not in values and _NINF not in values:
        return False
    return any(v in (_INF, _NINF) and t.lstrip("+-")[:1] not in ("i", "I") for v, t in zip(values, vals))


def _signed_nan(values: list[float], vals: list[str]) -> bool:
    return _SIGNED_NAN_RE.search("\n".join(vals)) is not None


def _big(tss: list[int | None]) -> bool:
    return any(t is not None and t >= 2**63 for t in tss)


def _metadata(b: ScrapeBuilder, line: str, line_no: int, normalize: str | None) -> str | None:
    """Apply one ``#`` line; returns the label to normalise from now on."""
    meta = _comment(line, line_no)
    if meta is None:
        return normalize
    kind, name, text = meta
    if kind == "HELP":
        if has_surrogates(text):
            raise error_at(line_no, line, 0, f"help text {go_quote(text)} is not a valid utf8 string")
        b.set_help(name, unescape_help_text(text))
        return normalize
    typ = _TYPES.get(text)
    if typ is None:
        raise error_at(
            line_no,
            line,
            len(line) - len(text),
            f"invalid metric type {go_quote(text)}",
            expected="metric type",
            found=text,
        )
    b.set_type(name, typ)
    # Like Prometheus, the last TYPE seen drives le/quantile normalisation.
    return NORMALIZED_LABEL.get(typ)


def _parse_lines(lines: list[str], dirty: bool, default_ts: int | None) -> ParsedScrape:
    """The general path: line by line, token by token where the common shape does not fit."""
    b = ScrapeBuilder()
    memo: BucketMemo = {}
    normalize: str | None = None
    sample_re = _SAMPLE_RE.fullmatch
    for line_no, line in enumerate(lines, 1):
        if not line:
            continue
        if line[0] == "#" or (line[0] in _WS and line.lstrip(_WS).startswith("#")):
            normalize = _metadata(b, line.lstrip(_WS), line_no, normalize)
            continue
        if dirty:
            check_utf8(line, line_no)
        m = sample_re(line)
        if m is not None and (m.group(1) is not None or m.group(2) is not None):
            name, items, val, ts = m.groups()
            key = line[: m.start(3) - 1]
            if name is None and not (items or "").startswith('"'):
                raise error_at(
                    line_no, line, 0, f"metric name not set while parsing: {go_quote(line.rstrip(_WS))}"
                )
            lset = fast_labels(name, items or "", normalize, line_no, line, memo)
            v = value_at(val, line, line_no, m.start(3))
            t = check_int64(int(ts), line_no, line, m.start(4), ts) if ts is not None else None
        else:
            if not line.strip(_WS):
                continue
            name, pairs, v, t, key = _slow_sample(line, line_no)
            lset = make_labels(name, pairs, normalize, line_no, line)
        b.labels.append(lset)
        b.keys.append(key)
        b.values.append(v)
        b.ts.append(t)
        b.start_ts.append(0)
    return b.build(default_ts)


_INF = float("inf")
_NINF = float("-inf")


def _skip_ws(line: str, i: int) -> int:
    n = len(line)
    while i < n and line[i] in _WS:
        i += 1
    return i


_META_RE = re.compile(rf"# (HELP|TYPE) ({NAME})(?: (.*+))?+")


def _comment(line: str, line_no: int) -> tuple[str, str, str] | None:
    """``# HELP``/``# TYPE`` as (kind, name, raw text); None for a plain comment."""
    m = _META_RE.fullmatch(line)
    if m is not None:
        return m.group(1), m.group(2), m.group(3) or ""
    n = len(line)
    if n < 2 or line[1] not in _WS:
        return None
    i = _skip_ws(line, 1)
    kind = line[i : i + 4]
    if kind not in ("HELP", "TYPE") or i + 4 >= n or line[i + 4] not in _WS:
        return None
    j = _skip_ws(line, i + 4)
    m = QSTRING_RE.match(line, j) if j < n and line[j] == '"' else NAME_RE.match(line, j)
    if m is None:
        raise token_error(
            line_no,
            line,
            j,
            j + 1,
            f"expected metric name after {kind}",
            "LINEBREAK" if j >= n else "INVALID",
        )
    name = unescape(m.group()[1:-1]) if line[j] == '"' else m.group()
    if has_surrogates(name):
        raise error_at(line_no, line, j, f"invalid UTF-8 metric name: {go_quote(name)}")
    return kind, name, line[m.end() + 1 :]


def _label_kind(c: str) -> str:
    if c == "}":
        return "BCLOSE"
    if c == "=":
        return "EQUAL"
    if c == ",":
        return "COMMA"
    if c == '"':
        return "QSTRING"
    if c.isascii() and (c.isalpha() or c == "_"):
        return "LNAME"
    return "INVALID"


def _slow_sample(line: str, ln: int) -> tuple[str, list[tuple[str, str]], float, int | None, str]:
    """Token-by-token parse of one sample line: (name, pairs, value, ts, key), or an error."""
    n = len(line)
    start = i = _skip_ws(line, 0)
    name: str | None = None
    pairs: list[tuple[str, str]] = []
    m = NAME_RE.match(line, i)
    if m is not None:
        name, i = m.group(), m.end()
        j = _skip_ws(line, i)
        if j < n and line[j] == "{":
            name, i = _labels(line, ln, j + 1, name, pairs, start)
    elif line[i] == "{":
        name, i = _labels(line, ln, i + 1, None, pairs, start)
    else:
        raise token_error(ln, line, i, i + 1, "expected a valid start token", "INVALID")
    key = line[start:i]
    if name is None:
        raise error_at(ln, line, start, f"metric name not set while parsing: {go_quote(line.rstrip(_WS))}")
    j = _skip_ws(line, i)
    if j >= n:
        raise token_error(ln, line, j, j, "expected value after metric", "LINEBREAK")
    if line[j] == "{":
        raise token_error(ln, line, j, j + 1, "expected value after metric", "BOPEN")
    k = j
    while k < n and line[k] not in "{ \t":
        k += 1
    v = value_at(line[j:k], line, ln, j)
    i = _skip_ws(line, k)
    ts: int | None = None
    if i < n:
        k = i
        while k < n and "0" <= line[k] <= "9":
            k += 1
        if k == i:
            raise token_error(ln, line, i, i + 1, "expected timestamp or new record", "INVALID")
        ts = check_int64(int(line[i:k]), ln, line, i, line[i:k])
        j = _skip_ws(line, k)
        if j < n:
            raise token_error(ln, line, j, j + 1, "expected next entry after timestamp", "INVALID")
    return name, pairs, v, ts, key


def _labels(
    line: str, ln: int, i: int, name: str | None, pairs: list[tuple[str, str]], start: int
) -> tuple[str | None, int]:
    """Parse label items after ``{`` up to ``}``; returns (metric name, index after ``}``)."""
    n = len(line)
    while True:
        i = _skip_ws(line, i)
        if i >= n:
            raise token_error(ln, line, i, i, "expected label name", "LINEBREAK")
        c = line[i]
        if c == "}":
            return name, i + 1
        quoted = c == '"'
        m = QSTRING_RE.match(line, i) if quoted else LNAME_RE.match(line, i)
        if m is None:
            raise token_error(
                ln, line, i, i + 1, "expected label name", "INVALID" if quoted else _label_kind(c)
            )
        lname = unescape(m.group()[1:-1]) if quoted else m.group()
        j = _skip_ws(line, m.end())
        t = line[j] if j < n else ""
        if quoted and t in (",", "}") and t:
            if name is not None:
                raise error_at(
                    ln, line, i, f"metric name already set while parsing: {go_quote(line[start : j + 1])}"
                )
            if has_surrogates(lname):
                raise error_at(ln, line, i, f"invalid UTF-8 metric name: {go_quote(lname)}")
            name = lname
            if t == "}":
                return name, j + 1
            i = j + 1
            continue
        if t != "=":
            raise token_error(ln, line, j, j + 1, "expected equal", _label_kind(t) if t else "LINEBREAK")
        j = _skip_ws(line, j + 1)
        mv = QSTRING_RE.match(line, j) if j < n and line[j] == '"' else None
        if mv is None:
            raise token_error(ln, line, j, j + 1, "expected label value", "INVALID" if j < n else "LINEBREAK")
        raw = mv.group()[1:-1]
        if has_surrogates(raw) or has_surrogates(lname):
            raise error_at(ln, line, j, f"invalid UTF-8 label value: {go_quote(mv.group())}")
        pairs.append((lname, unescape(raw)))
        i = _skip_ws(line, mv.end())
        if i < n and line[i] == ",":
            i += 1
