"""Tailing the WAL from another component (Prometheus ``tsdb/wlog/watcher.go``).

Remote write reads what was committed from the log rather than from the appender, so a
slow receiver never delays an append and a restart resumes from the files. A
:class:`WALWatcher` remembers a position (segment, byte offset); each :meth:`poll`
returns the series definitions and samples committed since, whole records only: a
record still being written is left for the next poll.

At start the watcher learns every live series from the newest checkpoint and the
existing segments; with ``start_at_end`` (Prometheus's behaviour) it skips their samples
and delivers only what is committed from then on. When a checkpoint removes the segment
it was reading, it reloads series from that checkpoint and goes on with the next segment;
the samples of segments removed before it read them are lost to it, as in Prometheus
(the remote-write queue counts them as dropped).

Reads files only; safe to run in another thread or process than the writer.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from signalfire._types import F64, I64
from signalfire.errors import CorruptionError
from signalfire.labels import Labels
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.checkpoint import checkpoint_name, list_checkpoints
from signalfire.tsdb.wal.segment import HEADER, MAX_RECORD, list_segments, read_records, segment_name


@dataclass(slots=True)
class WatchBatch:
    """What one poll found: new series (ref -> labels) and samples in commit order."""

    series: dict[int, Labels] = field(default_factory=dict)
    refs: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    ts: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    values: F64 = field(default_factory=lambda: np.empty(0, np.float64))

    def __len__(self) -> int:
        return len(self.refs)


def _complete_records(path: str, offset: int) -> tuple[list[tuple[int, memoryview]], int]:
    """Whole records of ``path`` from ``offset``; stops quietly at an unfinished tail.

    A complete record whose checksum fails is real damage and raises CorruptionError.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    mv = memoryview(data)
    out: list[tuple[int, memoryview]] = []
    pos = 0
    while len(mv) - pos >= HEADER.size:
        rec_type, length, crc = HEADER.unpack_from(mv, pos)
        if rec_type == 0 or length > MAX_RECORD:
            raise CorruptionError(
                path, offset + pos, f"invalid record header (type {rec_type}, length {length})"
            )
        end = pos + HEADER.size + length
        if end > len(mv):
            break  # still being written
        payload = mv[pos + HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(mv[pos : pos + 8])) != crc:
            raise CorruptionError(path, offset + pos, "record checksum mismatch")
        out.append((rec_type, payload))
        pos = end
    return out, offset + pos


class WALWatcher:
    """Follows ``wal_dir``; see the module docstring."""

    def __init__(self, wal_dir: str, start_at_end: bool = True) -> None:
        self.dir = wal_dir
        self.series: dict[int, Labels] = {}
        self.segment = 0
        self.offset = 0
        self._load_checkpoint()
        segs = list_segments(wal_dir)
        if segs:
            self.segment = max(self.segment, segs[0])
        if start_at_end:
            self.poll()  # learn the series; drop the samples

    def _load_checkpoint(self) -> None:
        cps = list_checkpoints(self.dir)
        if not cps:
            return
        cp_dir = os.path.join(self.dir, checkpoint_name(cps[-1]))
        for seg in list_segments(cp_dir):
            for rec in read_records(os.path.join(cp_dir, segment_name(seg)), seg):
                if rec.type == records.REC_SERIES:
                    refs, labels = records.decode_series(rec.payload)
                    self.series.update(zip(refs, labels))
        if self.segment <= cps[-1]:
            self.segment, self.offset = cps[-1] + 1, 0

    def poll(self) -> WatchBatch:
        """Everything committed since the last poll (possibly nothing)."""
        batch = WatchBatch()
        cols: list[records.SamplesRecord] = []
        while True:
            path = os.path.join(self.dir, segment_name(self.segment))
            if not os.path.exists(path):
                segs = [s for s in list_segments(self.dir) if s > self.segment]
                if not segs:
                    if list_checkpoints(self.dir) and list_checkpoints(self.dir)[-1] >= self.segment:
                        self._load_checkpoint()  # our segment was checkpointed away
                        continue
                    break
                self.segment, self.offset = segs[0], 0
                continue
            recs, self.offset = _complete_records(path, self.offset)
            for rec_type, payload in recs:
                self._take(rec_type, payload, batch, cols)
            newer = [s for s in list_segments(self.dir) if s > self.segment]
            if not newer:
                break
            self.segment, self.offset = newer[0], 0  # the writer moved on: this one is done
        if cols:
            batch.refs = np.concatenate([c.refs for c in cols])
            batch.ts = np.concatenate([c.ts for c in cols])
            batch.values = np.concatenate([c.values for c in cols])
        return batch

    def _take(
        self, rec_type: int, payload: memoryview, batch: WatchBatch, cols: list[records.SamplesRecord]
    ) -> None:
        if rec_type == records.REC_COMMIT:
            refs, labels, samples = records.decode_commit(payload)
            new = dict(zip(refs, labels))
            self.series.update(new)
            batch.series.update(new)
            cols.append(samples)
        elif rec_type == records.REC_SERIES:
            refs, labels = records.decode_series(payload)
            self.series.update(zip(refs, labels))
            batch.series.update(zip(refs, labels))
        elif rec_type == records.REC_SAMPLES:
            cols.append(records.decode_samples(payload))
