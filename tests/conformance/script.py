"""Parse a Prometheus PromQL test script (``*.test``) into commands (conformance README A.1–A.9).

The result is plain data: :class:`Load`, :class:`Clear` and :class:`Eval` commands with the
1-based line each starts on. The runner (``runner.py``) executes them against a real
database; the comparison rules live in ``compare.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from conformance.notation import (
    Histogram,
    Item,
    NotationError,
    parse_duration,
    parse_scalar_line,
    parse_series_id,
    parse_st_values,
    parse_values,
    unquote,
)
from signalfire.labels import Labels


class ScriptError(ValueError):
    """A test script that does not follow the format; names file and line."""


@dataclass(slots=True)
class LoadedSeries:
    labels: Labels
    items: list[Item]
    line: int
    st: list[int | None] | None = None  # start-timestamp offsets (ms) from an ``@st`` line

    @property
    def has_histograms(self) -> bool:
        return any(isinstance(v, Histogram) for v in self.items)


@dataclass(slots=True)
class Load:
    line: int
    interval_ms: int
    series: list[LoadedSeries]
    with_nhcb: bool = False

    @property
    def has_histograms(self) -> bool:
        return self.with_nhcb or any(s.has_histograms for s in self.series)

    def histogram_metric_names(self) -> set[str]:
        """Metric names whose data here includes native histograms (stored or NHCB-derived)."""
        names = {s.labels.metric_name for s in self.series if s.has_histograms}
        if self.with_nhcb:
            for s in self.series:
                name = s.labels.metric_name
                for suffix in ("_bucket", "_count", "_sum"):
                    if name.endswith(suffix):
                        names.add(name[: -len(suffix)])
        return names


@dataclass(slots=True)
class Clear:
    line: int


@dataclass(slots=True)
class Expect:
    """One ``expect fail|warn|info|no_warn|no_info|ordered`` line; ``mode`` is "", "msg" or "regex"."""

    kind: str
    mode: str = ""
    text: str = ""


@dataclass(slots=True)
class ExpectedSeries:
    labels: Labels
    items: list[Item]
    line: int


@dataclass(slots=True)
class Eval:
    """One ``eval`` command and everything it expects.

    For an instant query ``start_ms == end_ms`` and ``step_ms == 0``. ``range_vector`` is
    ``(start, end, step)`` of an ``expect range vector`` line.
    """

    line: int
    header: str
    expr: str
    instant: bool
    start_ms: int
    end_ms: int
    step_ms: int
    expects: list[Expect] = field(default_factory=list)
    series: list[ExpectedSeries] = field(default_factory=list)
    scalar: float | None = None
    string: str | None = None
    range_vector: tuple[int, int, int] | None = None
    legacy: str = ""  # "fail", "warn", "info" or "ordered" for the eval_* forms
    fail_message: str | None = None
    fail_regexp: str | None = None

    def kinds(self, kind: str) -> list[Expect]:
        return [e for e in self.expects if e.kind == kind]

    @property
    def expects_fail(self) -> bool:
        return self.legacy == "fail" or any(e.kind == "fail" for e in self.expects)

    @property
    def ordered(self) -> bool:
        return self.legacy == "ordered" or any(e.kind == "ordered" for e in self.expects)

    @property
    def expects_histograms(self) -> bool:
        return any(isinstance(v, Histogram) for s in self.series for v in s.items)


Command = Load | Clear | Eval

_LOAD_RE = re.compile(r"load(_with_nhcb)?\s+(\S+)")
_INSTANT_RE = re.compile(r"eval(?:_(fail|warn|info|ordered))?\s+instant\s+at\s+(\S+)\s+(.+)")
_RANGE_RE = re.compile(
    r"eval(?:_(fail|warn|info))?\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)"
)
_EXPECT_RE = re.compile(r"expect\s+(fail|warn|info|no_warn|no_info|ordered)(?:\s+(msg|regex):(.*))?")
_RANGE_VECTOR_RE = re.compile(r"expect\s+range\s+vector\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)")
_STRING_RE = re.compile(r"expect\s+string\s+(.+)")


def parse_script(text: str, name: str = "<script>") -> list[Command]:
    """All commands of one test file, in order."""
    lines = [ln.strip(" \t\r") for ln in text.split("\n")]
    lines = ["" if ln.startswith("#") else ln for ln in lines]
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if not ln:
            i += 1
            continue
        block_end = i + 1
        while block_end < len(lines) and lines[block_end]:
            block_end += 1
        word = ln.split()[0]
        try:
            if word == "clear":
                cmds.append(Clear(i + 1))
                block_end = i + 1
            elif word.startswith("load"):
                cmds.append(_parse_load(lines, i, block_end))
            elif word.startswith("eval"):
                cmd, block_end = _parse_eval(lines, i, block_end)
                cmds.append(cmd)
            else:
                raise ScriptError(f"unknown command {word!r}")
        except (NotationError, ScriptError) as err:
            raise ScriptError(f"{name}:{i + 1}: {err}") from err
        i = block_end
    return cmds


def parse_file(path: Path) -> list[Command]:
    return parse_script(path.read_text(encoding="utf-8"), path.name)


def _parse_load(lines: list[str], i: int, end: int) -> Load:
    m = _LOAD_RE.fullmatch(lines[i])
    if m is None:
        raise ScriptError(f"invalid load command: {lines[i]!r}")
    load = Load(i + 1, parse_duration(m.group(2)), [], with_nhcb=bool(m.group(1)))
    by_labels: dict[Labels, LoadedSeries] = {}
    pending_st: tuple[Labels, list[int | None]] | None = None
    for j in range(i + 1, end):
        labels, pos = parse_series_id(lines[j])
        if lines[j].startswith("@st", pos):
            pending_st = (labels, parse_st_values(lines[j][pos + 3 :]))
            continue
        series = LoadedSeries(labels, parse_values(lines[j][pos:]), j + 1)
        if pending_st is not None:
            if pending_st[0] != labels or len(pending_st[1]) != len(series.items):
                raise ScriptError(f"line {j + 1}: @st line does not match the sample line after it")
            series.st = pending_st[1]
            pending_st = None
        by_labels[labels] = series  # a later line for the same series replaces the earlier one
    if pending_st is not None:
        raise ScriptError("@st line without a sample line after it")
    load.series = list(by_labels.values())
    return load


def _parse_eval(lines: list[str], i: int, end: int) -> tuple[Eval, int]:
    header = lines[i]
    m = _INSTANT_RE.fullmatch(header)
    if m:
        t = parse_duration(m.group(2))
        ev = Eval(i + 1, header, m.group(3), True, t, t, 0, legacy=m.group(1) or "")
    else:
        m = _RANGE_RE.fullmatch(header)
        if m is None:
            raise ScriptError(f"invalid eval command: {header!r}")
        start, stop, step = (parse_duration(m.group(k)) for k in (2, 3, 4))
        if stop < start:
            raise ScriptError("invalid test definition, end timestamp is before start timestamp")
        if step <= 0:
            raise ScriptError("invalid test definition, step must be positive")
        ev = Eval(i + 1, header, m.group(5), False, start, stop, step, legacy=m.group(1) or "")
    j = i + 1
    while j < end:
        ln = lines[j]
        j += 1
        if ev.legacy == "fail" and ln.startswith("expected_fail_message "):
            ev.fail_message = ln[len("expected_fail_message ") :].strip()
            break
        if ev.legacy == "fail" and ln.startswith("expected_fail_regexp "):
            ev.fail_regexp = ln[len("expected_fail_regexp ") :].strip()
            break
        if ln.split()[0] == "expect":
            _parse_expect_line(ev, ln)
            continue
        value = parse_scalar_line(ln)
        if value is not None:
            if not ev.instant:
                raise ScriptError(f"line {j}: scalar expectation in a range query")
            ev.scalar = value
            break  # a scalar expectation ends the block
        labels, pos = parse_series_id(ln)
        items = parse_values(ln[pos:])
        _check_count(ev, items, j)
        ev.series.append(ExpectedSeries(labels, items, j))
    _check_expects(ev)
    return ev, j


def _parse_expect_line(ev: Eval, ln: str) -> None:
    m = _RANGE_VECTOR_RE.fullmatch(ln)
    if m:
        if not ev.instant:
            raise ScriptError("expect range vector is only for instant queries")
        ev.range_vector = (parse_duration(m.group(1)), parse_duration(m.group(2)), parse_duration(m.group(3)))
        return
    m = _STRING_RE.fullmatch(ln)
    if m:
        if not ev.instant:
            raise ScriptError("expect string is only for instant queries")
        ev.string = unquote(m.group(1).strip())
        return
    m = _EXPECT_RE.fullmatch(ln)
    if m is None:
        raise ScriptError(f"invalid expect line: {ln!r}")
    ev.expects.append(Expect(m.group(1), m.group(2) or "", (m.group(3) or "").strip()))


def _check_count(ev: Eval, items: list[Item], line: int) -> None:
    if ev.instant and ev.range_vector is None:
        if len(items) != 1:
            raise ScriptError(f"line {line}: an instant query expects exactly one value, got {len(items)}")
        return
    start, stop, step = ev.range_vector if ev.range_vector else (ev.start_ms, ev.end_ms, ev.step_ms)
    steps = (stop - start) // step + 1
    if len(items) > steps:
        raise ScriptError(f"line {line}: {len(items)} values for {steps} steps")


def _check_expects(ev: Eval) -> None:
    kinds = [e.kind for e in ev.expects]
    if kinds.count("fail") > 1:
        raise ScriptError("more than one expect fail")
    if "warn" in kinds and "no_warn" in kinds:
        raise ScriptError("expect warn together with expect no_warn")
    if "info" in kinds and "no_info" in kinds:
        raise ScriptError("expect info together with expect no_info")
