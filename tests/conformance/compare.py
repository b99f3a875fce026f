"""How an ``eval`` passes (conformance README A.10): float equality, result shapes,
series identity and order, errors and annotations.

The query result arrives as an :class:`Outcome`, a plain description that ``runner.py``
builds from the database's QueryResult. Every check returns human-readable reasons;
an empty list means the case passed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import re2

from conformance.notation import Histogram, Item, float_bits_equal
from conformance.script import Eval, Expect
from signalfire._types import is_stale_value
from signalfire.labels import Labels

_TINY = 1e-6 * 2.2250738585072014e-308
_MAX = 1.7976931348623157e308


def almost_equal(a: float, b: float) -> bool:
    """Upstream's float equality: NaN == NaN, stale only == stale, relative epsilon 1e-6."""
    a_stale, b_stale = is_stale_value(a), is_stale_value(b)
    if a_stale or b_stale:
        return a_stale and b_stale
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return False
    diff = abs(a - b)
    if a == 0 or b == 0:
        return diff < _TINY
    return diff / min(abs(a) + abs(b), _MAX) < 1e-6


@dataclass(slots=True)
class Outcome:
    """What a query returned, in the shape the comparison needs.

    ``series`` holds, for vectors, one ``(ts, value)`` point per series; for matrices all
    points in time order. ``error`` is set (and nothing else matters) when the query failed.
    """

    kind: str = ""  # "vector" | "matrix" | "scalar" | "string"
    series: list[tuple[Labels, list[tuple[int, float]]]] = field(default_factory=list)
    scalar: float | None = None
    string: str | None = None
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    error: str | None = None


def check_eval(
    ev: Eval, out: Outcome, check_annotations: bool = True, ignore_positions: bool = False
) -> list[str]:
    """All reasons why ``out`` does not meet the expectations of ``ev`` (empty: pass).

    ``ignore_positions`` compares annotations without their ``(line:col)``, for queries
    re-printed by the A.11.1 check, whose positions refer to other text.
    """
    if ev.expects_fail:
        return _check_failure(ev, out)
    if out.error is not None:
        return [f"unexpected error: {out.error}"]
    reasons: list[str] = []
    if check_annotations:
        reasons += _check_annotations(ev, out, ignore_positions)
    reasons += check_result(ev, out)
    return reasons


def _check_failure(ev: Eval, out: Outcome) -> list[str]:
    if out.error is None:
        return [f"expected the query to fail, but it returned a {out.kind}"]
    exp = ev.kinds("fail")
    msg = (
        ev.fail_message
        if ev.fail_message is not None
        else (exp[0].text if exp and exp[0].mode == "msg" else None)
    )
    pat = (
        ev.fail_regexp
        if ev.fail_regexp is not None
        else (exp[0].text if exp and exp[0].mode == "regex" else None)
    )
    if msg is not None and out.error != msg:
        return [f"wrong error message:\n  want: {msg}\n  got:  {out.error}"]
    if pat is not None and re2.search(pat, out.error) is None:
        return [f"error {out.error!r} does not match regex {pat!r}"]
    return []


_POSITION = re.compile(r" \(\d+:\d+\)$")
_POSITION_PATTERN = re.compile(r"\s*\\\([^()]*\\\)$")  # a trailing `\(1:25\)` in a regex


def _matches(e: Expect, text: str, ignore_positions: bool = False) -> bool:
    if e.mode == "msg":
        if ignore_positions:
            return _POSITION.sub("", text) == _POSITION.sub("", e.text)
        return text == e.text
    if e.mode == "regex":
        if ignore_positions:
            return re2.search(_POSITION_PATTERN.sub("", e.text), _POSITION.sub("", text)) is not None
        return re2.search(e.text, text) is not None
    return True


def _check_annotations(ev: Eval, out: Outcome, ignore_positions: bool = False) -> list[str]:
    reasons: list[str] = []
    for kind, actual, legacy in (("warn", out.warnings, "warn"), ("info", out.infos, "info")):
        expected = ev.kinds(kind)
        noun = "warning" if kind == "warn" else "info"
        if ev.kinds("no_" + kind) and actual:
            reasons.append(f"expected no {noun}s, got {actual}")
        if ev.legacy == legacy and not actual:
            reasons.append(f"expected at least one {noun} (eval_{legacy}), got none")
        if not expected:
            continue
        if not actual:
            reasons.append(f"expected {noun}s {[e.text or '<any>' for e in expected]}, got none")
            continue
        for e in expected:
            if not any(_matches(e, a, ignore_positions) for a in actual):
                reasons.append(f"expected {noun} {e.mode}: {e.text!r} not among {actual}")
        for a in actual:
            if not any(_matches(e, a, ignore_positions) for e in expected):
                reasons.append(f"unexpected {noun} {a!r}")
    return reasons


