"""Text formatting that matches promtool's output byte for byte.

promtool prints with Go's ``fmt``: ``%g`` floats, ``time.Duration`` strings,
``labels.Labels.String()``, ``text/tabwriter`` columns and ``units.Base2Bytes``
sizes. Scripts diff promtool's output against ours, so each helper here
reproduces one of those Go formatters exactly rather than approximately.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence

from signalfire.labels import METRIC_NAME, is_legacy_label_name, quote
from signalfire.util.gofmt import format_go_g as go_float

__all__ = [
    "base2_bytes",
    "go_duration",
    "go_float",
    "go_labels",
    "go_labels_condensed",
    "go_time_utc",
    "parse_duration_ms",
    "tabwrite",
]


def go_duration(ms: int) -> str:
    """``time.Duration(ms * 1e6).String()``: ``2h0m0s``, ``1m30.5s``, ``250ms``, ``0s``."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, frac = divmod(rest, 1000)
    sec = str(s) + (f".{frac:03d}".rstrip("0") if frac else "")
    if h:
        return f"{sign}{h}h{m}m{sec}s"
    if m:
        return f"{sign}{m}m{sec}s"
    return f"{sign}{sec}s"


_DURATION_UNITS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}


def parse_duration_ms(text: str) -> int:
    """A Prometheus duration (``1h30m``, ``2h``, ``500ms``) in ms; raises ValueError with the reason."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration string")
    if s == "0":
        return 0
    total, i = 0, 0
    while i < len(s):
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        if j == i:
            raise ValueError(f"not a valid duration string: {text!r}")
        k = j
        while k < len(s) and s[k].isalpha():
            k += 1
        unit = s[j:k]
        if unit not in _DURATION_UNITS:
            raise ValueError(f"not a valid duration string: {text!r} (unknown unit {unit!r})")
        total += int(s[i:j]) * _DURATION_UNITS[unit]
        i = k
    return total


def go_time_utc(ms: int) -> str:
    """``time.Unix(ms/1000, 0).UTC().String()``: ``2024-01-02 03:04:05 +0000 UTC``."""
    secs = int(ms / 1000)  # Go's integer division truncates toward zero
    t = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=secs)
    return t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


_BYTE_UNITS = ("EiB", "PiB", "TiB", "GiB", "MiB", "KiB")


def base2_bytes(n: int) -> str:
    """``units.Base2Bytes(n).String()`` (alecthomas/units): ``1MiB512KiB``, ``100B``, ``0B``."""
    if n == 0:
        return "0B"
    sign = "-" if n < 0 else ""
    n = abs(n)
    parts = []
    for i, unit in enumerate(_BYTE_UNITS):
        scale = 1024 ** (len(_BYTE_UNITS) - i)
        if n >= scale:
            parts.append(f"{n // scale}{unit}")
            n %= scale
    if n:
        parts.append(f"{n}B")
    return sign + "".join(parts)


def _label_key(name: str) -> str:
    return name if is_legacy_label_name(name) else quote(name)


def go_labels(ls: Iterable[tuple[str, str]]) -> str:
    """``labels.Labels.String()``: ``{__name__="up", job="x"}`` with ``__name__`` as a label."""
    return "{" + ", ".join(f"{_label_key(n)}={quote(v)}" for n, v in ls) + "}"


def go_labels_condensed(ls: Iterable[tuple[str, str]]) -> str:
    """promtool's ``CondensedString``: ``{a="1",b="2"}``, no spaces, metric name dropped."""
    return "{" + ",".join(f"{_label_key(n)}={quote(v)}" for n, v in ls if n != METRIC_NAME) + "}"


def tabwrite(rows: Sequence[Sequence[str]], minwidth: int = 13, padding: int = 2) -> str:
    """``text/tabwriter`` with ``AlignLeft`` and space padding, as promtool's tables use.

    Every cell but the last of a row is tab-terminated in promtool's format strings, so
    those columns are padded to ``max(minwidth, widest + padding)`` and the last column is
    printed as is.
    """
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + padding)
    widths = [max(w, minwidth) for w in widths]
    lines = []
    for r in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])]
        lines.append("".join(cells) + (r[-1] if r else ""))
    return "\n".join(lines) + "\n"
