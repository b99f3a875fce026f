"""Go's string and float formatting, which Prometheus's messages and outputs use.

Error texts, ``le`` normalisation, promtool output and PromQL's printer all print with
Go's ``strconv``/``fmt``; matching them byte for byte lets tests and scripts compare our
output with Prometheus's. One implementation here serves every layer.
"""

from __future__ import annotations

import math

__all__ = ["format_go_g", "format_om_float", "go_quote"]

_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def go_quote(s: str) -> str:
    """``s`` as Go's ``strconv.Quote`` / ``%q`` prints it.

    Lone surrogates U+DC80..U+DCFF stand for raw invalid UTF-8 bytes (Python's
    ``surrogateescape``) and print as ``\\xNN``, as Go prints the bytes.
    """
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif c.isprintable() or c == " ":
            out.append(c)
        elif o in _ESCAPES:
            out.append(_ESCAPES[o])
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def format_go_g(v: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` (``%g``): shortest digits, exponent when exp < -4 or >= 6.

    With shortest precision Go decides by exponent 6, so 1e6 prints as ``1e+06`` and
    16 GiB as ``1.7179869184e+10``. Infinities print as ``+Inf``/``-Inf``, NaN as ``NaN``.
    """
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    # repr gives the shortest round-trip digits; take them apart into sign, digits, exponent.
    s = repr(float(v))
    neg = s.startswith("-")
    if neg:
        s = s[1:]
    mant, _, exp_s = s.partition("e")
    exp = int(exp_s) if exp_s else 0
    int_part, _, frac_part = mant.partition(".")
    all_digits = int_part + frac_part
    # Decimal point position relative to the first significant digit.
    point = len(int_part) + exp - (len(all_digits) - len(all_digits.lstrip("0")))
    digits = all_digits.strip("0") or "0"
    x = point - 1
    if x < -4 or x >= 6:
        tail = digits[1:]
        out = f"{digits[0]}{'.' + tail if tail else ''}e{'-' if x < 0 else '+'}{abs(x):02d}"
    elif point <= 0:
        out = "0." + "0" * (-point) + digits
    elif point >= len(digits):
        out = digits + "0" * (point - len(digits))
    else:
        out = digits[:point] + "." + digits[point:]
    return "-" + out if neg else out


def format_om_float(v: float) -> str:
    """Prometheus's ``FormatOpenMetricsFloat``: ``%g`` plus ``.0`` when it reads as an integer."""
    s = format_go_g(v)
    if s in ("NaN", "+Inf", "-Inf") or "." in s or "e" in s:
        return s
    return s + ".0"
