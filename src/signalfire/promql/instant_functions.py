"""Instant-vector and scalar functions: math, dates, sorting, labels, ``absent``.

Each function takes evaluated arguments (see :mod:`functions`) and returns a value
for all steps at once. Elementwise functions keep the ``present`` mask and mark every
row ``drop_name``; sorting and label functions keep names as Prometheus does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import re2

from signalfire._types import F64, I64
from signalfire.errors import QueryError
from signalfire.labels import Labels
from signalfire.labels.labels import METRIC_NAME
from signalfire.labels.matcher import Matcher, MatchType
from signalfire.promql.values import EvalContext, ScalarSeries, StepMatrix

# ------------------------------------------------------------ elementwise math


def _sgn(v: F64) -> F64:
    # sign(NaN) is NaN and sign(±0) keeps the zero, as Go's switch returns v itself.
    return np.where(v < 0, -1.0, np.where(v > 0, 1.0, v))


def _round_half_up(v: F64, to_nearest: F64 | float = 1.0) -> F64:
    # Prometheus inverts the step first ("fewer floating point accuracy issues") and
    # rounds ties up: floor(x * inv + 0.5) / inv.
    inv = 1.0 / np.asarray(to_nearest, np.float64)
    return np.floor(v * inv + 0.5) / inv


MATH: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "rad": lambda v: v * np.pi / 180,
    "deg": lambda v: v * 180 / np.pi,
    "sgn": _sgn,
}


def apply_elementwise(sm: StepMatrix, fn: Callable[[F64], F64]) -> StepMatrix:
    """``fn`` over every value; same rows and presence; names dropped."""
    with np.errstate(all="ignore"):
        vals = fn(sm.values)
    return StepMatrix(list(sm.labels), vals, sm.present.copy(), np.ones(len(sm.labels), np.bool_))


def round_(sm: StepMatrix, to_nearest: F64 | None) -> StepMatrix:
    tn: F64 | float = 1.0 if to_nearest is None else to_nearest[None, :]
    return apply_elementwise(sm, lambda v: _round_half_up(v, tn))


def clamp(sm: StepMatrix, lo: F64, hi: F64) -> StepMatrix:
    """``max(lo, min(hi, v))`` with Go's NaN propagation; no output at steps where hi < lo."""
    lo2, hi2 = lo[None, :], hi[None, :]
    with np.errstate(all="ignore"):
        vals = np.maximum(lo2, np.minimum(hi2, sm.values))
    present = sm.present & ~(hi2 < lo2)
    return StepMatrix(list(sm.labels), vals, present, np.ones(len(sm.labels), np.bool_))


# ------------------------------------------------------------ time and dates


def _civil(seconds: I64) -> dict[str, np.ndarray]:
    """Calendar fields (UTC) of whole Unix seconds, vectorised with datetime64."""
    s = seconds.astype("datetime64[s]")
    day = s.astype("datetime64[D]")
    month = s.astype("datetime64[M]")
    year = s.astype("datetime64[Y]")
    sec_of_day = (s - day).astype(np.int64)
    return {
        "year": year.astype(np.int64) + 1970,
        "month": month.astype(np.int64) % 12 + 1,
        "day_of_month": (day - month.astype("datetime64[D]")).astype(np.int64) + 1,
        "day_of_year": (day - year.astype("datetime64[D]")).astype(np.int64) + 1,
        "day_of_week": (day.astype(np.int64) + 4) % 7,  # 1970-01-01 was a Thursday
        "hour": sec_of_day // 3600,
        "minute": sec_of_day // 60 % 60,
        "days_in_month": ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(
            np.int64
        ),
    }


DATE_FUNCTIONS = (
    "year",
    "month",
    "day_of_month",
    "day_of_year",
    "day_of_week",
    "hour",
    "minute",
    "days_in_month",
)

# Beyond this, datetime64[s] overflows; Go would wrap around, we return NaN.
_MAX_DATE_SECONDS = 2**52


def date_values(name: str, seconds: F64) -> F64:
    """``name`` of the timestamps ``seconds`` (float, truncated toward zero like Go's int64())."""
    finite = np.isfinite(seconds) & (np.abs(np.nan_to_num(seconds)) < _MAX_DATE_SECONDS)
    secs = np.trunc(np.where(finite, seconds, 0.0)).astype(np.int64)
    out = _civil(secs)[name].astype(np.float64)
    return np.where(finite, out, np.nan)


