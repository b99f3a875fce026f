"""Replaying the WAL into the head on open (Prometheus ``head_wal.go``).

Order: the newest checkpoint, then every segment numbered above it. Samples of
consecutive records are gathered and applied in large batches (one scatter per ~1M
samples); a tombstone record first flushes what is pending, so deletions apply to exactly
the samples logged before them.

Damage is never silent (the table is in ``docs/storage.md``). Before anything is read the
directory is checked: a missing file (a gap in the segment numbers, the first segment
after the checkpoint, the checkpoint itself, a checkpoint's file), a foreign or renamed
entry, or a segment whose end record names another number is refused with a
CorruptionError naming the file, with or without ``repair``, as Prometheus refuses
"segments are not sequential". A checkpoint that is damaged, empty or lacks its end
record is refused too. A segment with a torn or corrupt record, or a closed segment that
lost its end record (emptied, truncated), is an error without ``repair``; with it (the
default on open, as in Prometheus) the segment is cut at the damage and replay goes on
with the later segments, which are whole files of their own. Each repair is logged with
the bytes dropped and the time range whose samples may be gone; samples whose series
record was in the lost part cannot be placed and are dropped, counted and logged with
their series count and time range (Prometheus's "unknown series references").
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from signalfire._types import I64, MAX_TIME, MIN_TIME
from signalfire.errors import CorruptionError
from signalfire.labels import Labels
from signalfire.tsdb.head import Head, SampleBatch, join_batches
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.checkpoint import (
    checkpoint_index,
    checkpoint_name,
    is_temporary,
    remove_temporaries,
)
from signalfire.tsdb.wal.segment import (
    list_segments,
    read_records,
    repair_segment,
    segment_index,
    segment_name,
)

log = logging.getLogger(__name__)
_FLUSH_SAMPLES = 1 << 20


@dataclass(slots=True)
class ReplayStats:
    """What replay read, and what it had to drop (all zero for an undamaged WAL)."""

    checkpoint: int = -1
    segments: int = 0
    records: int = 0
    samples: int = 0
    #: Samples dropped because the record defining their series was lost.
    unknown_refs: int = 0
    #: Distinct series references among those samples.
    unknown_series: int = 0
    #: One CorruptionError per repair (cut segment), naming the file and offset.
    repaired: list[CorruptionError] = field(default_factory=list)
    bytes_dropped: int = 0
    #: Time range whose samples may be lost: the unknown-reference samples, and for each
    #: repair the newest timestamp replayed before it to the oldest replayed after it.
    #: ``lost_min_time > lost_max_time`` (MAX_TIME, MIN_TIME) when nothing was lost.
    lost_min_time: int = MAX_TIME
    lost_max_time: int = MIN_TIME
    #: Leftover ``checkpoint.N.tmp`` entries removed (a crash while checkpointing).
    removed_temporaries: list[str] = field(default_factory=list)

    def counters(self) -> dict[str, int]:
        """The figures ``DB.stats()`` reports (lost times 0 when nothing was lost)."""
        lost = self.lost_min_time <= self.lost_max_time
        return {
            "wal_repairs_total": len(self.repaired),
            "wal_repair_dropped_bytes_total": self.bytes_dropped,
            "wal_replay_unknown_refs_total": self.unknown_refs,
            "wal_replay_unknown_series_total": self.unknown_series,
            "wal_replay_lost_min_time": self.lost_min_time if lost else 0,
            "wal_replay_lost_max_time": self.lost_max_time if lost else 0,
        }

    def lose(self, mint: int, maxt: int) -> None:
        self.lost_min_time = min(self.lost_min_time, mint)
        self.lost_max_time = max(self.lost_max_time, maxt)


@dataclass(slots=True)
class _Repair:
    error: CorruptionError
    bytes_dropped: int
    before: int | None  # newest sample timestamp replayed before the damage
    after: int | None = None  # oldest replayed after it


class _Replayer:
    def __init__(self, head: Head, stats: ReplayStats) -> None:
        self.head = head
        self.stats = stats
        self.pending: list[SampleBatch] = []
        self.pending_n = 0
        self.alias: dict[int, int] = {}
        self.end: int | None = None  # number in the end record, if it was the last one read
        self.max_ts: int | None = None  # newest timestamp read so far
        self.repairs: list[_Repair] = []
        self.unknown: list[I64] = []  # refs of dropped samples
        self.unknown_mint, self.unknown_maxt = MAX_TIME, MIN_TIME

    def series(self, refs: list[int], labels: list[Labels]) -> None:
        for ref in refs:
            self.alias.pop(ref, None)  # a ref defined again is itself again
        self.alias.update(self.head.set_series(refs, labels))

    def map_refs(self, refs: I64) -> I64:
        if not self.alias:
            return refs
        src = np.fromiter(self.alias.keys(), np.int64, len(self.alias))
        dst = np.fromiter(self.alias.values(), np.int64, len(self.alias))
        o = np.argsort(src)
        src, dst = src[o], dst[o]
        i = np.minimum(np.searchsorted(src, refs), len(src) - 1)
        return np.where(src[i] == refs, dst[i], refs)

    def read_file(self, path: str, seg: int) -> int | None:
        """Replay one file; returns the number in its end record if that came last."""
        self.end = None
        for rec in read_records(path, seg):
            self.record(rec.type, rec.payload, path, rec.offset)
        return self.end

    def record(self, rec_type: int, payload: memoryview, path: str, offset: int) -> None:
        self.end = None
        try:
            if rec_type == records.REC_COMMIT:
                series_refs, labels, samples = records.decode_commit(payload)
                self.series(series_refs, labels)
                self.add(samples)
            elif rec_type == records.REC_SERIES:
                self.series(*records.decode_series(payload))
            elif rec_type == records.REC_SAMPLES:
                self.add(records.decode_samples(payload))
            elif rec_type == records.REC_TOMBSTONES:
                tomb = records.decode_tombstones(payload)
                self.flush()
                dead = self.map_refs(tomb.refs)
                self.head.delete(dead[self._known(dead)], tomb.mint, tomb.maxt)
            elif rec_type == records.REC_END:
                self.end = records.decode_end(payload)
            else:
                raise records.RecordDecodeError(f"unknown record type {rec_type}")
        except records.RecordDecodeError as err:
            raise CorruptionError(path, offset, str(err)) from err
        self.stats.records += 1

    def _known(self, refs: I64) -> np.ndarray:
        head = self.head
        ok = (refs >= 0) & (refs < len(head._labels))
        ok[ok] = head.alive[refs[ok]]
        return ok

    def add(self, s: records.SamplesRecord) -> None:
        refs = self.map_refs(s.refs)
        ok = self._known(refs)
        ts, values, st = s.ts, s.values, s.st
        if len(ts):
            hi = int(ts.max())
            self.max_ts = hi if self.max_ts is None else max(self.max_ts, hi)
            if self.repairs and self.repairs[-1].after is None:
                lo = int(ts.min())
                for r in self.repairs:
                    if r.after is None:
                        r.after = lo
        if not ok.all():
            bad = ~ok
            self.stats.unknown_refs += int(bad.sum())
            self.unknown.append(refs[bad])
            self.unknown_mint = min(self.unknown_mint, int(ts[bad].min()))
            self.unknown_maxt = max(self.unknown_maxt, int(ts[bad].max()))
            self.stats.lose(self.unknown_mint, self.unknown_maxt)
            refs, ts, values = refs[ok], ts[ok], values[ok]
            st = st[ok] if st is not None else None
        self.pending.append(SampleBatch(refs, ts, values, st))
        self.pending_n += len(refs)
        if self.pending_n >= _FLUSH_SAMPLES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        refs, ts, values, st = join_batches(self.pending)
        self.head.apply(refs, ts, values, st)
        self.head.logged[refs] = True
        self.stats.samples += len(refs)
        self.pending, self.pending_n = [], 0

    def repaired(self, err: CorruptionError, dropped: int) -> None:
        self.stats.repaired.append(err)
        self.stats.bytes_dropped += dropped
        self.repairs.append(_Repair(err, dropped, self.max_ts))

    def report(self) -> None:
        """Log what was dropped (once, at the end, when the time bounds are known)."""
        st = self.stats
        for r in self.repairs:
            lo, hi = r.before, r.after if r.after is not None else r.before
            if lo is not None and hi is not None:
                st.lose(min(lo, hi), max(lo, hi))
            log.warning(
                "repaired WAL: %s: dropped %d bytes; samples logged after t=%s and before t=%s may be lost",
                r.error,
                r.bytes_dropped,
                "-" if r.before is None else r.before,
                "the end of the log" if r.after is None else r.after,
            )
        if self.unknown:
            st.unknown_series = len(np.unique(np.concatenate(self.unknown)))
            log.warning(
                "unknown series references in the WAL: dropped %d samples of %d series whose series "
                "record was lost, t=%d..%d",
                st.unknown_refs,
                st.unknown_series,
                self.unknown_mint,
                self.unknown_maxt,
            )


def check_layout(wal_dir: str) -> tuple[int, list[int]]:
    """The newest checkpoint (-1 if none) and the segments of ``wal_dir``, ascending.

    Raises CorruptionError naming the file when one is missing (a gap in the segment
    numbers, the first segment after the checkpoint, the checkpoint that must precede a
    first segment above 0) or when the directory holds an entry that is neither a segment,
    a checkpoint nor a checkpoint's leftover ``.tmp`` (a renamed segment would otherwise be
    skipped unnoticed). Reads names only.
    """
    segs: list[int] = []
    cps: list[int] = []
    for name in sorted(os.listdir(wal_dir)):
        path = os.path.join(wal_dir, name)
        seg, cp = segment_index(name), checkpoint_index(name)
        if seg is not None and os.path.isfile(path):
            segs.append(seg)
        elif cp is not None and os.path.isdir(path):
            cps.append(cp)
        elif not is_temporary(name):
            raise CorruptionError(
                path, 0, "unexpected entry in the WAL directory (a renamed segment?); move it away to open"
            )
    segs.sort()
    last_cp = max(cps, default=-1)
    live = [s for s in segs if s > last_cp]
    if last_cp >= 0 and (not live or live[0] != last_cp + 1):
        after = f"segment {live[0]}" if live else "no segment"
        raise CorruptionError(
            os.path.join(wal_dir, segment_name(last_cp + 1)),
            0,
            f"missing: {checkpoint_name(last_cp)} is followed by {after}",
        )
    if last_cp < 0 and live and live[0] != 0:
        raise CorruptionError(
            os.path.join(wal_dir, checkpoint_name(live[0] - 1)),
            0,
            f"missing: the WAL starts at segment {live[0]} without a checkpoint of the segments before it",
        )
    for a, b in itertools.pairwise(live):
        if b != a + 1:
            raise CorruptionError(
                os.path.join(wal_dir, segment_name(a + 1)),
                0,
                f"missing: segments are not sequential ({segment_name(a)} is followed by {segment_name(b)})",
            )
    return last_cp, segs


def _replay_checkpoint(wal_dir: str, cp: int, rp: _Replayer) -> None:
    """Replay ``checkpoint.<cp>``; any damage is refused (it holds the whole head)."""
    cp_dir = os.path.join(wal_dir, checkpoint_name(cp))
    files = list_segments(cp_dir)
    if not files:
        raise CorruptionError(os.path.join(cp_dir, segment_name(0)), 0, "missing: empty checkpoint directory")
    for i, seg in enumerate(files):
        path = os.path.join(cp_dir, segment_name(seg))
        end = rp.read_file(path, seg)
        if i == len(files) - 1 and end != cp:
            what = "no end record (emptied or truncated)" if end is None else f"end record says {end}"
            raise CorruptionError(path, os.path.getsize(path), f"checkpoint {cp}: {what}")


def replay(wal_dir: str, head: Head, repair: bool = True) -> ReplayStats:
    """Load the checkpoint and segments of ``wal_dir`` into ``head``."""
    stats = ReplayStats()
    if not os.path.isdir(wal_dir):
        return stats
    cp, segs = check_layout(wal_dir)
    rp = _Replayer(head, stats)
    if cp >= 0:
        stats.checkpoint = cp
        _replay_checkpoint(wal_dir, cp, rp)
    # Only now, so that a refused open leaves the directory exactly as it found it.
    for name in remove_temporaries(wal_dir):
        log.warning("removed %s, left by an interrupted checkpoint", os.path.join(wal_dir, name))
        stats.removed_temporaries.append(name)
    live = [s for s in segs if s > cp]
    for seg in segs:
        if seg <= cp:
            os.remove(os.path.join(wal_dir, segment_name(seg)))  # covered by the checkpoint
    for seg in live:
        path = os.path.join(wal_dir, segment_name(seg))
        last = seg == live[-1]
        stats.segments += 1
        try:
            end = rp.read_file(path, seg)
            if end is None and not last:
                raise CorruptionError(
                    path, os.path.getsize(path), "closed segment has no end record (emptied or truncated)"
                )
        except CorruptionError as err:
            if not repair:
                raise
            rp.repaired(err, repair_segment(wal_dir, err, last))
            continue
        if end is not None and end != seg:
            raise CorruptionError(
                path, os.path.getsize(path), f"end record of segment {end}: renamed or out of sequence"
            )
        if last and end is not None:
            # A sealed newest segment: the next one was deleted, or (rarely) the process
            # died between sealing and creating it. Nothing to cut; whatever it held is gone.
            gone = CorruptionError(
                os.path.join(wal_dir, segment_name(seg + 1)),
                0,
                f"missing: segment {segment_name(seg)} is sealed but nothing follows it "
                "(deleted, or a crash while rotating)",
            )
            if not repair:
                raise gone
            rp.repaired(gone, 0)
    rp.flush()
    rp.report()
    return stats
