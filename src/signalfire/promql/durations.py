"""Prometheus duration strings (``5m``, ``1h30m``, ``250ms``) to and from milliseconds.

The grammar is Prometheus's ``model.ParseDuration``: one or more ``<integer><unit>``
parts with units ``y`` (365d), ``w``, ``d``, ``h``, ``m``, ``s``, ``ms`` written from the
largest unit to the smallest, each unit at most once, or a bare ``0``. PromQL, the
configuration file, the command line and the HTTP API all accept this form, so it lives
here once; the PromQL lexer only decides where a duration token ends.
"""

from __future__ import annotations

from signalfire.errors import ParseError

__all__ = ["UNIT_MS", "format_duration", "parse_duration"]

#: Milliseconds per unit, in the order the units must appear.
UNIT_MS: dict[str, int] = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}

_INT64_MAX = (1 << 63) - 1
# Go's time.Duration counts nanoseconds in an int64, so Prometheus rejects anything
# longer than about 292 years; we keep the same ceiling so configs behave alike.
_MAX_MS = _INT64_MAX // 1_000_000


def parse_duration(text: str, *, allow_negative: bool = False) -> int:
    """Parse ``text`` such as ``1h30m`` into integer milliseconds.

    ``allow_negative`` accepts one leading ``-`` (offsets and ``@st`` values use it).
    Raises :class:`~signalfire.errors.ParseError` with Prometheus's wording
    (``not a valid duration string: "5x"``, ``unknown unit "hs" in duration "5y1hs"``,
    ``duration out of range``) and ``offset`` pointing into ``text``.
    """
    body = text
    sign = 1
    if allow_negative and body.startswith("-"):
        sign, body = -1, body[1:]
    if body == "0":
        return 0
    if body == "":
        raise ParseError("empty duration string", offset=0)
    total = 0
    pos = 0
    last_rank = -1
    ranks = list(UNIT_MS)
    n = len(body)
    while pos < n:
        start = pos
        while pos < n and body[pos].isascii() and body[pos].isdigit():
            pos += 1
        if pos == start:
            raise _invalid(text, start)
        digits = body[start:pos].lstrip("0")
        if len(digits) > 19:  # more than int64 holds; int() would also refuse 4300+ digits
            raise ParseError("duration out of range", offset=start)
        value = int(digits or "0")
        unit_start = pos
        while pos < n and not (body[pos].isascii() and body[pos].isdigit()):
            pos += 1
        unit = body[unit_start:pos]
        if not unit:
            raise _invalid(text, unit_start)
        if unit not in UNIT_MS:
            msg = f"unknown unit {go_quote_simple(unit)} in duration {go_quote_simple(text)}"
            raise ParseError(msg, offset=unit_start)
        rank = ranks.index(unit)
        if rank <= last_rank:  # units must strictly decrease: "1m1h" and "1s1s" are invalid
            raise _invalid(text, start)
        last_rank = rank
        total += value * UNIT_MS[unit]
        if total > _MAX_MS:
            raise ParseError("duration out of range", offset=start)
    return sign * total


def _invalid(text: str, pos: int = 0) -> ParseError:
    return ParseError(f"not a valid duration string: {go_quote_simple(text)}", offset=pos)


def go_quote_simple(s: str) -> str:
    """Double-quote ``s`` the way Go's ``%q`` does for the ASCII texts found in durations."""
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{out}"'


def format_duration(ms: int) -> str:
    """Render milliseconds as Prometheus's ``model.Duration.String`` does.

    ``0`` is ``0s``; years and weeks are used only when they divide the value exactly, so
    ``format_duration(parse_duration(s))`` is the canonical spelling of ``s``. A negative
    value gets a leading ``-``.
    """
    if ms == 0:
        return "0s"
    if ms < 0:
        return "-" + format_duration(-ms)
    parts: list[str] = []
    rest = ms
    for unit, size in UNIT_MS.items():
        if unit in ("y", "w") and rest % size != 0:
            continue
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
