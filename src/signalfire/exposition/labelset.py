"""Label-set text between braces, shared by both parsers' fast paths.

The fast paths first check a whole line against one regular expression; only
then is the ``{...}`` part split into items here. Items are ``name="value"``
(name bare or quoted) and, since Prometheus 3.0, a lone quoted string naming
the metric (``{"my.metric", "a.b"="c"}``).
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left, insort

from signalfire.exposition._lex import (
    LNAME,
    QSTRING,
    error_at,
    has_surrogates,
    normalize_float_label,
    unescape,
)
from signalfire.labels import METRIC_NAME, Labels
from signalfire.util.gofmt import go_quote

#: One item: a bare or quoted name, optionally ``=`` and a quoted value.
ITEM = rf"(?:{LNAME}={QSTRING}|{QSTRING}(?:={QSTRING})?+)"
_ITEM_RE = re.compile(rf"({LNAME}|{QSTRING})(?:=({QSTRING}))?+")
#: Items separated by commas, a trailing comma allowed (text format also allows spaces).
TEXT_ITEMS = rf"(?:{ITEM}(?:, ?+{ITEM})*+,?+)?+"
OM_ITEMS = rf"(?:{ITEM}(?:,{ITEM})*+,?+)?+"


def split_items(
    name: str | None, body: str, line_no: int, line: str
) -> tuple[str | None, list[tuple[str, str]]]:
    """Split an already validated ``{...}`` body into (metric name, label pairs).

    ``name`` is the name written before the brace, if any. Raises when the name is
    given twice, or a value holds invalid UTF-8.
    """
    pairs: list[tuple[str, str]] = []
    base = line.find(body)
    for m in _ITEM_RE.finditer(body):
        key, val = m.groups()
        if key[0] == '"':
            key = unescape(key[1:-1])
            if not val:  # A lone quoted string names the metric.
                if name is not None:
                    at = base + m.start()
                    context = go_quote(line[: base + m.end() + 1])
                    raise error_at(line_no, line, at, f"metric name already set while parsing: {context}")
                name = key
                continue
        raw = val[1:-1]
        if "\\" in raw:
            raw = unescape(raw)
        pairs.append((key, raw))
    return name, pairs


def check_utf8(line: str, line_no: int) -> None:
    """Reject a sample line carrying invalid UTF-8 (names and label values must be valid)."""
    if has_surrogates(line):
        idx = next(i for i, c in enumerate(line) if 0xDC80 <= ord(c) <= 0xDCFF)
        raise error_at(line_no, line, idx, f"invalid UTF-8 label value: {go_quote(line)}", expected="UTF-8")


_intern = sys.intern


def make_labels(
    name: str, pairs: list[tuple[str, str]], normalize: str | None, line_no: int, line: str
) -> Labels:
    """Build the sorted label set of one sample; ``normalize`` is "le", "quantile" or None.

    Empty values are dropped (Prometheus's label builder does); a repeated label
    name, an empty metric name or an empty label name are errors, as the scrape
    loop reports them.
    """
    if not name:
        raise error_at(line_no, line, 0, 'invalid metric name ""', expected="metric name")
    d = {"__name__": name}
    for n, v in pairs:
        if not n:
            raise error_at(line_no, line, 0, 'invalid label name ""', expected="label name")
        if n in d:
            raise error_at(line_no, line, 0, f"label name {go_quote(n)} is not unique")
        d[n] = v
    if normalize is not None and normalize in d:
        d[normalize] = normalize_float_label(d[normalize])
    return Labels(tuple(sorted((_intern(k), _intern(v)) for k, v in d.items() if v != "")))


def _plain_pairs(name: str, items: str) -> list[tuple[str, str]] | None:
    """Sorted pairs (``__name__`` included) of escape-free items; None when a name repeats
    or a value is empty (the general path handles those)."""
    # Without escapes a value holds no '"', so quotes alternate: names (with '=' and a leading
    # ',') at even positions, values at odd ones; keys cannot hold '=' or ','.
    parts = items.split('"')
    keys = "".join(parts[0::2]).rstrip(",")[:-1].split("=,")
    pairs = list(zip(keys, parts[1::2]))
    pairs.append((METRIC_NAME, name))
    pairs.sort()
    if len(dict(pairs)) != len(pairs) or '=""' in items:
        return None
    return pairs


#: Per-parse memo for histogram buckets: (name, items without ``le``) -> sorted pairs.
BucketMemo = dict[tuple[str, str], list[tuple[str, str]]]


def fast_labels(
    name: str | None,
    items: str,
    normalize: str | None,
    line_no: int,
    line: str,
    memo: BucketMemo | None = None,
) -> Labels:
    """The label set of one sample whose ``{...}`` body ``items`` passed the line regex.

    The common case (no escapes, no quoted names) is split with ``str.split`` on
    the quotes. ``normalize`` names the label (``le``/``quantile``) to put in float
    form. With a ``memo``, the buckets of one histogram series share the split and
    sort of their other labels: only ``le`` differs from bucket to bucket.
    """
    if not items:
        if name is None:  # pragma: no cover - callers reject a sample without a name
            raise error_at(line_no, line, 0, f"metric name not set while parsing: {go_quote(line)}")
        return Labels(((METRIC_NAME, _intern(name)),))
    if "\\" in items or items[0] == '"' or ',"' in items or '", ' in items:
        name, pairs = split_items(name, items, line_no, line)
        if name is None:
            raise error_at(line_no, line, 0, f"metric name not set while parsing: {go_quote(line)}")
        return make_labels(name, pairs, normalize, line_no, line)
    if name is None:
        raise error_at(line_no, line, 0, f"metric name not set while parsing: {go_quote(line)}")
    if memo is not None and normalize == "le":
        j = 0 if items.startswith('le="') else items.find(',le="') + 1
        if j > 0 or items.startswith('le="'):
            k = items.find('"', j + 4)
            le = items[j + 4 : k]
            rest = items[:j] + items[k + 2 :]
            base = memo.get((name, rest))
            if base is None and le and not rest.startswith('le="') and ',le="' not in rest:
                base = _plain_pairs(name, rest) if rest else [(METRIC_NAME, name)]
                if base is not None:
                    memo[(name, rest)] = base
            if base is not None and le:
                pairs = list(base)
                insort(pairs, ("le", normalize_float_label(le)))
                return Labels(pairs)
    plain = _plain_pairs(name, items)
    if plain is None:
        # A repeated name or an empty value (dropped, as Prometheus does) takes the general path.
        _, pairs = split_items(name, items, line_no, line)
        return make_labels(name, pairs, normalize, line_no, line)
    if normalize is not None:
        i = bisect_left(plain, (normalize,))
        if i < len(plain) and plain[i][0] == normalize:
            plain[i] = (normalize, normalize_float_label(plain[i][1]))
    return Labels(plain)
