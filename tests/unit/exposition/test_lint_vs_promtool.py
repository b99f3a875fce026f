"""Our lint against the real ``promtool check metrics`` (Debian's promtool) on the same bodies.

The installed promtool (2.42) predates promlint's ``_timestamp_seconds`` and
duplicate-series rules, so the inputs here avoid those two; everything else must
print byte for byte the same problem lines.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from shared_data import EXPOSITION
from signalfire.exposition import format_problems, lint

PROMTOOL = shutil.which("promtool")
pytestmark = [pytest.mark.integration]


@pytest.fixture(autouse=True)
def _need_promtool() -> None:
    # A missing promtool fails the test: ./scripts/test installs it, and a skip would hide that.
    assert PROMTOOL is not None, "promtool is not installed (./scripts/test installs Debian's prometheus)"


CASES = {
    "conformance": (EXPOSITION / "alltypes.237mfs.prom.txt").read_bytes(),
    "conformance_nometa": (EXPOSITION / "alltypes.237mfs.nometa.prom.txt").read_bytes(),
    "promtool_fixture": (EXPOSITION.parent / "promtool" / "metrics-test.prom").read_bytes(),
    "rules": (
        b"# HELP foo Help.\n# TYPE foo counter\nfoo 1\nbar_ms 2\n"
        b'# TYPE x_bucket gauge\nx_bucket{le="1",quantile="2"} 1\n'
        b'# HELP fooBar h\n# TYPE fooBar gauge\nfooBar{labelName="x"} 1\n'
        b"# HELP a:b_kilobytes h\n# TYPE a:b_kilobytes gauge\na:b_kilobytes 1\n"
        b"# HELP s_total h\n# TYPE s_total summary\ns_total_sum 1\ns_total_count 1\n"
        b"# HELP h_counter_seconds h\n# TYPE h_counter_seconds histogram\n"
        b'h_counter_seconds_bucket{le="+Inf"} 1\nh_counter_seconds_sum 1\nh_counter_seconds_count 1\n'
        b"# HELP d_count h\n# TYPE d_count gauge\nd_count 1\n"
        b"# HELP m_minutes h\nm_minutes 1\n# HELP size_mb h\nsize_mb 1\n"
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_output_as_promtool(name: str) -> None:
    body = CASES[name]
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    ours = format_problems(lint(body))
    assert proc.stderr.decode() + proc.stdout.decode() == ours
    assert proc.returncode == (3 if ours else 0)


def test_promtool_reads_our_text_output() -> None:
    """What write_text renders, Prometheus's own text parser (expfmt, via promtool) accepts."""
    from signalfire.exposition import families_from_parsed, parse_text, write_text

    body = write_text(families_from_parsed(parse_text(CASES["conformance"])))
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    out = proc.stderr.decode() + proc.stdout.decode()
    assert "error while linting" not in out
    assert out == format_problems(lint(body))
