"""PromQL number literals and float formatting, with Go's rules.

Prometheus reads a number token with ``strconv.ParseInt(s, 0, 64)`` and falls back to
``strconv.ParseFloat``: so ``0x1F``, ``0o17``, ``0b101``, ``017`` (octal), ``1_000``,
``.5``, ``5.``, ``1e3`` and ``Inf``/``NaN`` in any case are all numbers. It prints them
with ``strconv.FormatFloat(v, 'f', -1, 64)``: the shortest text that reads back the same
value, never in exponent form.
"""

from __future__ import annotations

import math
import re

import numpy as np

from signalfire.util.gofmt import format_go_g

__all__ = ["format_float", "format_go_g", "parse_number", "round_half_away"]

_OCTAL = re.compile(r"0(?:_?+[0-7])++")


def parse_number(text: str) -> float:
    """The value of a number token; raises ValueError when Go would reject it."""
    low = text.lower()
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    try:
        # Python's int() reads "017" as an error, Go as octal; and it refuses more than
        # 4300 decimal digits (ValueError), which Go's ParseInt calls out of range.
        as_int = int(text.replace("_", ""), 8) if _OCTAL.fullmatch(text) else int(text, 0)
    except ValueError:
        pass
    else:
        if -(1 << 63) <= as_int < (1 << 63):
            return float(as_int)
        # Go's ParseInt overflows here and ParseFloat takes over (decimal text only:
        # "0777..." too long for int64 is read as a decimal number).
    if low.startswith(("0x", "0o", "0b")):
        raise ValueError("invalid syntax")
    if "_" in text and not _underscores_ok(text):
        raise ValueError("invalid syntax")
    value = float(text)
    if math.isinf(value):
        raise ValueError("value out of range")
    return value


def _underscores_ok(text: str) -> bool:
    """Go allows ``_`` only between digits (or after a base prefix)."""
    prev = "^"
    for c in text:
        if c == "_":
            if not prev.isdigit():
                return False
        elif prev == "_" and not c.isdigit():
            return False
        prev = c
    return prev != "_"


def format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: ``1``, ``0.5``, ``+Inf``, ``NaN``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e16:
        return str(int(v)) if not (v == 0 and math.copysign(1, v) < 0) else "-0"
    return np.format_float_positional(v, trim="-")


def round_half_away(x: float) -> int:
    """Go's ``math.Round``: halves round away from zero (Python's round() goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)
