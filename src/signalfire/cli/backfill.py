"""``signalfire tsdb create-blocks-from openmetrics FILE [DIR]``: backfill blocks from a file.

Same contract as promtool's backfill: every sample needs a timestamp, the file must end
with ``# EOF``, blocks are cut on boundaries that are multiples of the block duration
(2h, or the largest of Prometheus's compaction ranges 2h·3^k that fits in
``--max-block-duration``), and each created block is printed as ``tsdb list`` prints it.

Unlike promtool, which re-parses the whole file once per block window, the file is parsed
once: pieces of it go through :func:`signalfire.exposition.parse`, samples become three
flat arrays (series id, timestamp, value), and each block is one sorted slice of them.
Samples of a series may come in any order in the file; an identical repeat is dropped
and a different value at the same timestamp is an error, as in Prometheus.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from signalfire._types import F64, I64
from signalfire.cli import _blocks
from signalfire.cli._format import parse_duration_ms
from signalfire.cli.tsdb import format_blocks
from signalfire.errors import BadDataError, ExpositionParseError, SignalfireError
from signalfire.labels import Labels
from signalfire.storage import SeriesSet

if TYPE_CHECKING:
    from signalfire.exposition import ParsedScrape

FAILURE = 1
SUCCESS = 0
HOUR_MS = 3_600_000
DEFAULT_BLOCK_DURATION = 2 * HOUR_MS
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: Bytes handed to the parser at once; big enough to amortise the call, small enough that
#: one piece's per-sample label objects stay far below the arrays they become.
PIECE_BYTES = 8 << 20


def compatible_block_duration(max_block_ms: int) -> int:
    """promtool's ``getCompatibleBlockDuration``: the largest of 2h·3^k (k < 10) not above the max."""
    if max_block_ms <= DEFAULT_BLOCK_DURATION:
        return DEFAULT_BLOCK_DURATION
    ranges = [DEFAULT_BLOCK_DURATION * 3**k for k in range(10)]
    fitting = [r for r in ranges if r <= max_block_ms]
    return int(fitting[-1])


def parse_label_flags(flags: Sequence[str]) -> dict[str, str]:
    """``--label name=value`` pairs; raises BadDataError naming the bad flag."""
    out: dict[str, str] = {}
    for f in flags:
        name, sep, value = f.partition("=")
        if not sep:
            raise BadDataError(f"expected KEY=VALUE got '{f}'")
        if not name:  # any other UTF-8 name is valid, as in Prometheus 3
            raise BadDataError(f"empty label name in --label {f!r}")
        out[name] = value
    return out


@dataclass
class Samples:
    """Every sample of the file: ``series[i]`` owns ``labels[ids == i]``; arrays are N long."""

    labels: list[Labels]
    ids: I64
    ts: I64
    values: F64


def _pieces(data: bytes, n: int, size: int = PIECE_BYTES) -> Iterator[tuple[int, int, int]]:
    """``(start, end, first_line)`` byte ranges of whole lines of ``data[:n]``, cut before
    metadata where possible.

    Cutting just before a ``# HELP``/``# TYPE`` line keeps a metric family whole, so its
    type still applies to its samples; files without metadata are cut at any newline.
    """
    start, line = 0, 1
    while start < n:
        end = min(n, start + size)
        if end < n:
            meta = data.rfind(b"\n# ", start, end)
            nl = meta if meta > start else data.rfind(b"\n", start, end)
            if nl <= start:  # one line longer than a piece: take it whole
                nl = data.find(b"\n", end, n)
                nl = n - 1 if nl < 0 else nl
            end = nl + 1
        yield start, end, line
        line += data.count(b"\n", start, end)
        start = end


def _body_end(data: bytes) -> int:
    """Where the content before the final ``# EOF`` line ends (found in place: the file
    may be gigabytes); a file without that line is an error, as in promtool."""
    end = len(data)
    while end and data[end - 1] == 0x0A:
        end -= 1
    if not data.endswith(b"# EOF", 0, end) or (end > 5 and data[end - 6] != 0x0A):
        raise BadDataError("data does not end with # EOF")
    return end - len(b"# EOF")