def date_function(name: str, sm: StepMatrix | None, ctx: EvalContext) -> StepMatrix:
    """Without an argument: of the evaluation time, as ``vector(time())`` would give."""
    if sm is None:
        # Go: time.Unix(ts/1000, 0) with integer division truncating toward zero.
        secs = np.trunc(ctx.ts / 1000.0)
        vals = date_values(name, secs)[None, :]
        return StepMatrix([Labels(())], vals, np.ones((1, ctx.T), np.bool_))
    with np.errstate(all="ignore"):
        vals = date_values(name, sm.values.ravel()).reshape(sm.values.shape)
    return StepMatrix(list(sm.labels), vals, sm.present.copy(), np.ones(len(sm.labels), np.bool_))


def timestamp(sm: StepMatrix, ctx: EvalContext) -> StepMatrix:
    """The sample's own timestamp for a selector result, else the evaluation time."""
    if sm.sample_ts is not None:
        vals = sm.sample_ts / 1000.0
    else:
        vals = np.broadcast_to(ctx.ts / 1000.0, sm.values.shape).copy()
    return StepMatrix(list(sm.labels), vals, sm.present.copy(), np.ones(len(sm.labels), np.bool_))


# ------------------------------------------------------------ vector / scalar


def vector(s: ScalarSeries) -> StepMatrix:
    T = len(s.values)
    return StepMatrix([Labels(())], s.values[None, :].copy(), np.ones((1, T), np.bool_))


def scalar(sm: StepMatrix, T: int) -> ScalarSeries:
    """The single present value at each step, NaN when there are zero or several."""
    if sm.num_series == 0:
        return ScalarSeries(np.full(T, np.nan))
    count = sm.present.sum(axis=0)
    first = np.argmax(sm.present, axis=0)
    vals = sm.values[first, np.arange(T)]
    return ScalarSeries(np.where(count == 1, vals, np.nan))


# ------------------------------------------------------------ sorting


def sort_by_value(sm: StepMatrix, descending: bool) -> StepMatrix:
    """Order rows by their value at the (single) step; NaN last either way.

    Only instant queries have a meaningful order; for a range query the caller warns
    and the engine orders by labels anyway. Rows absent at the step go last.
    """
    if sm.num_series == 0:
        return sm
    v = sm.values[:, -1]
    present = sm.present[:, -1]
    nan = np.isnan(v)
    key = np.where(nan, 0.0, -v if descending else v)
    order = np.lexsort((key, nan, ~present))
    return _take(sm, order)


def natsort_less(a: str, b: str) -> bool:
    """Natural order of ``facette/natsort`` (what ``sort_by_label`` uses).

    Both strings are split into runs of digits and non-digits; runs that both parse
    as integers compare numerically, others as strings. A string that is a prefix
    (run-wise) of the other sorts first.
    """
    ca, cb = _chunks(a), _chunks(b)
    for i, xa in enumerate(ca):
        if i >= len(cb):
            return False
        xb = cb[i]
        if xa.isdigit() and xb.isdigit() and xa.isascii() and xb.isascii():
            ia, ib = int(xa), int(xb)
            if ia != ib:
                return ia < ib
        elif xa != xb:
            return xa < xb
        if i == len(ca) - 1:
            return True
        if i == len(cb) - 1:
            return False
    return False


_CHUNK = re2.compile(r"(\d+|\D+)")


def _chunks(s: str) -> list[str]:
    return [m.group(0) for m in _CHUNK.finditer(s)]


def sort_by_label(sm: StepMatrix, names: Sequence[str], descending: bool) -> StepMatrix:
    """Order rows by the natural order of the given labels, ties by the whole label set."""

    def cmp(i: int, j: int) -> int:
        li, lj = sm.labels[i], sm.labels[j]
        for name in names:
            a, b = li.get(name), lj.get(name)
            if a == b:
                continue
            r = -1 if natsort_less(a, b) else 1
            return -r if descending else r
        r = (li > lj) - (li < lj)
        return -r if descending else r

    order = sorted(range(sm.num_series), key=functools.cmp_to_key(cmp))
    return _take(sm, np.asarray(order, np.int64))


def _take(sm: StepMatrix, order: I64) -> StepMatrix:
    dn = None if sm.drop_name is None else sm.drop_name[order]
    sts = None if sm.sample_ts is None else sm.sample_ts[order]
    return StepMatrix([sm.labels[i] for i in order.tolist()], sm.values[order], sm.present[order], dn, sts)


