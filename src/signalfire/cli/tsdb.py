"""``signalfire tsdb list|analyze|dump|dump-openmetrics``: promtool's block tools, same output.

Each command prints what ``promtool tsdb <command>`` prints for the same data, so the two
can be diffed (tests/integration/test_promtool_backfill.py does). Formatting is in
:mod:`._format`; block access in :mod:`._blocks`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TextIO

import numpy as np

from signalfire._types import is_stale
from signalfire.cli import _blocks
from signalfire.cli._format import (
    base2_bytes,
    go_duration,
    go_float,
    go_labels,
    go_labels_condensed,
    go_time_utc,
    tabwrite,
)
from signalfire.errors import SignalfireError
from signalfire.labels import METRIC_NAME, Matcher, MatchType
from signalfire.storage import SeriesSet

FAILURE = 1
SUCCESS = 0

BLOCK_HEADER = (
    "BLOCK ULID",
    "MIN TIME",
    "MAX TIME",
    "DURATION",
    "NUM SAMPLES",
    "NUM CHUNKS",
    "NUM SERIES",
    "SIZE",
)


def _fail(err: BaseException) -> int:
    print(err, file=sys.stderr)
    return FAILURE


def block_rows(blocks: Sequence[_blocks.BlockInfo], human_readable: bool) -> list[tuple[str, ...]]:
    """One row per block with promtool's eight columns."""

    def when(ms: int) -> str:
        return go_time_utc(ms) if human_readable else str(ms)

    return [
        (
            b.ulid,
            when(b.min_time),
            when(b.max_time),
            go_duration(b.max_time - b.min_time),
            str(b.num_samples),
            str(b.num_chunks),
            str(b.num_series),
            base2_bytes(b.size) if human_readable else str(b.size),
        )
        for b in blocks
    ]


def format_blocks(blocks: Sequence[_blocks.BlockInfo], human_readable: bool, header: bool = True) -> str:
    rows = block_rows(blocks, human_readable)
    return tabwrite([BLOCK_HEADER, *rows] if header else rows)


def cmd_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        blocks = _blocks.list_blocks(args.db_path)
    except SignalfireError as err:
        return _fail(err)
    out.write(format_blocks(blocks, args.human_readable))
    return SUCCESS


# --------------------------------------------------------------------------- analyze


