"""Tallies conformance test reports into the per-file summary and the failure reports.

Works from pytest's TestReports only (outcome plus ``user_properties``), so it gives the
same answer in one process and under pytest-xdist, where reports reach the controller.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_ID_RE = re.compile(r"test_eval\[(?P<file>[^\]:]+\.test):(?P<line>\d+)\]")
_FUNC_RE = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "fill", "fill_left"}


@dataclass(slots=True)
class CaseRecord:
    file: str
    line: int
    outcome: str = "passed"  # passed | failed | xfailed | xpassed
    native_histogram: str = ""
    expr: str = ""
    reasons: list[str] = field(default_factory=list)
    xfail_reason: str = ""


class ConformanceTally:
    """Collects one record per eval case from the call-phase (or failed setup) reports."""

    def __init__(self) -> None:
        self.cases: dict[tuple[str, int], CaseRecord] = {}

    def add(self, report: pytest.TestReport) -> None:
        m = _ID_RE.search(report.nodeid)
        if m is None or not (report.when == "call" or report.failed):
            return
        rec = self.cases.setdefault((m["file"], int(m["line"])), CaseRecord(m["file"], int(m["line"])))
        props = dict(report.user_properties)
        rec.native_histogram = str(props.get("native_histogram", rec.native_histogram) or "")
        rec.expr = str(props.get("expr", rec.expr) or "")
        rec.reasons = list(props.get("reasons", rec.reasons) or [])  # type: ignore[call-overload]
        if hasattr(report, "wasxfail"):
            rec.outcome = "xfailed" if report.skipped else "xpassed"
            rec.xfail_reason = str(report.wasxfail)
        elif report.failed:
            rec.outcome = "failed"
            if not rec.reasons:
                rec.reasons = [str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "failed"]
        elif report.passed and rec.outcome != "failed":
            rec.outcome = "passed"

    def summary_lines(self) -> list[str]:
        per_file: dict[str, list[CaseRecord]] = defaultdict(list)
        for rec in self.cases.values():
            per_file[rec.file].append(rec)
        lines = ["", "PromQL conformance (passed / total per file; listed = native-histogram xfails)"]
        tot_pass = tot = tot_listed = tot_fail = 0
        for name in sorted(per_file):
            recs = per_file[name]
            passed = sum(r.outcome == "passed" for r in recs)
            listed = sum(r.outcome == "xfailed" for r in recs)
            failed = len(recs) - passed - listed
            lines.append(
                f"  {name:<28} {passed:4d} / {len(recs):4d}   listed {listed:4d}   failing {failed:4d}"
            )
            tot_pass, tot, tot_listed, tot_fail = (
                tot_pass + passed,
                tot + len(recs),
                tot_listed + listed,
                tot_fail + failed,
            )
        nh_listed = sum(r.outcome == "xfailed" and bool(r.native_histogram) for r in self.cases.values())
        lines.append(
            f"  {'TOTAL':<28} {tot_pass:4d} / {tot:4d}   listed {tot_listed:4d}   failing {tot_fail:4d}"
        )
        lines.append(
            f"  listed native-histogram cases: {nh_listed}; "
            f"listed other cases: {tot_listed - nh_listed} (must be 0)"
        )
        return lines

    # ------------------------------------------------------------------ reports

    def failing_non_nh(self) -> list[CaseRecord]:
        return [
            r
            for r in sorted(self.cases.values(), key=lambda r: (r.file, r.line))
            if r.outcome != "passed" and not r.native_histogram
        ]

    def failure_report(self) -> str:
        """Markdown: failing cases that do not depend on native histograms, grouped by cause."""
        groups: dict[str, list[CaseRecord]] = defaultdict(list)
        for rec in self.failing_non_nh():
            groups[cause_of(rec)].append(rec)
        out = ["# PromQL conformance failures (not native histograms)", ""]
        out += self.summary_lines()[1:]
        out += ["", f"{sum(len(v) for v in groups.values())} failing cases in {len(groups)} groups.", ""]
        for cause, recs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            out.append(f"## {cause} ({len(recs)})")
            out.append("")
            for r in recs:
                first = r.reasons[0].splitlines()[0] if r.reasons else r.xfail_reason
                out.append(f"- `{r.file}:{r.line}` `{r.expr}` — {first[:300]}")
            out.append("")
        out += self._native_histogram_section()
        return "\n".join(out)

    def _native_histogram_section(self) -> list[str]:
        """Listed native-histogram cases grouped by how they fail, crashes spelled out:
        a crash or a non-histogram error there may hide an engine bug."""
        nh = [r for r in self.cases.values() if r.outcome != "passed" and r.native_histogram]
        groups: dict[str, list[CaseRecord]] = defaultdict(list)
        for rec in nh:
            groups[cause_of(rec)].append(rec)
        out = [f"# Native-histogram cases by cause ({len(nh)} listed)", ""]
        for cause, recs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            out.append(f"- {cause}: {len(recs)}")
            recs = sorted(recs, key=lambda r: (r.file, r.line))
            shown = recs if cause.startswith("crash") else recs[:1]  # crashes are never expected
            out += [f"  - `{r.file}:{r.line}` `{r.expr}`" for r in shown]
        out.append("")
        return out

    def expected_failures_toml(self, current: Path) -> str:
        """expected_failures.toml listing every failing native-histogram case of this run."""
        old: dict[tuple[str, int], str] = {}
        if current.exists():
            data = tomllib.loads(current.read_text(encoding="utf-8"))
            old = {(e["file"], int(e["line"])): e["reason"] for e in data.get("case", [])}
        lines = [
            "# PromQL conformance cases that are expected to fail, each with its reason.",
            "# Only cases that depend on native histograms may stay listed. Failures of other cases are",
            '# listed only while the engine is being fixed, with a reason starting "engine bug:"; the',
            "# run's summary counts them (must reach 0).",
            "# Regenerate: SIGNALFIRE_CONFORMANCE_WRITE_XFAILS=1 python -m pytest tests/conformance",
            "",
        ]
        for key in sorted(self.cases):
            rec = self.cases[key]
            if rec.outcome not in ("failed", "xfailed"):
                continue
            if rec.native_histogram:
                default = f"native histograms are not implemented: {rec.native_histogram}"
            else:
                default = f"engine bug: {cause_of(rec)}"
            reason = old.get(key) or default
            lines += [
                "[[case]]",
                f'file = "{rec.file}"',
                f"line = {rec.line}",
                f"reason = {_toml_str(reason)}",
                "",
            ]
        return "\n".join(lines)


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cause_of(rec: CaseRecord) -> str:
    """A short grouping key: the kind of failure plus what the query uses."""
    first = rec.reasons[0].splitlines()[0] if rec.reasons else rec.xfail_reason
    funcs = sorted({f for f in _FUNC_RE.findall(rec.expr) if f not in _KEYWORDS})
    uses = ", ".join(funcs) if funcs else "selectors/operators only"
    mode = "range mode: " if first.startswith("[range mode") else ""
    first = first.split("] ", 1)[1] if mode else first
    if "crash (" in first:
        crash = first.split("crash (", 1)[1]
        return f"{mode}crash: {_mask(crash)[:120]}"
    if first.startswith("unexpected error:"):
        return f"{mode}unexpected error: {_mask(first[len('unexpected error: ') :])[:120]}"
    if first.startswith("expected the query to fail"):
        return f"{mode}no error where one is expected ({uses})"
    if first.startswith("wrong error message") or first.startswith("error "):
        return f"{mode}wrong error message ({uses})"
    if "warning" in first or "info" in first:
        return f"{mode}annotations ({uses})"
    if first.startswith("load at line"):
        return "storage rejected loaded samples"
    return f"{mode}wrong result ({uses})"


def _mask(text: str) -> str:
    text = re.sub(r'"[^"]*"', '"…"', text)
    return re.sub(r"\d+(\.\d+)?", "N", text)


class ConformanceSummaryPlugin:
    """The pytest hooks: tally every report, print the table at the end, write reports.

    Registered once per process by :func:`register`, from ``tests/conftest.py`` (the only
    conftest pytest-xdist's controller loads, since it never collects) and from
    ``tests/conformance/conftest.py`` (when that folder is run on its own).
    """

    def __init__(self) -> None:
        self.tally = ConformanceTally()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.tally.add(report)

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if not self.tally.cases:
            return
        for line in self.tally.summary_lines():
            terminalreporter.write_line(line)
        report = os.environ.get("SIGNALFIRE_CONFORMANCE_REPORT")
        if report:
            Path(report).write_text(self.tally.failure_report(), encoding="utf-8")
            terminalreporter.write_line(f"conformance failure report written to {report}")
        if os.environ.get("SIGNALFIRE_CONFORMANCE_WRITE_XFAILS") == "1":
            path = Path(__file__).with_name("expected_failures.toml")
            path.write_text(self.tally.expected_failures_toml(path), encoding="utf-8")
            terminalreporter.write_line(f"expected failures rewritten in {path}")


PLUGIN_NAME = "signalfire-conformance-summary"


def register(config: pytest.Config) -> None:
    """Register the summary plugin unless this process already has it."""
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(ConformanceSummaryPlugin(), PLUGIN_NAME)
