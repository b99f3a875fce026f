"""Lexical helpers shared by the text-format and OpenMetrics parsers.

Both parsers follow Prometheus's ``model/textparse`` lexers: the same token
classes (metric name, quoted string, label value, value, timestamp), the same
escape rules and the same float syntax (Go's ``strconv.ParseFloat`` without hex,
``p`` exponents or underscores). Errors are worded like ``textparse``'s
``parseError``: ``expected equal, got "}" ("BCLOSE") while parsing: "foo{a}"``.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

from signalfire.errors import ExpositionParseError
from signalfire.util.gofmt import format_om_float, go_quote

#: A metric name that needs no quotes: ``[a-zA-Z_:][a-zA-Z0-9_:]*``.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*+"
#: A label name that needs no quotes: ``[a-zA-Z_][a-zA-Z0-9_]*``.
LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*+"
#: A double-quoted string with backslash escapes (label values, quoted names).
QSTRING = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
#: Go's float syntax as ``parseFloat`` accepts it (sign, decimal, exponent, Inf, NaN).
FLOAT = (
    r"[+-]?+(?:(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][+-]?+[0-9]++)?+"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?+)|[nN][aA][nN]"
)

NAME_RE = re.compile(NAME)
LNAME_RE = re.compile(LNAME)
QSTRING_RE = re.compile(QSTRING)
FLOAT_RE = re.compile(FLOAT)
#: One ``name="value"`` pair inside braces, for the fast paths (structure already checked).
LABEL_PAIR_RE = re.compile(r"(" + LNAME + r"|" + QSTRING + r')="((?:[^"\\]|\\.)*+)"')
_ESCAPE_RE = re.compile(r"\\(.)", re.S)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


class FloatSyntaxError(ValueError):
    """A value token that Go's ``strconv.ParseFloat`` would reject; ``reason`` is Go's wording."""


def _unescape_one(m: re.Match[str]) -> str:
    c = m.group(1)
    # Prometheus's replacer knows only \" \\ and \n; other escapes stay as written.
    return _ESCAPES.get(c, "\\" + c)


def unescape(s: str) -> str:
    """Undo label-value escaping (``\\"``, ``\\\\``, ``\\n``) as Prometheus's ``lvalReplacer``."""
    if "\\" not in s:
        return s
    return _ESCAPE_RE.sub(_unescape_one, s)


def unescape_help_text(s: str) -> str:
    """Undo text-format HELP escaping (only ``\\\\`` and ``\\n``, as ``helpReplacer``)."""
    if "\\" not in s:
        return s
    return _ESCAPE_RE.sub(lambda m: {"\\": "\\", "n": "\n"}.get(m.group(1), m.group(0)), s)


def go_float(tok: str) -> float:
    """Parse ``tok`` exactly as Prometheus's ``parseFloat`` does.

    Raises :class:`FloatSyntaxError` with Go's reason for anything ``ParseFloat``
    rejects, including finite literals that overflow float64 ("value out of range").
    """
    if FLOAT_RE.fullmatch(tok) is None:
        if any(c in tok for c in "pP_"):
            raise FloatSyntaxError("unsupported character in float")
        raise FloatSyntaxError(f"strconv.ParseFloat: parsing {go_quote(tok)}: invalid syntax")
    v = float(tok)
    if v in (float("inf"), float("-inf")) and tok.lstrip("+-")[:1] not in ("i", "I"):
        raise FloatSyntaxError(f"strconv.ParseFloat: parsing {go_quote(tok)}: value out of range")
    return v


def seconds_to_ms(tok: str) -> int:
    """An OpenMetrics timestamp token (float seconds) as int64 milliseconds, truncated.

    Prometheus computes ``int64(f * 1000)`` in floating point, which turns
    ``1.005`` into 1004; we convert the decimal text exactly instead so that every
    millisecond value written by :func:`write_openmetrics` reads back unchanged.
    """
    try:
        ms = int(Decimal(tok).scaleb(3))
    except (InvalidOperation, ValueError, OverflowError) as err:
        raise FloatSyntaxError(f"invalid timestamp {tok}") from err
    if not -(2**63) <= ms < 2**63:
        raise FloatSyntaxError(f"timestamp {tok} out of range")
    return ms


@functools.lru_cache(maxsize=4096)
def normalize_float_label(v: str) -> str:
    """Prometheus 3.x ``le``/``quantile`` normalisation: ``"1"`` becomes ``"1.0"``.

    Values that do not parse as a float (``strconv.ParseFloat``) stay as they are.
    """
    try:
        f = go_float(v)
    except FloatSyntaxError:
        try:  # ParseFloat also takes hex and underscores here; Python float() is close enough.
            f = float(v)
        except ValueError:
            return v
    return format_om_float(f)


def byte_column(line: str, idx: int) -> int:
    """1-based byte column of character ``idx`` in ``line`` (errors count bytes, like Go)."""
    return len(line[:idx].encode("utf-8", "surrogateescape")) + 1


_EXPECTED = (
    ("metric name not set", "metric name"),
    ("metric name already set", "label name"),
    ("label name", "unique label name"),
    ("invalid metric type", "metric type"),
    ("help text", "UTF-8 help text"),
    ("invalid UTF-8", "UTF-8"),
    ("unit ", "unit that suffixes the metric name"),
    ("strconv.ParseFloat", "value"),
    ("unsupported character in float", "value"),
    ("invalid timestamp", "timestamp"),
    ("invalid exemplar timestamp", "exemplar timestamp"),
    ("expected text in", "text"),
    ("data does not end", "# EOF"),
    ("unexpected data after", "end of data"),
)


def error_at(
    line_no: int, line: str, idx: int, message: str, *, expected: str = "", found: str = ""
) -> ExpositionParseError:
    """An :class:`ExpositionParseError` at character ``idx`` of ``line`` (line 1-based).

    When ``expected`` is not given it is derived from the message, so every error
    says what would have been valid there.
    """
    if not expected:
        expected = next((exp for prefix, exp in _EXPECTED if message.startswith(prefix)), "valid line")
    return ExpositionParseError(
        message, line=line_no, column=byte_column(line, idx), expected=expected, found=found
    )


def token_error(
    line_no: int, line: str, idx: int, end: int, expected: str, kind: str
) -> ExpositionParseError:
    """``textparse``'s ``parseError``: ``<expected>, got "<tok>" ("<KIND>") while parsing: "<line>"``."""
    tok = line[idx:end] if end > idx else line[idx : idx + 1]
    if idx >= len(line):
        tok, kind = "\n" if kind == "LINEBREAK" else "", kind
    context = go_quote(line[: max(end, idx + 1)])
    msg = f"{expected}, got {go_quote(tok)} ({go_quote(kind)}) while parsing: {context}"
    return error_at(line_no, line, idx, msg, expected=expected, found=tok)


def has_surrogates(s: str) -> bool:
    """True when ``s`` came from invalid UTF-8 (decoded with ``surrogateescape``)."""
    return _SURROGATE_RE.search(s) is not None


_SURROGATE_RE = re.compile("[\udc80-\udcff]")


def check_int64(v: int, line_no: int, line: str, idx: int, tok: str) -> int:
    """Reject text-format timestamps outside int64, with ``strconv.ParseInt``'s wording."""
    if v >= 2**63:
        raise error_at(
            line_no,
            line,
            idx,
            f"strconv.ParseInt: parsing {go_quote(tok)}: value out of range while parsing: {go_quote(line)}",
            expected="timestamp",
            found=tok,
        )
    return v


def value_at(tok: str, line: str, line_no: int, idx: int) -> float:
    """``tok`` (at column ``idx`` of ``line``) as a sample value by Go's ``ParseFloat``, or
    the error Prometheus's parsers give for it, naming the line read so far."""
    try:
        return go_float(tok)
    except FloatSyntaxError as err:
        raise error_at(
            line_no,
            line,
            idx,
            f"{err} while parsing: {go_quote(line[: idx + len(tok)])}",
            expected="value",
            found=tok,
        ) from None