# ------------------------------------------------------------ labels


def is_valid_label_name(name: str) -> bool:
    """Prometheus 3.x (UTF-8) label names: non-empty, valid UTF-8."""
    if not name:
        return False
    return not any(0xDC80 <= ord(c) <= 0xDCFF or 0xD800 <= ord(c) <= 0xDFFF for c in name)


def expand_template(template: str, m: object, groupindex: dict[str, int], ngroups: int) -> str:
    """Go's ``regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``.

    ``$name`` takes the longest run of letters, digits and underscores; a name that is
    not a group expands to nothing; a malformed reference keeps the ``$``.
    """
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c != "$":
            j = template.find("$", i)
            j = n if j < 0 else j
            out.append(template[i:j])
            i = j
            continue
        if i + 1 < n and template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        name, rest = _ref_name(template, i + 1)
        if name is None:
            out.append("$")
            i += 1
            continue
        i = rest
        if name.isdigit() and name.isascii():
            g = int(name)
            val = m.group(g) if g <= ngroups else None  # type: ignore[attr-defined]
        else:
            idx = groupindex.get(name)
            val = m.group(idx) if idx is not None else None  # type: ignore[attr-defined]
        out.append(val or "")
    return "".join(out)


def _is_word(c: str) -> bool:
    return c == "_" or (c.isascii() and c.isalnum()) or (not c.isascii() and c.isalpha())


def _ref_name(t: str, i: int) -> tuple[str | None, int]:
    if i < len(t) and t[i] == "{":
        j = t.find("}", i + 1)
        if j < 0:
            return None, i
        name = t[i + 1 : j]
        if not name or not all(_is_word(c) for c in name):
            return None, i
        return name, j + 1
    j = i
    while j < len(t) and _is_word(t[j]):
        j += 1
    if j == i:
        return None, i
    return t[i:j], j


def label_replace(sm: StepMatrix, dst: str, repl: str, src: str, regex: str) -> StepMatrix:
    opts = re2.Options()
    opts.log_errors = False
    try:
        rx = re2.compile("^(?s:" + regex + ")$", opts)
    except re2.error as err:
        raise QueryError(f"invalid regular expression in label_replace(): {regex}") from err
    if not is_valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}")
    labels = list(sm.labels)
    drop = sm.name_dropped().copy()
    cache: dict[str, str | None] = {}
    for i, ls in enumerate(labels):
        sv = ls.get(src)
        if sv not in cache:
            m = rx.search(sv)
            cache[sv] = None if m is None else expand_template(repl, m, rx.groupindex, rx.groups)
        res = cache[sv]
        if res is None:
            continue
        labels[i] = ls.set(dst, res)
        if dst == METRIC_NAME:
            drop[i] = False
    return StepMatrix(labels, sm.values, sm.present, drop, None)


def label_join(sm: StepMatrix, dst: str, sep: str, srcs: Sequence[str]) -> StepMatrix:
    for s in srcs:
        if not is_valid_label_name(s):
            raise QueryError(f"invalid source label name in label_join(): {s}")
    if not is_valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}")
    drop = sm.name_dropped().copy()
    labels = []
    for i, ls in enumerate(sm.labels):
        labels.append(ls.set(dst, sep.join(ls.get(s) for s in srcs)))
        if dst == METRIC_NAME:
            drop[i] = False
    return StepMatrix(labels, sm.values, sm.present, drop, None)


# ------------------------------------------------------------ absent


def absent_labels(matchers: Sequence[Matcher] | None) -> Labels:
    """Labels ``absent()`` can be sure of: each name with exactly one ``=`` matcher.

    A name matched more than once, or by another matcher type, is left out (the
    historic behaviour Prometheus keeps for compatibility).
    """
    if not matchers:
        return Labels(())
    d: dict[str, str] = {}
    seen: set[str] = set()
    for m in matchers:
        if m.name == METRIC_NAME:
            continue
        if m.type is MatchType.EQUAL and m.name not in seen:
            d[m.name] = m.value
            seen.add(m.name)
        else:
            d.pop(m.name, None)
    return Labels.from_dict(d)


def absent_at(any_present: np.ndarray, labels: Labels) -> StepMatrix:
    """One series valued 1 at the steps where ``any_present`` is False, else empty."""
    absent = ~any_present
    if not absent.any():
        return StepMatrix.empty(len(any_present))
    T = len(any_present)
    return StepMatrix([labels], np.ones((1, T)), absent[None, :].copy())
