"""``signalfire check metrics``: promtool's exit codes and output on stdin bodies."""

from __future__ import annotations

import io

import pytest

from signalfire.cli.check import LINT_ERROR, check_metrics, family_of

CLEAN = (
    b"# HELP reqs_total Requests.\n# TYPE reqs_total counter\n"
    b'reqs_total{code="200"} 1\nreqs_total{code="500"} 2\n'
)


def run(body: bytes, extended: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = check_metrics(io.BytesIO(body), extended=extended, out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("body", "rc"),
    [(CLEAN, 0), (b"", 0), (b"foo 1\n", LINT_ERROR), (b"foo{ 1\n", 1)],
    ids=["clean", "empty", "lint-problem", "parse-error"],
)
def test_exit_codes(body: bytes, rc: int) -> None:
    assert run(body)[0] == rc


def test_lint_problem_printed_as_metric_and_text() -> None:
    rc, out, err = run(b"foo 1\n")
    assert rc == LINT_ERROR and out == ""
    assert err.strip() == "foo no help text"


def test_parse_error_message() -> None:
    _, _, err = run(b"foo{ 1\n")
    assert err.startswith("error while linting: ")


def test_extended_cardinality_table() -> None:
    body = (
        CLEAN
        + b"# HELP lat x\n# TYPE lat histogram\n"
        + b"".join(f'lat_bucket{{le="{le}"}} 1\n'.encode() for le in ("0.1", "1", "+Inf"))
        + b"lat_sum 1\nlat_count 1\n"
    )
    rc, out, _ = run(body, extended=True)
    assert rc == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["Metric", "Cardinality", "Percentage"]
    assert rows[1:] == [["lat", "5", "71.43%"], ["reqs_total", "2", "28.57%"], ["Total", "7", "100%"]]


def test_family_of() -> None:
    fams = {"lat", "reqs"}
    assert family_of("lat_bucket", fams) == "lat"
    assert family_of("reqs_total", fams) == "reqs"
    assert family_of("other_total", fams) == "other_total"
