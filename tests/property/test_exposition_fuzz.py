"""Fuzzing the exposition parsers: malformed input raises ExpositionParseError, never anything else.

70,000 inputs come from a fixed-seed numpy generator: windows of lines from the
upstream conformance files, mutated by bit flips, truncations, insertions and
deletions of syntax-relevant bytes, or replaced by random text; or a run of valid
sample lines followed by one mutated line, the shape that made a batch check over all
lines exponential. Each goes through both parsers, each parse under a CPU-time budget
(a parse of a few kilobytes over a second is a failure, reported with its input). A
smaller hypothesis test adds shrinking on arbitrary bytes.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_data import CONFORMANCE
from signalfire.errors import ExpositionParseError
from signalfire.exposition import lint, parse_openmetrics, parse_text
from signalfire.exposition.result import ParsedScrape
from time_budget import OVER, cpu_seconds

FILES = [
    CONFORMANCE / "exposition" / "alltypes.237mfs.prom.txt",
    CONFORMANCE / "exposition" / "alltypes.5mfs.om.txt",
    CONFORMANCE / "exposition" / "1histogram.om.txt",
    CONFORMANCE / "promtool" / "metrics-test.prom",
]
EXTRA = [
    b'{"my.metric", "a.b"="c"} 1 2',
    b'# HELP "my.metric" help \\n text',
    b"# TYPE h histogram",
    b'h_bucket{le="1"} 3 # {trace_id="a"} 0.5 1.5',
    b'c_created{a="b"} 1.7e9',
    b"# UNIT foo_seconds seconds",
    b'foo{a="\\"\\\\\\n"} NaN 1',
    b"x +Inf\ny -Inf\nz nan",
    b"# EOF",
]
ALPHABET = np.frombuffer(b'{}",=# \t\n\\\xff\xc30123456789.eE+-_aZ:pxNIn', dtype=np.uint8)
N = 70_000  # (100,000 before the longer inputs came: about the same run time)
#: CPU seconds one parse of one fuzz input may take (they are a few kilobytes at most).
BUDGET_S = 1.0


def _corpus() -> list[bytes]:
    lines: list[bytes] = []
    for path in FILES:
        lines.extend(path.read_bytes().split(b"\n"))
    return lines + EXTRA


@functools.cache
def _samples(lines: tuple[bytes, ...]) -> list[bytes]:
    return [ln for ln in lines if ln and not ln.startswith(b"#")]


def _valid_then_mutated(rng: np.random.Generator, lines: list[bytes]) -> bytes:
    """20 to 40 sample lines of the corpus (valid in both formats), then one sample line
    with one to three edits: a parser that checks all lines at once meets the mutation
    only after a long valid prefix."""
    samples = _samples(tuple(lines))
    k = int(rng.integers(20, 41))
    start = int(rng.integers(0, len(samples) - k))
    last = bytearray(samples[int(rng.integers(0, len(samples)))])
    for _ in range(int(rng.integers(1, 4))):
        pos = int(rng.integers(0, len(last) + 1))
        if rng.random() < 0.5 and pos < len(last):
            last[pos] = int(ALPHABET[int(rng.integers(0, len(ALPHABET)))])
        else:
            last[pos:pos] = ALPHABET[rng.integers(0, len(ALPHABET), int(rng.integers(1, 3)))].tobytes()
    return b"\n".join([*samples[start : start + k], bytes(last)]) + b"\n# EOF\n"


def _mutate(rng: np.random.Generator, lines: list[bytes]) -> bytes:
    if rng.random() < 0.07:
        return _valid_then_mutated(rng, lines)
    op = int(rng.integers(0, 6))
    if op == 5:  # random text from the syntax alphabet
        return ALPHABET[rng.integers(0, len(ALPHABET), int(rng.integers(0, 60)))].tobytes()
    k = int(rng.integers(1, 6))
    start = int(rng.integers(0, len(lines) - k))
    data = bytearray(b"\n".join(lines[start : start + k]) + b"\n")
    if rng.random() < 0.5:
        data += b"# EOF\n"
    for _ in range(int(rng.integers(1, 4))):
        n = len(data)
        if n == 0:
            break
        pos = int(rng.integers(0, n))
        if op == 0:
            data[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:
            del data[pos:]
        elif op == 2:
            data[pos:pos] = ALPHABET[rng.integers(0, len(ALPHABET), int(rng.integers(1, 4)))].tobytes()
        elif op == 3:
            del data[pos : pos + int(rng.integers(1, 4))]
        else:
            data[pos] = int(ALPHABET[int(rng.integers(0, len(ALPHABET)))])
    return bytes(data)


def _check(body: bytes) -> int:
    """Parse with both parsers, each within BUDGET_S of CPU time; returns how many accepted.
    Other exceptions propagate."""
    ok = 0
    for parser in (parse_text, parse_openmetrics):
        out: list[ParsedScrape | ExpositionParseError] = []

        def run(
            parser: Callable[[bytes], ParsedScrape] = parser,
            out: list[ParsedScrape | ExpositionParseError] = out,
        ) -> None:
            try:
                out.append(parser(body))
            except ExpositionParseError as err:
                out.append(err)

        took = cpu_seconds(run, BUDGET_S)
        assert took != OVER, f"{parser.__name__} ran over {BUDGET_S} s of CPU on {body!r}"
        r = out[0]
        if isinstance(r, ExpositionParseError):
            assert r.line >= 1 and r.column >= 1 and r.message
        else:
            ok += 1
            assert len(r.labels) == len(r.keys) == len(r.values) == len(r.timestamps)
    return ok


@pytest.mark.slow
def test_mutations_of_real_files() -> None:
    rng = np.random.default_rng(20260823)
    lines = _corpus()
    failures = []
    accepted = 0
    for _ in range(N):
        body = _mutate(rng, lines)
        try:
            accepted += _check(body)
        except Exception as err:
            failures.append((body, repr(err)))
            if len(failures) > 5:
                break
    assert not failures, failures
    # The mutations must exercise both outcomes, or the test proves nothing.
    assert 0.05 * N < accepted < 1.9 * N


def test_lint_on_mutations() -> None:
    rng = np.random.default_rng(7)
    lines = _corpus()
    for _ in range(2000):
        body = _mutate(rng, lines)
        with contextlib.suppress(ExpositionParseError):
            lint(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(body: bytes) -> None:
    _check(body)


_line = st.text(alphabet='{}",=# \t\\\n\x00é.eE+-_aZ:0123456789xnI', max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=5))
def test_syntax_soup(lines: list[str]) -> None:
    body = "\n".join(lines).encode()
    _check(body)
    _check(body + b"\n# EOF\n")


def test_values_survive_fuzz_corpus() -> None:
    # Sanity: the unmutated corpus lines parse as text and give finite or special floats.
    body = b"\n".join(
        CONFORMANCE.joinpath("exposition", "alltypes.237mfs.prom.txt").read_bytes().split(b"\n")
    )
    r = parse_text(body)
    assert all(math.isfinite(v) or math.isnan(v) or math.isinf(v) for v in r.values.tolist())


_tricky = st.text(alphabet=',="\\{} \tn.le_aé#', max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,3}", fullmatch=True), _tricky, max_size=4))
def test_fast_and_slow_paths_agree(labels: dict[str, str]) -> None:
    """The text parser's whole-body regex path and its token-by-token path give one answer."""
    from signalfire.exposition.text import _parse_lines, decode_lines
    from signalfire.exposition.write import MetricFamily, Sample, write_text
    from signalfire.labels import Labels

    lset = Labels.from_dict({"__name__": "m_bucket", **labels})
    body = write_text([MetricFamily("m", "histogram", samples=[Sample(lset, 1.0, 5)])])
    fast = parse_text(body)
    slow = _parse_lines(decode_lines(body)[0], False, None)
    assert fast.labels == slow.labels
    assert fast.keys == slow.keys
    want = dict(lset)
    if "le" in want:
        from signalfire.exposition._lex import normalize_float_label

        want["le"] = normalize_float_label(want["le"])
    assert dict(fast.labels[0]) == want
