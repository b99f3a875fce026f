"""Find and word the error in an OpenMetrics line that missed the line grammar.

:mod:`~signalfire.exposition.openmetrics` accepts a line with one regular
expression; when that fails, this module walks the line token by token as
Prometheus's ``openmetricslex.l`` does and reports the first token that does not
fit, in ``textparse``'s words (``expected label name, got " " ("INVALID") ...``).
It is only ever called on a bad line, so it is written for clarity, not speed.
"""

from __future__ import annotations

from signalfire.errors import ExpositionParseError
from signalfire.exposition._lex import (
    LNAME_RE,
    NAME_RE,
    QSTRING_RE,
    FloatSyntaxError,
    error_at,
    go_float,
    has_surrogates,
    token_error,
)
from signalfire.util.gofmt import go_quote

_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")


def locate_error(line: str, ln: int) -> ExpositionParseError:
    """The error for OpenMetrics line ``ln`` (1-based), which is known to be malformed."""
    try:
        if line.startswith("#"):
            _meta(line, ln)
        else:
            _sample(line, ln)
    except ExpositionParseError as err:
        return err
    return error_at(ln, line, 0, f"invalid line: {go_quote(line)}", expected="OpenMetrics line")


def _kind(line: str, i: int) -> str:
    if i >= len(line):
        return "LINEBREAK"
    c = line[i]
    if c.isascii() and (c.isalpha() or c == "_"):
        return "LNAME"
    return {"{": "BOPEN", "}": "BCLOSE", "=": "EQUAL", ",": "COMMA", '"': "QSTRING"}.get(c, "INVALID")


def _meta(line: str, ln: int) -> None:
    if not line.startswith("# "):
        raise token_error(ln, line, 0, 1, "expected a valid start token", "INVALID")
    for kw in ("HELP", "TYPE", "UNIT"):
        if line.startswith(kw + " ", 2):
            break
    else:
        if line.startswith("EOF", 2):
            raise error_at(ln, line, 5, "unexpected data after # EOF", expected="end of data")
        raise token_error(ln, line, 2, 3, "expected a valid start token", "INVALID")
    i = 7
    m = QSTRING_RE.match(line, i) if line[i : i + 1] == '"' else NAME_RE.match(line, i)
    if m is None:
        raise token_error(ln, line, i, i + 1, f"expected metric name after {kw}", _kind(line, i))
    if m.end() >= len(line) or line[m.end()] != " ":
        raise error_at(ln, line, m.end(), f"expected text in {kw}", expected="text", found=line[m.end() :])
    if kw == "TYPE" and line[m.end() + 1 :] not in _TYPES:
        raise error_at(ln, line, m.end() + 1, f"invalid metric type {go_quote(line[m.end() + 1 :])}")


def _sample(line: str, ln: int) -> None:
    n = len(line)
    if n == 0:
        raise token_error(ln, line, 0, 0, "expected a valid start token", "LINEBREAK")
    m = NAME_RE.match(line)
    if m is not None:
        i = m.end()
        if i < n and line[i] == "{":
            i = _labels(line, ln, i + 1, exemplar=False)
    elif line[0] == "{":
        i = _labels(line, ln, 1, exemplar=False)
    else:
        raise token_error(ln, line, 0, 1, "expected a valid start token", "INVALID")
    i = _number(line, ln, i, "expected value after metric")
    if i >= n:
        return
    if line.startswith(" # {", i):
        _exemplar(line, ln, i + 4)
        return
    if line[i] != " " or i + 1 >= n or line[i + 1] == " ":
        raise token_error(ln, line, i, i + 1, "expected timestamp or comment", _kind(line, i))
    i = _number(line, ln, i, "expected timestamp or comment", what="timestamp")
    if i >= n:
        return
    if line.startswith(" # {", i):
        _exemplar(line, ln, i + 4)
        return
    raise token_error(ln, line, i, i + 1, "expected next entry after timestamp", _kind(line, i))


def _number(line: str, ln: int, i: int, expected: str, what: str = "value") -> int:
    """Check `` <float>`` at ``i``; returns the index after it."""
    n = len(line)
    if i >= n or line[i] != " " or i + 1 >= n or line[i + 1] == " ":
        kind = "LINEBREAK" if i >= n else (_kind(line, i) if line[i] != " " else "INVALID")
        raise token_error(ln, line, i, i + 1, expected, kind)
    j = line.find(" ", i + 1)
    j = n if j < 0 else j
    tok = line[i + 1 : j]
    try:
        f = go_float(tok)
    except FloatSyntaxError as err:
        raise error_at(
            ln, line, i + 1, f"{err} while parsing: {go_quote(line[:j])}", expected=what, found=tok
        ) from None
    if what != "value" and (f != f or f in (float("inf"), float("-inf"))):
        raise error_at(ln, line, i + 1, f"invalid {what} {tok}", expected=what, found=tok)
    return j


def _labels(line: str, ln: int, i: int, *, exemplar: bool) -> int:
    """Label items after ``{`` (no spaces in OpenMetrics); returns the index after ``}``."""
    n = len(line)
    named = not exemplar and line[0] != "{"
    while True:
        if i >= n:
            raise token_error(ln, line, i, i, "expected label name", "LINEBREAK")
        if line[i] == "}":
            return i + 1
        quoted = line[i] == '"'
        m = QSTRING_RE.match(line, i) if quoted else LNAME_RE.match(line, i)
        if m is None:
            raise token_error(
                ln, line, i, i + 1, "expected label name", _kind(line, i) if not quoted else "INVALID"
            )
        j = m.end()
        t = line[j] if j < n else ""
        if quoted and t in (",", "}") and t:
            if exemplar:
                raise token_error(ln, line, j, j + 1, "expected label name", _kind(line, j))
            if named:
                raise error_at(
                    ln, line, i, f"metric name already set while parsing: {go_quote(line[: j + 1])}"
                )
            named = True
            i = j + 1 if t == "," else j
            continue
        if t != "=":
            raise token_error(ln, line, j, j + 1, "expected equal", _kind(line, j))
        mv = QSTRING_RE.match(line, j + 1) if line[j + 1 : j + 2] == '"' else None
        if mv is None:
            raise token_error(ln, line, j + 1, j + 2, "expected label value", "INVALID")
        if has_surrogates(mv.group()):
            raise error_at(ln, line, j + 1, f"invalid UTF-8 label value: {go_quote(mv.group())}")
        i = mv.end()
        if i < n and line[i] == ",":
            i += 1
        elif i >= n or line[i] != "}":
            raise token_error(ln, line, i, i + 1, "expected comma or brace close", _kind(line, i))


def _exemplar(line: str, ln: int, i: int) -> None:
    n = len(line)
    i = _labels(line, ln, i, exemplar=True)
    i = _number(line, ln, i, "expected value after exemplar labels")
    if i >= n:
        return
    i = _number(line, ln, i, "expected timestamp or comment", what="exemplar timestamp")
    if i < n:
        raise token_error(ln, line, i, i + 1, "expected next entry after exemplar timestamp", _kind(line, i))
