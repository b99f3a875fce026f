"""Replaying the WAL into the head on open (Prometheus ``head_wal.go``).

Order: the newest checkpoint, then every segment numbered above it. Samples of
consecutive records are gathered and applied in large batches (one scatter per ~1M
samples); a tombstone record first flushes what is pending, so deletions apply to exactly
the samples logged before them.

A torn or corrupt record raises CorruptionError(segment path, offset, reason). With
``repair`` (the default on open, as in Prometheus) the damaged segment is cut at that
offset, later segments are removed, and replay finishes with what was intact: only the
damaged record and what followed it are lost. A damaged checkpoint is never repaired.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from signalfire._types import F64, I64
from signalfire.errors import CorruptionError
from signalfire.labels import Labels
from signalfire.tsdb.head import Head
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.checkpoint import (
    checkpoint_name,
    list_checkpoints,
    remove_temporaries,
)
from signalfire.tsdb.wal.segment import Record, list_segments, read_records, repair_segment, segment_name

log = logging.getLogger(__name__)
_FLUSH_SAMPLES = 1 << 20


@dataclass(slots=True)
class ReplayStats:
    checkpoint: int = -1
    segments: int = 0
    records: int = 0
    samples: int = 0
    unknown_refs: int = 0
    repaired: list[CorruptionError] = field(default_factory=list)
    bytes_dropped: int = 0


class _Replayer:
    def __init__(self, head: Head, stats: ReplayStats) -> None:
        self.head = head
        self.stats = stats
        self.pending: list[tuple[I64, I64, F64, I64 | None]] = []
        self.pending_n = 0
        self.alias: dict[int, int] = {}

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

    def record(self, rec: Record, path: str) -> None:
        try:
            if rec.type == records.REC_COMMIT:
                series_refs, labels, samples = records.decode_commit(rec.payload)
                self.series(series_refs, labels)
                self.add(samples)
            elif rec.type == records.REC_SERIES:
                self.series(*records.decode_series(rec.payload))
            elif rec.type == records.REC_SAMPLES:
                self.add(records.decode_samples(rec.payload))
            elif rec.type == records.REC_TOMBSTONES:
                tomb = records.decode_tombstones(rec.payload)
                self.flush()
                dead = self.map_refs(tomb.refs)
                self.head.delete(dead[self._known(dead)], tomb.mint, tomb.maxt)
            else:
                raise records.RecordDecodeError(f"unknown record type {rec.type}")
        except records.RecordDecodeError as err:
            raise CorruptionError(path, rec.offset, str(err)) from err
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
        if not ok.all():
            self.stats.unknown_refs += int(len(ok) - ok.sum())
            refs, ts, values = refs[ok], ts[ok], values[ok]
            st = st[ok] if st is not None else None
        self.pending.append((refs, ts, values, st))
        self.pending_n += len(refs)
        if self.pending_n >= _FLUSH_SAMPLES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        p = self.pending
        refs = np.concatenate([x[0] for x in p])
        ts = np.concatenate([x[1] for x in p])
        values = np.concatenate([x[2] for x in p])
        st = None
        if any(x[3] is not None for x in p):
            st = np.concatenate([x[3] if x[3] is not None else np.zeros(len(x[0]), np.int64) for x in p])
        self.head.apply(refs, ts, values, st)
        self.head.logged[refs] = True
        self.stats.samples += len(refs)
        self.pending, self.pending_n = [], 0


def replay(wal_dir: str, head: Head, repair: bool = True) -> ReplayStats:
    """Load the checkpoint and segments of ``wal_dir`` into ``head``."""
    stats = ReplayStats()
    if not os.path.isdir(wal_dir):
        return stats
    remove_temporaries(wal_dir)
    rp = _Replayer(head, stats)
    cps = list_checkpoints(wal_dir)
    first_segment = 0
    if cps:
        stats.checkpoint = cps[-1]
        cp_dir = os.path.join(wal_dir, checkpoint_name(cps[-1]))
        for seg in list_segments(cp_dir):
            path = os.path.join(cp_dir, segment_name(seg))
            for rec in read_records(path, seg):
                rp.record(rec, path)
        first_segment = cps[-1] + 1
    for seg in list_segments(wal_dir):
        if seg < first_segment:
            os.remove(os.path.join(wal_dir, segment_name(seg)))  # covered by the checkpoint
            continue
        path = os.path.join(wal_dir, segment_name(seg))
        stats.segments += 1
        try:
            for rec in read_records(path, seg):
                rp.record(rec, path)
        except CorruptionError as err:
            if not repair:
                raise
            log.warning("repairing WAL: %s", err)
            stats.repaired.append(err)
            stats.bytes_dropped += repair_segment(wal_dir, err)
            break
    rp.flush()
    return stats
