"""``promtool check metrics`` rules and messages (client_golang promlint)."""

from __future__ import annotations

import pytest

from shared_data import PROMTOOL_FIXTURES
from signalfire.errors import ExpositionParseError
from signalfire.exposition import LintProblem, format_problems, lint


def f(body: str, want: list[tuple[str, str]]) -> None:
    assert lint(body.encode()) == [LintProblem(m, t) for m, t in sorted(want)]


def test_clean() -> None:
    f("# HELP foo_total Help.\n# TYPE foo_total counter\nfoo_total 1\n", [])
    f("# HELP x_bytes Help.\n# TYPE x_bytes gauge\nx_bytes 1\n", [])
    f(
        '# HELP h_seconds Help.\n# TYPE h_seconds histogram\nh_seconds_bucket{le="1"} 1\n'
        'h_seconds_bucket{le="+Inf"} 1\nh_seconds_sum 1\nh_seconds_count 1\n',
        [],
    )


def test_rules() -> None:
    f("foo_total 1\n", [("foo_total", "no help text")])
    f(
        "# HELP foo Help.\n# TYPE foo counter\nfoo 1\n",
        [("foo", 'counter metrics should have "_total" suffix')],
    )
    f(
        "# HELP foo_total Help.\n# TYPE foo_total gauge\nfoo_total 1\n",
        [("foo_total", 'non-counter metrics should not have "_total" suffix')],
    )
    f(
        "# HELP d_milliseconds Help.\n# TYPE d_milliseconds gauge\nd_milliseconds 1\n",
        [("d_milliseconds", 'use base unit "seconds" instead of "milliseconds"')],
    )
    f(
        "# HELP d_kilobits Help.\nd_kilobits 1\n",
        [("d_kilobits", 'use base unit "bytes" instead of "kilobits"')],
    )
    f("# HELP thermometers Help.\nthermometers 1\n", [])
    f(
        "# HELP x_ms Help.\n# TYPE x_ms gauge\nx_ms 1\n",
        [("x_ms", "metric names should not contain abbreviated units")],
    )
    f(
        "# HELP x_bucket Help.\n# TYPE x_bucket gauge\nx_bucket 1\n",
        [("x_bucket", 'non-histogram metrics should not have "_bucket" suffix')],
    )
    f(
        "# HELP x_count Help.\n# TYPE x_count counter\nx_count 1\n",
        [
            ("x_count", 'counter metrics should have "_total" suffix'),
            ("x_count", 'non-histogram and non-summary metrics should not have "_count" suffix'),
        ],
    )
    f(
        '# HELP g Help.\n# TYPE g gauge\ng{le="1",quantile="0.5"} 1\n',
        [
            ("g", 'non-histogram metrics should not have "le" label'),
            ("g", 'non-summary metrics should not have "quantile" label'),
        ],
    )
    f(
        "# HELP a_gauge Help.\n# TYPE a_gauge gauge\na_gauge 1\n",
        [("a_gauge", "metric name should not include type 'gauge'")],
    )
    f(
        "# HELP a:b Help.\n# TYPE a:b gauge\na:b 1\n",
        [("a:b", "metric names should not contain ':'")],
    )
    f(
        '# HELP fooBar Help.\n# TYPE fooBar gauge\nfooBar{labelName="x"} 1\n',
        [
            ("fooBar", "label names should be written in 'snake_case' not 'camelCase'"),
            ("fooBar", "metric names should be written in 'snake_case' not 'camelCase'"),
        ],
    )
    f(
        "# HELP t_timestamp_seconds Help.\n# TYPE t_timestamp_seconds counter\nt_timestamp_seconds 1\n",
        [
            ("t_timestamp_seconds", 'counter metrics should have "_total" suffix'),
            ("t_timestamp_seconds", 'non-gauge metrics should not have "_timestamp_seconds" suffix'),
        ],
    )
    f(
        '# HELP dup Help.\n# TYPE dup gauge\ndup{a="1"} 1\ndup{a="1"} 2\n',
        [("dup", "metric not unique")],
    )


def test_untyped_is_exempt_from_type_rules() -> None:
    f("# HELP x_total Help.\nx_total 1\nx_bucket 1\n", [("x_bucket", "no help text")])


def test_promtool_output_format() -> None:
    problems = lint(b"foo_total 1\n")
    assert format_problems(problems) == "foo_total no help text\n"


def test_errors() -> None:
    with pytest.raises(ExpositionParseError) as info:
        lint(b"foo{ 1\n")
    assert info.value.line == 1
    with pytest.raises(ExpositionParseError, match="second HELP line"):
        lint(b"# HELP a x\n# HELP a y\na 1\n")
    with pytest.raises(ExpositionParseError, match="TYPE reported after samples"):
        lint(b"a 1\n# TYPE a gauge\n")


def test_cardinality_like_promtool_extended() -> None:

    from signalfire.exposition import cardinality

    body = (PROMTOOL_FIXTURES / "metrics-test.prom").read_bytes()
    rows = cardinality(body)
    assert sum(r.cardinality for r in rows) == 27
    assert rows[0].metric == "prometheus_tsdb_compaction_chunk_size_bytes"
    assert rows[0].cardinality == 15
    assert abs(sum(r.percentage for r in rows) - 1.0) < 1e-9