def _parse_piece(body: bytes, first_line: int, cache: dict[object, Labels] | None = None) -> ParsedScrape:
    from signalfire.exposition import parse

    try:
        # promtool stores `_created` lines as series of their own; so do we, for the same blocks.
        return parse(body + b"# EOF\n", OPENMETRICS_TYPE, label_cache=cache, keep_created_series=True)
    except ExpositionParseError as err:
        raise ExpositionParseError(
            err.message,
            line=err.line + first_line - 1,
            column=err.column,
            expected=err.expected,
            found=err.found,
        ) from err


class _SeriesIndex:
    """Series text -> dense series id, with the custom ``--label`` values applied once per series.

    Lookups go by the parser's raw series text first (cheap bytes hashing); a new text is
    resolved by its final label set, so two spellings of one series, or two series made
    equal by ``--label``, share one id.
    """

    def __init__(self, custom: dict[str, str]) -> None:
        self.custom = custom
        self.by_key: dict[bytes, int] = {}
        self.by_labels: dict[Labels, int] = {}
        self.labels: list[Labels] = []

    def lookup(self, labels: Sequence[Labels], keys: Sequence[bytes]) -> I64:
        """Ids of the samples' series (a loop over the parser's own per-sample objects)."""
        by_key = self.by_key
        out = np.empty(len(labels), np.int64)
        for i, key in enumerate(keys):
            sid = by_key.get(key)
            if sid is None:
                final = self._with_custom(labels[i])
                sid = self.by_labels.get(final)
                if sid is None:
                    sid = self.by_labels[final] = len(self.labels)
                    self.labels.append(final)
                by_key[key] = sid
            out[i] = sid
        return out

    def _with_custom(self, ls: Labels) -> Labels:
        if not self.custom:
            return ls
        d = ls.to_dict()
        d.update(self.custom)
        return Labels.from_dict(d)


def read_samples(path: str | Path, custom: dict[str, str] | None = None, progress: bool = False) -> Samples:
    """Parse the whole file into flat arrays, one parser call per piece of the file."""
    data = Path(path).read_bytes()
    body_end = _body_end(data)
    index = _SeriesIndex(custom or {})
    # Series text -> labels, shared by all pieces: a backfill file repeats each series on
    # many lines, so each distinct series is split and sorted once, as a scrape cache does.
    label_cache: dict[object, Labels] = {}
    parts_ids: list[I64] = []
    parts_ts: list[I64] = []
    parts_v: list[F64] = []
    with tqdm(
        total=body_end, unit="B", unit_scale=True, desc="parse", disable=not progress, leave=False
    ) as bar:
        for start, end, first_line in _pieces(data, body_end):
            scrape = _parse_piece(data[start:end], first_line, label_cache)
            has_ts = np.asarray(scrape.has_timestamp, dtype=np.bool_)
            labels = scrape.labels
            if not has_ts.all():
                bad = labels[int(np.argmin(has_ts))]
                raise BadDataError(f"expected timestamp for series {bad}, got none")
            parts_ids.append(index.lookup(labels, scrape.keys))
            parts_ts.append(np.asarray(scrape.timestamps, dtype=np.int64))
            parts_v.append(np.asarray(scrape.values, dtype=np.float64))
            bar.update(end - start)
    ids = np.concatenate(parts_ids) if parts_ids else np.empty(0, np.int64)
    ts = np.concatenate(parts_ts) if parts_ts else np.empty(0, np.int64)
    values = np.concatenate(parts_v) if parts_v else np.empty(0, np.float64)
    return Samples(index.labels, ids, ts, values)