def check_result(ev: Eval, out: Outcome) -> list[str]:
    """The result part of A.10: type, series identity, order and values."""
    if ev.scalar is not None:
        if out.kind != "scalar":
            return [f"expected scalar result, got {out.kind}"]
        assert out.scalar is not None
        if not almost_equal(ev.scalar, out.scalar):
            return [f"expected scalar {ev.scalar!r}, got {out.scalar!r}"]
        return []
    if ev.string is not None:
        if out.kind != "string":
            return [f"expected string result, got {out.kind}"]
        if out.string != ev.string:
            return [f"expected string {ev.string!r}, got {out.string!r}"]
        return []
    if ev.instant and ev.range_vector is None:
        if out.kind != "vector":
            return [f"expected vector result, got {out.kind}"]
        return _check_vector(ev, out)
    if out.kind != "matrix":
        return [f"expected matrix result, got {out.kind}"]
    return _check_matrix(ev, out)


def _item_str(v: Item) -> str:
    return v.text if isinstance(v, Histogram) else repr(v)


def _check_vector(ev: Eval, out: Outcome) -> list[str]:
    reasons: list[str] = []
    actual = {labels: pts for labels, pts in out.series}
    if len(actual) != len(out.series):
        reasons.append("result contains duplicate label sets")
    expected_labels = [s.labels for s in ev.series]
    for pos, exp in enumerate(ev.series):
        pts = actual.get(exp.labels)
        if pts is None:
            reasons.append(f"expected series {exp.labels} (line {exp.line}) missing from result")
            continue
        want = exp.items[0]
        got = pts[0][1] if pts else None
        if isinstance(want, Histogram):
            reasons.append(f"{exp.labels}: expected histogram {want.text}, got float {got!r}")
        elif want is None or got is None or not almost_equal(want, got):
            reasons.append(f"{exp.labels}: expected {_item_str(want)}, got {got!r}")
        if ev.ordered:
            idx = [lb for lb, _ in out.series].index(exp.labels)
            if idx != pos:
                reasons.append(f"{exp.labels}: expected at position {pos}, found at {idx}")
    extra = [str(lb) for lb in actual if lb not in set(expected_labels)]
    if extra:
        reasons.append(f"unexpected series in result: {', '.join(extra[:10])}")
    return reasons


def _check_matrix(ev: Eval, out: Outcome) -> list[str]:
    reasons: list[str] = []
    labels = [lb for lb, _ in out.series]
    if labels != sorted(labels):
        reasons.append("matrix series are not sorted by labels")
    if len(set(labels)) != len(labels):
        reasons.append("result contains duplicate label sets")
    start, step = (ev.range_vector[0], ev.range_vector[2]) if ev.range_vector else (ev.start_ms, ev.step_ms)
    actual = dict(out.series)
    for exp in ev.series:
        pts = actual.get(exp.labels)
        if pts is None:
            reasons.append(f"expected series {exp.labels} (line {exp.line}) missing from result")
            continue
        want = [(start + i * step, v) for i, v in enumerate(exp.items) if v is not None]
        if any(isinstance(v, Histogram) for _, v in want):
            reasons.append(f"{exp.labels}: expected histogram points, which are not implemented")
            continue
        if len(want) != len(pts) or any(
            wt != gt or not almost_equal(wv, gv)  # type: ignore[arg-type]
            for (wt, wv), (gt, gv) in zip(want, pts)
        ):
            reasons.append(f"{exp.labels}:\n  want {_fmt_points(want)}\n  got  {_fmt_points(pts)}")
    expected_labels = {s.labels for s in ev.series}
    extra = [str(lb) for lb in labels if lb not in expected_labels]
    if extra:
        reasons.append(f"unexpected series in result: {', '.join(extra[:10])}")
    return reasons


def _fmt_points(pts: list[tuple[int, object]]) -> str:
    return " ".join(f"{v!r}@{t / 1000:g}" for t, v in pts)


def same_float(a: float, b: float) -> bool:
    """Bit-exact float identity (used by unit tests of the comparison)."""
    return float_bits_equal(a, b)