def _top(counts: dict[str, int], limit: int) -> list[str]:
    """``N key`` lines, largest first; ties by key so the output is stable (Go's order is random)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [f"{v} {k}" for k, v in items]


def analyze_series(ss: SeriesSet, info: _blocks.BlockInfo, limit: int, matcher_text: str = "") -> list[str]:
    """The lines of ``promtool tsdb analyze`` for the series of one block.

    Churn is the share of the block's range a series does not cover, summed per label pair
    and per label name (Prometheus computes it from chunk bounds, which are the first and
    last sample times we take here).
    """
    lines = [
        f"Block ID: {info.ulid}",
        f"Duration: {go_duration(info.max_time - info.min_time)}",
        f"Total Series: {info.num_series}",
    ]
    if matcher_text:
        lines.append(f"Matcher: {matcher_text}")
    S = len(ss.labels)
    span = info.max_time - info.min_time
    lens = np.diff(ss.offsets)
    has = lens > 0
    first = np.zeros(S, np.int64)
    last = np.zeros(S, np.int64)
    if len(ss.ts):
        first[has] = ss.ts[ss.offsets[:-1][has]]
        last[has] = ss.ts[ss.offsets[1:][has] - 1]
    uncovered = span - (last - first)

    names: set[str] = set()
    values_of: dict[str, set[str]] = {}
    pair_uncovered: Counter[str] = Counter()
    name_uncovered: Counter[str] = Counter()
    pair_count: Counter[str] = Counter()
    metric_count: Counter[str] = Counter()
    entries = 0
    for i in range(S):  # loop over series: label bookkeeping, as promtool's postings walk
        u = int(uncovered[i])
        for n, v in ss.labels[i]:
            key = f"{n}={v}"
            names.add(n)
            values_of.setdefault(n, set()).add(v)
            name_uncovered[n] += u
            pair_uncovered[key] += u
            pair_count[key] += 1
            entries += 1
            if n == METRIC_NAME:
                metric_count[v] += 1
    lines.append(f"Label names: {len(names)}")
    if matcher_text:
        lines.append(f"Matched series: {S}")
    lines.append(f"Postings (unique label pairs): {len(pair_uncovered)}")
    lines.append(f"Postings entries (total label pairs): {entries}")

    def churn(c: Counter[str]) -> dict[str, int]:
        return {k: int(v / span) if span else 0 for k, v in c.items()}

    sections = [
        ("Label pairs most involved in churning:", churn(pair_uncovered)),
        ("Label names most involved in churning:", churn(name_uncovered)),
        ("Most common label pairs:", dict(pair_count)),
        (
            "Label names with highest cumulative label value length:",
            {n: sum(len(v.encode()) for v in vs) for n, vs in values_of.items()},
        ),
        ("Highest cardinality labels:", {n: len(vs) for n, vs in values_of.items()}),
        ("Highest cardinality metric names:", dict(metric_count)),
    ]
    for title, counts in sections:
        lines.append("")
        lines.append(title)
        lines.extend(_top(counts, limit))
    return lines


def _histogram_lines(title: str, data: list[int], total: int) -> list[str]:
    """promtool's ``displayHistogram``: min/avg/max and buckets of 10^k width with # bars."""
    if not data:
        return [f"{title}: N/A", ""]
    data = sorted(data)
    lo, hi = data[0], data[-1]
    s = (hi - lo) // 10
    step = 10
    while step < s and step <= 10000:
        step *= 10
    start = lo - lo % step
    end = hi - hi % step + step
    buckets = [0] * ((end - start) // step + 1)
    for c in data:
        buckets[(c - start) // step] += 1
    avg = sum(data) // len(data)
    wl, wr, wc = len(str(end)), len(str(end + step)), len(str(max(buckets)))
    out = [f"{title} (min/avg/max): {lo}/{avg}/{hi}"]
    for b, count in enumerate(buckets):
        bar = "#" * (100 * count // total)
        out.append(f"[{b * step + start + 1:>{wl}d}, {(b + 1) * step + start:>{wr}d}]: {count:>{wc}d} {bar}")
    out.append("")
    return out


def compaction_lines(ss: SeriesSet, info: _blocks.BlockInfo) -> list[str]:
    """``--extended``: how densely the block stores its samples.

    promtool histograms samples and bytes per chunk; a signalfire chunk is a column of many
    series, so those per-chunk figures do not carry over. We print the block's chunk count,
    samples per chunk and bytes per sample from its meta, and promtool's histogram layout
    over samples per series.
    """
    lens = np.diff(ss.offsets).astype(int).tolist()
    per_chunk = info.num_samples / info.num_chunks if info.num_chunks else 0.0
    per_sample = info.size / info.num_samples if info.num_samples else 0.0
    out = ["", "Compaction analysis:", ""]
    out.append(f"chunks: {info.num_chunks}, samples per chunk (avg): {per_chunk:.1f}, ")
    out[-1] += f"bytes per sample: {per_sample:.3f}"
    out.append("")
    out += _histogram_lines("samples per series", lens, len(lens))
    return out


def cmd_analyze(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        info = _blocks.find_block(args.db_path, args.block_id)
        matchers = _parse_selector(args.match) if args.match else [_ALL]
        with _blocks.block_querier(info) as q:
            ss = _blocks.select_all(q, [matchers])
        lines = analyze_series(ss, info, args.limit, args.match)
        if args.extended:
            lines += compaction_lines(ss, info)
    except SignalfireError as err:
        return _fail(err)
    out.write("\n".join(lines) + "\n")
    return SUCCESS


# --------------------------------------------------------------------------- dump

_ALL = Matcher(MatchType.REGEX, METRIC_NAME, "(?s:.*)")


def _parse_selector(text: str) -> list[Matcher]:
    from signalfire.promql import parse_metric_selector

    return list(parse_metric_selector(text))


def _matcher_sets(match: list[str] | None) -> list[list[Matcher]]:
    if not match:
        return [[_ALL]]
    return [_parse_selector(m) for m in match]


def dump_lines(ss: SeriesSet) -> Iterator[str]:
    """``{labels} value ts`` per sample, promtool's ``tsdb dump`` format; one text block per series.

    A generator, so a large dump streams to stdout instead of building every line first.
    """
    for i in range(len(ss.labels)):  # loop over series; each yields all its samples' lines
        ls, ts, vs = ss.series(i)
        prefix = go_labels(ls) + " "
        yield "".join([f"{prefix}{go_float(v)} {t}\n" for v, t in zip(vs.tolist(), ts.tolist())])


def dump_openmetrics_lines(ss: SeriesSet) -> Iterator[str]:
    """``name{labels} value seconds`` per sample and a final ``# EOF``; staleness markers left out.

    A staleness marker is a NaN with a reserved bit pattern that OpenMetrics cannot
    distinguish from a real NaN, so writing it would turn it into data on re-import.
    """
    for i in range(len(ss.labels)):
        ls, ts, vs = ss.series(i)
        keep = ~is_stale(vs)
        prefix = ls.get(METRIC_NAME) + go_labels_condensed(ls) + " "
        yield "".join(
            [f"{prefix}{go_float(v)} {t / 1000:.3f}\n" for v, t in zip(vs[keep].tolist(), ts[keep].tolist())]
        )
    yield "# EOF\n"


def _dump(args: argparse.Namespace, out: TextIO | None, fmt: str) -> int:
    out = out or sys.stdout
    try:
        sets = _matcher_sets(args.match)
        ss = _blocks.select_blocks(args.db_path, sets, args.min_time, args.max_time, args.sandbox_dir_root)
    except SignalfireError as err:
        return _fail(err)
    for block in dump_lines(ss) if fmt == "text" else dump_openmetrics_lines(ss):
        out.write(block)
    return SUCCESS


def cmd_dump(args: argparse.Namespace, out: TextIO | None = None) -> int:
    return _dump(args, out, "text")


def cmd_dump_openmetrics(args: argparse.Namespace, out: TextIO | None = None) -> int:
    return _dump(args, out, "openmetrics")
