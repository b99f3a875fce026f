"""The small languages inside Prometheus test scripts: durations, numbers, series identifiers
and value sequences (conformance README A.2, A.4, A.5, A.7).

This is test-side code on purpose: the runner must not trust the project's own PromQL
parser to read the expectations it checks. Everything raises :class:`NotationError`
with the offending text, so a broken test line fails loudly instead of silently passing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from signalfire._types import STALE_NAN
from signalfire.labels import Labels


class NotationError(ValueError):
    """A line of a test script that does not follow the notation."""


# ---------------------------------------------------------------- durations

_DUR_UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
_DUR_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_DUR_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


def parse_duration(text: str) -> int:
    """A Prometheus duration (``1m30s``, ``0``) -> ms; units must go from largest to smallest."""
    if text == "0":
        return 0
    pos = 0
    total = 0
    last_rank = -1
    while pos < len(text):
        m = _DUR_PART.match(text, pos)
        if m is None:
            raise NotationError(f"not a valid duration string: {text!r}")
        rank = _DUR_ORDER.index(m.group(2))
        if rank <= last_rank:
            raise NotationError(f"not a valid duration string: {text!r} (units out of order)")
        last_rank = rank
        total += int(m.group(1)) * _DUR_UNITS_MS[m.group(2)]
        pos = m.end()
    if not text:
        raise NotationError("empty duration")
    return total


def parse_signed_duration(text: str) -> int:
    """A duration with an optional sign (start-timestamp offsets, A.7)."""
    if text[:1] in "+-":
        v = parse_duration(text[1:])
        return -v if text[0] == "-" else v
    return parse_duration(text)


# ---------------------------------------------------------------- numbers

_FLOAT_RE = re.compile(
    r"[+-]?(?:inf(?:inity)?|nan|(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:e[+-]?\d(?:_?\d)*)?)",
    re.IGNORECASE,
)


def parse_float(text: str) -> float:
    """A float as the value notation allows it: decimal, exponent, sign, Inf/NaN; no hex."""
    if _FLOAT_RE.fullmatch(text) is None:
        raise NotationError(f"not a number: {text!r}")
    return float(text.replace("_", ""))


_GO_INT_RE = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)")


def parse_scalar_line(text: str) -> float | None:
    """A bare-number eval result line (A.9.4): a Go integer with base prefix, else a float."""
    if _GO_INT_RE.fullmatch(text):
        sign = -1 if text[0] == "-" else 1
        body = text.lstrip("+-").replace("_", "")
        if body.lower().startswith(("0x", "0o", "0b")):
            return float(sign * int(body, 0))
        if len(body) > 1 and body[0] == "0":
            return float(sign * int(body, 8))
        return float(sign * int(body))
    try:
        return parse_float(text)
    except NotationError:
        return None


# ---------------------------------------------------------------- Go strings

_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    '"': 34,
    "'": 39,
    "`": 96,
}


def read_string(text: str, pos: int) -> tuple[str, int]:
    """Read a PromQL string literal starting at ``text[pos]``; returns (value, end).

    ``\\x``/octal escapes give raw bytes, so the value is decoded from UTF-8 with
    ``surrogateescape``: invalid bytes survive as the surrogates Labels uses for them.
    """
    quote_char = text[pos]
    if quote_char not in "\"'`":
        raise NotationError(f"expected a string at {pos}: {text!r}")
    i = pos + 1
    if quote_char == "`":
        end = text.find("`", i)
        if end < 0:
            raise NotationError(f"unterminated raw string: {text!r}")
        return text[i:end], end + 1
    out = bytearray()
    while i < len(text):
        c = text[i]
        if c == quote_char:
            return out.decode("utf-8", "surrogateescape"), i + 1
        if c == "\n":
            break
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= len(text):
            break
        e = text[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e == "x":
            out.append(int(_hex(text, i + 2, 2), 16))
            i += 4
        elif e in "uU":
            n = 4 if e == "u" else 8
            out += chr(int(_hex(text, i + 2, n), 16)).encode("utf-8")
            i += 2 + n
        elif e in "01234567":
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
                raise NotationError(f"bad octal escape at {i}: {text!r}")
            out.append(int(digits, 8))
            i += 4
        else:
            raise NotationError(f"unknown escape sequence \\{e} at {i}: {text!r}")
    raise NotationError(f"unterminated string: {text!r}")


def _hex(text: str, start: int, n: int) -> str:
    digits = text[start : start + n]
    if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
        raise NotationError(f"bad hex escape at {start - 2}: {text!r}")
    return digits


def unquote(text: str) -> str:
    """The value of a whole-string literal such as ``"Foo"`` or ```Foo```."""
    value, end = read_string(text, 0)
    if end != len(text):
        raise NotationError(f"trailing text after string: {text!r}")
    return value


# ---------------------------------------------------------------- series identifiers

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_series_id(text: str, pos: int = 0) -> tuple[Labels, int]:
    """Read ``name``, ``name{l="v",...}``, ``{"name", l="v"}`` or ``{}`` from ``text[pos:]``.

    Returns the label set and the offset just past the identifier. Only ``=`` matchers are
    allowed, as in upstream's series description grammar.
    """
    pairs: list[tuple[str, str]] = []
    name = ""
    m = _NAME_RE.match(text, pos)
    if m:
        name = m.group(0)
        pos = m.end()
    if pos < len(text) and text[pos] == "{":
        pos += 1
        first = True
        while True:
            pos = _skip_ws(text, pos)
            if pos < len(text) and text[pos] == "}":
                pos += 1
                break
            if not first:
                if text[pos : pos + 1] != ",":
                    raise NotationError(f"expected ',' or '}}' at {pos}: {text!r}")
                pos = _skip_ws(text, pos + 1)
                if text[pos : pos + 1] == "}":
                    pos += 1
                    break
            first = False
            lname, pos = _read_label_name(text, pos)
            pos = _skip_ws(text, pos)
            if text[pos : pos + 1] != "=":
                if lname and not name and not pairs and text[pos : pos + 1] in (",", "}"):
                    name = lname  # {"utf8.metric.name", ...}: a quoted metric name alone
                    continue
                raise NotationError(f"expected '=' at {pos}: {text!r}")
            pos = _skip_ws(text, pos + 1)
            value, pos = read_string(text, pos)
            pairs.append((lname, value))
    elif not name:
        raise NotationError(f"expected a series identifier at {pos}: {text!r}")
    if name:
        pairs.insert(0, ("__name__", name))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise NotationError(f"duplicate label name in {text!r}")
    return Labels.from_pairs(pairs), pos


def _read_label_name(text: str, pos: int) -> tuple[str, int]:
    if text[pos : pos + 1] in ('"', "'", "`"):
        return read_string(text, pos)
    m = _LABEL_RE.match(text, pos)
    if m is None:
        raise NotationError(f"expected a label name at {pos}: {text!r}")
    return m.group(0), m.end()


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


# ---------------------------------------------------------------- value sequences


@dataclass(frozen=True, slots=True)
class Histogram:
    """A native histogram item, kept as its text: the runner recognises, never implements them."""

    text: str


Item = float | Histogram | None  # None: nothing at this position


_UNUM = r"(?:inf(?:inity)?|nan|(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:e[+-]?\d(?:_?\d)*)?)"
_EXPAND_RE = re.compile(rf"([+-]?{_UNUM})(?:([+-])({_UNUM}))?x(\d+)", re.IGNORECASE)


def split_items(text: str) -> list[str]:
    """Split a value sequence on whitespace, keeping ``{{ ... }}`` (and what sticks to it) whole."""
    items: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        start = i
        depth = 0
        while i < n and (depth > 0 or text[i] not in " \t"):
            if text.startswith("{{", i):
                depth += 1
                i += 2
            elif text.startswith("}}", i) and depth > 0:
                depth -= 1
                i += 2
            else:
                i += 1
        if depth:
            raise NotationError(f"unterminated '{{{{' in {text!r}")
        items.append(text[start:i])
    return items


def parse_values(text: str) -> list[Item]:
    """Expand a value sequence (A.5) into one item per position."""
    out: list[Item] = []
    for tok in split_items(text):
        out.extend(_expand(tok))
    return out


def _expand(tok: str) -> list[Item]:
    if tok == "_":
        return [None]
    if tok.startswith("_x"):
        return [None] * _count(tok[2:], tok)
    if tok == "stale":
        return [STALE_NAN]
    if tok.startswith("{{"):
        return _expand_histogram(tok)
    m = _EXPAND_RE.fullmatch(tok)
    if m:
        start = parse_float(m.group(1))
        n = int(m.group(4))
        if m.group(2) is None:
            return [start] * (n + 1)
        step = parse_float(m.group(3))
        if m.group(2) == "-":
            step = -step
        vals = [start]
        cur = start
        for _ in range(n):
            cur += step  # repeated addition, exactly as upstream builds the sequence
            vals.append(cur)
        return vals
    return [parse_float(tok)]


def _expand_histogram(tok: str) -> list[Item]:
    end = tok.index("}}") + 2
    first = Histogram(tok[:end])
    rest = tok[end:]
    if not rest:
        return [first]
    if rest.startswith("x"):
        return [first] * (_count(rest[1:], tok) + 1)
    m = re.fullmatch(r"[+-](\{\{.*?\}\})x(\d+)", rest)
    if m is None:
        raise NotationError(f"bad histogram expansion {tok!r}")
    # Each position is its own histogram; the sums are not computed (not implemented).
    return [Histogram(f"{first.text}{rest[0]}{i}*{m.group(1)}") for i in range(int(m.group(2)) + 1)]


def _count(text: str, tok: str) -> int:
    if not text.isdigit():
        raise NotationError(f"bad repetition count in {tok!r}")
    return int(text)


def parse_st_values(text: str) -> list[int | None]:
    """Start-timestamp offsets of an ``@st`` line (A.7), in ms, one per position."""
    out: list[int | None] = []
    for tok in text.split():
        if tok == "_":
            out.append(None)
            continue
        if tok.startswith("_x"):
            out.extend([None] * _count(tok[2:], tok))
            continue
        m = re.fullmatch(r"([+-]?[0-9a-z]+?)(?:([+-])([0-9a-z]+?))?x(\d+)", tok)
        if m:
            start = parse_signed_duration(m.group(1))
            step = parse_duration(m.group(3)) if m.group(2) else 0
            if m.group(2) == "-":
                step = -step
            out.extend(start + i * step for i in range(int(m.group(4)) + 1))
        else:
            out.append(parse_signed_duration(tok))
    return out


def float_bits_equal(a: float, b: float) -> bool:
    """Exact identity including NaN payloads (stale vs ordinary NaN)."""
    import struct

    return struct.pack("<d", a) == struct.pack("<d", b)


def is_nan(v: float) -> bool:
    return math.isnan(v)
