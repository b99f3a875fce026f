"""Prometheus's own PromQL test scripts, one pytest test per ``eval`` (ids ``file.test:line``).

Cases listed in ``expected_failures.toml`` run as strict xfails, so a listed case that
starts passing fails the run until its entry is removed. See ``conftest.py`` for the
per-file summary and the failure report.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from conformance.runner import ScriptRunner, native_histogram_reason, promqltest_files
from conformance.script import Eval, parse_file

EXPECTED_FAILURES = Path(__file__).with_name("expected_failures.toml")
#: A.11.2 range-mode re-check of instant evals; SIGNALFIRE_CONFORMANCE_RANGE_CHECK=0 turns it off.
RANGE_CHECK = os.environ.get("SIGNALFIRE_CONFORMANCE_RANGE_CHECK", "1") != "0"
#: A.11.1 step invariance with ``@``; SIGNALFIRE_CONFORMANCE_AT_CHECK=0 turns it off.
AT_CHECK = os.environ.get("SIGNALFIRE_CONFORMANCE_AT_CHECK", "1") != "0"


def load_expected_failures() -> dict[tuple[str, int], str]:
    """``(file, line) -> reason`` from expected_failures.toml."""
    data = tomllib.loads(EXPECTED_FAILURES.read_text(encoding="utf-8"))
    return {(e["file"], int(e["line"])): str(e["reason"]) for e in data.get("case", [])}


def _cases() -> list[object]:
    listed = load_expected_failures()
    params: list[object] = []
    for path in promqltest_files():
        for index, cmd in enumerate(parse_file(path)):
            if not isinstance(cmd, Eval):
                continue
            key = (path.name, cmd.line)
            marks = [pytest.mark.xfail(strict=True, reason=listed[key])] if key in listed else []
            params.append(pytest.param(path.name, index, id=f"{path.name}:{cmd.line}", marks=marks))
    return params


_RUNNERS: dict[str, ScriptRunner] = {}


@pytest.fixture(scope="session")
def runners(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One ScriptRunner per file for the whole session, closed at its end."""
    root = tmp_path_factory.mktemp("promqltest")
    _RUNNERS.clear()

    def get(name: str) -> ScriptRunner:
        if name not in _RUNNERS:
            _RUNNERS[name] = ScriptRunner(Path(promqltest_files()[0].parent / name), root)
        return _RUNNERS[name]

    yield get
    for r in _RUNNERS.values():
        r.close()
    _RUNNERS.clear()


@pytest.mark.parametrize(("file", "index"), _cases())
def test_eval(file: str, index: int, runners, record_property) -> None:  # type: ignore[no-untyped-def]
    runner = runners(file)
    result = runner.run_case(index, range_check=RANGE_CHECK, at_check=AT_CHECK)
    record_property("native_histogram", result.native_histogram)
    record_property("expr", runner.commands[index].expr)  # type: ignore[union-attr]
    if result.reasons:
        record_property("reasons", result.reasons)
        pytest.fail(f"{runner.commands[index].header}\n" + "\n".join(result.reasons), pytrace=False)  # type: ignore[union-attr]


def test_expected_failures_name_real_cases() -> None:
    """Every entry names an existing eval line and gives a reason."""
    by_file = {p.name: {c.line for c in parse_file(p) if isinstance(c, Eval)} for p in promqltest_files()}
    bad = [f"{f}:{ln}" for (f, ln) in load_expected_failures() if ln not in by_file.get(f, set())]
    assert not bad, f"expected_failures.toml lists lines that are not eval cases: {bad}"
    assert all(reason.strip() for reason in load_expected_failures().values())


def test_listed_cases_are_native_histograms_or_marked_engine_bugs() -> None:
    """The issue's rule: only cases that depend on native histograms may be listed. Engine
    failures are tolerated only while marked as such, so the summary can count them."""
    listed = load_expected_failures()
    unmarked = []
    for path in promqltest_files():
        runner = ScriptRunner(path, Path("."))
        for index, ev in runner.evals():
            reason = listed.get((path.name, ev.line))
            if reason is None or native_histogram_reason(ev, runner.segment_of(index)):
                continue
            if not reason.startswith("engine bug:"):
                unmarked.append(f"{path.name}:{ev.line}")
    assert not unmarked, f"non-native-histogram cases listed without 'engine bug:': {unmarked}"
