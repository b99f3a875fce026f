"""Slow, obviously correct twin of WAL replay, for the damage tests.

``build`` writes a DB whose WAL has a checkpoint and many segments after it, with a new
series defined in every commit and used again by the next one, so that losing a commit
leaves the next commit's sample for it without its series record (an unknown reference).
``WALFiles`` reads every record of the pristine WAL; ``expect`` replays them in plain
Python, skipping the records a damage destroyed, and says what the DB must hold and what
replay must report as dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from signalfire._types import MAX_TIME, MIN_TIME
from signalfire.labels import Labels, Matcher
from signalfire.tsdb import DB, DBOptions, open_db
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.checkpoint import checkpoint_name, list_checkpoints
from signalfire.tsdb.wal.segment import list_segments, read_records, segment_name

OPTS = DBOptions(fsync="never", wal_segment_size=1200)
STEP = 15_000
COMMITS = 60
CHECKPOINT_AT = 20  # commit after which the head is truncated and checkpointed
BASE = 5  # series present in every commit

Dump = dict[str, tuple[list[int], list[int]]]  # label "i" -> (ts, value bits)
Key = tuple[str, int]  # (file relative to the WAL dir, record offset)


def _labels(names: list[str]) -> list[Labels]:
    return [Labels.from_strings("__name__", "m", "i", n) for n in names]


def dump(db: DB) -> Dump:
    q = db.querier(MIN_TIME, MAX_TIME)
    ss = q.select([Matcher.equal("__name__", "m")])
    q.close()
    return {
        str(ls.get("i")): (ss.ts[a:b].tolist(), ss.values[a:b].view(np.uint64).tolist())
        for ls, a, b in zip(ss.labels, ss.offsets[:-1], ss.offsets[1:])
    }


def build(path: str) -> Dump:
    """Write the DB at ``path``, close it, return everything it holds."""
    with open_db(path, OPTS) as db:
        for k in range(COMMITS):
            names = [str(i) for i in range(BASE)] + [f"n{k}"] + ([f"n{k - 1}"] if k else [])
            with db.appender() as app:
                refs = app.refs(_labels(names))
                app.append_batch(refs, k * STEP, np.arange(len(names), dtype=np.float64) + k / 7)
            if k == CHECKPOINT_AT:
                db.truncate_head(3 * STEP)
        return dump(db)


@dataclass
class Rec:
    key: Key
    type: int
    payload: bytes
    end: int  # offset just past the record


@dataclass
class WALFiles:
    """Every record of a WAL directory, in replay order."""

    dir: str
    checkpoint: int
    segments: list[int]  # above the checkpoint
    recs: dict[str, list[Rec]] = field(default_factory=dict)  # file -> records

    @classmethod
    def read(cls, wal_dir: str) -> WALFiles:
        cp = list_checkpoints(wal_dir)[-1]
        segs = [s for s in list_segments(wal_dir) if s > cp]
        out = cls(wal_dir, cp, segs)
        for name in [f"{checkpoint_name(cp)}/{segment_name(0)}"] + [segment_name(s) for s in segs]:
            path = os.path.join(wal_dir, name)
            out.recs[name] = [
                Rec((name, r.offset), r.type, bytes(r.payload), r.offset + 12 + len(r.payload))
                for r in read_records(path)
            ]
        return out

    @property
    def checkpoint_file(self) -> str:
        return f"{checkpoint_name(self.checkpoint)}/{segment_name(0)}"

    def keys(self, name: str, from_offset: int = 0) -> set[Key]:
        return {r.key for r in self.recs[name] if r.key[1] >= from_offset}


@dataclass
class Expected:
    dump: Dump
    unknown_samples: int
    unknown_series: int
    unknown_mint: int
    unknown_maxt: int
    lost_samples: list[int]  # timestamps of the samples in the lost records


def expect(files: WALFiles, lost: set[Key]) -> Expected:
    """Replay every record not in ``lost``; samples of refs without a series record are
    unknown references."""
    labels: dict[int, str] = {}
    out: dict[str, tuple[list[int], list[int]]] = {}
    unknown: list[tuple[int, int]] = []
    lost_ts: list[int] = []
    for recs in files.recs.values():
        for r in recs:
            samples = None
            if r.type == records.REC_COMMIT:
                refs, ls, samples = records.decode_commit(r.payload)
            elif r.type == records.REC_SERIES:
                refs, ls = records.decode_series(r.payload)
            elif r.type == records.REC_SAMPLES:
                refs, ls, samples = [], [], records.decode_samples(r.payload)
            else:
                continue
            if r.key in lost:
                lost_ts += [] if samples is None else samples.ts.tolist()
                continue
            labels.update((ref, str(lab.get("i"))) for ref, lab in zip(refs, ls))
            if samples is None:
                continue
            for ref, t, v in zip(samples.refs.tolist(), samples.ts.tolist(), samples.values.tolist()):
                if ref not in labels:
                    unknown.append((ref, t))
                    continue
                ts, vs = out.setdefault(labels[ref], ([], []))
                ts.append(t)
                vs.append(int(np.float64(v).view(np.uint64)))
    return Expected(
        out,
        len(unknown),
        len({u[0] for u in unknown}),
        min((u[1] for u in unknown), default=MAX_TIME),
        max((u[1] for u in unknown), default=MIN_TIME),
        lost_ts,
    )