def plan_blocks(samples: Samples, block_ms: int) -> list[SeriesSet]:
    """One SeriesSet per non-empty block window ``[k*block_ms, (k+1)*block_ms)``, in time order.

    Steps: rank series by labels (blocks store series sorted); one lexsort by (window,
    rank, ts); drop exact repeats; reject a second value at one timestamp; split at window
    changes and, inside a window, at series changes to get the offsets.
    """
    if samples.ids.size == 0:
        return []
    order_labels = sorted(range(len(samples.labels)), key=lambda i: samples.labels[i])
    rank = np.empty(len(order_labels), np.int64)
    rank[np.asarray(order_labels, np.int64)] = np.arange(len(order_labels))
    win = np.floor_divide(samples.ts, block_ms)
    r = rank[samples.ids]
    order = np.lexsort((samples.ts, r, win))
    win, r, ts, vals = win[order], r[order], samples.ts[order], samples.values[order]
    # Same series and timestamp as the previous sample: a repeat (same bits) or a conflict.
    same = np.zeros(len(ts), bool)
    same[1:] = (r[1:] == r[:-1]) & (ts[1:] == ts[:-1])
    if same.any():
        bits = vals.view(np.uint64)
        conflict = same.copy()
        conflict[1:] &= bits[1:] != bits[:-1]
        if conflict.any():
            i = int(np.argmax(conflict))
            ls = samples.labels[order_labels[int(r[i])]]
            raise BadDataError(f"add sample: duplicate sample for timestamp {int(ts[i])} of series {ls}")
        keep = ~same
        win, r, ts, vals = win[keep], r[keep], ts[keep], vals[keep]
    win_starts = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
    win_ends = np.r_[win_starts[1:], len(win)]
    out: list[SeriesSet] = []
    for a, b in zip(win_starts.tolist(), win_ends.tolist()):  # loop over blocks; array work inside
        rr = r[a:b]
        starts = np.flatnonzero(np.r_[True, rr[1:] != rr[:-1]])
        offsets = np.r_[starts, b - a].astype(np.int64)
        labels = [samples.labels[order_labels[int(k)]] for k in rr[starts]]
        out.append(SeriesSet(labels, offsets, np.ascontiguousarray(ts[a:b]), np.ascontiguousarray(vals[a:b])))
    return out


def write_blocks(blocks: Sequence[SeriesSet], out_dir: Path, progress: bool = False) -> list[Path]:
    """Write each SeriesSet as one block directory in ``out_dir``; returns their paths."""
    from signalfire.tsdb import write_block

    paths = []
    for ss in tqdm(blocks, desc="write blocks", unit="block", disable=not progress, leave=False):
        mint = int(ss.ts.min())
        maxt = int(ss.ts.max()) + 1  # block ranges are half-open, as in Prometheus's meta.json
        meta = write_block(out_dir, ss, min_time=mint, max_time=maxt)
        paths.append(out_dir / meta.ulid)
    return paths


def backfill(
    path: str | Path,
    out_dir: str | Path,
    max_block_ms: int = 0,
    custom: dict[str, str] | None = None,
    progress: bool = False,
) -> list[Path]:
    """Parse ``path`` and write its samples as blocks into ``out_dir`` (created if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = read_samples(path, custom, progress)
    return write_blocks(plan_blocks(samples, compatible_block_duration(max_block_ms)), out, progress)


def cmd_create_blocks_from(args: argparse.Namespace) -> int:
    quiet = bool(getattr(args, "quiet", False))
    human = bool(getattr(args, "human_readable", False))
    try:
        max_block_ms = parse_duration_ms(args.max_block_duration)
        custom = parse_label_flags(args.label)
        paths = backfill(
            args.input_file, args.output_dir, max_block_ms, custom, progress=not quiet and sys.stderr.isatty()
        )
        if not quiet and paths:
            # promtool prints each block with a fresh tabwriter, the header only with the first.
            for i, p in enumerate(paths):
                sys.stdout.write(format_blocks([_blocks.block_info(p)], human, header=i == 0))
    except (SignalfireError, ValueError, OSError) as err:
        print(f"create blocks: {err}", file=sys.stderr)
        return FAILURE
    return SUCCESS
