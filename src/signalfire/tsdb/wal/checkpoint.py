"""WAL checkpoints: the head's whole state as of one segment, so older segments can go.

``checkpoint.NNNNNNNN`` holds one segment file ``00000000`` with series records for every
live series and samples records for every sample the head still holds; replay reads it,
then segments numbered above NNNNNNNN. Prometheus builds its checkpoint by filtering old
segments; ours is written straight from the head, which at that moment holds exactly the
state of those segments (the caller holds the head lock and has just rotated the WAL).

Written as ``checkpoint.N.tmp`` then renamed, so a crash leaves either no checkpoint or a
whole one; leftovers are removed on open. The file ends with an end record holding N, so
a checkpoint that lost its end (or is empty) is told apart from one of an empty head.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from signalfire._types import I64, MAX_TIME, MIN_TIME
from signalfire.tsdb.head import Head, Samples
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.segment import frame, list_numbered, segment_name
from signalfire.util.files import fsync_dir

_CHECKPOINT_RE = re.compile(r"^checkpoint\.(\d{8})$")
_SERIES_PER_RECORD = 50_000
_SAMPLES_PER_RECORD = 2_000_000


def checkpoint_name(index: int) -> str:
    return f"checkpoint.{index:08d}"


def checkpoint_index(name: str) -> int | None:
    """The number of a checkpoint directory name, or None for any other name."""
    m = _CHECKPOINT_RE.match(name)
    return int(m.group(1)) if m else None


def list_checkpoints(wal_dir: str) -> list[int]:
    """Indexes of the checkpoint directories in ``wal_dir``, ascending."""
    return list_numbered(wal_dir, checkpoint_index)


def is_temporary(name: str) -> bool:
    return name.startswith("checkpoint.") and name.endswith(".tmp")


def remove_temporaries(wal_dir: str) -> list[str]:
    """Delete half-written checkpoints left by a crash; returns their names."""
    removed = []
    for name in sorted(os.listdir(wal_dir)):
        if is_temporary(name):
            path = os.path.join(wal_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(name)
    return removed


def capture(head: Head) -> Iterable[bytes]:
    """The head's state as framed records (series, then samples); the caller holds the
    head lock. Cheap under the lock: cached series encodings are joined, slabs copied and
    the (immutable) cut chunk groups picked; the samples frames are decoded and encoded
    only when iterated, so that and the slow part (writing, fsync) run after the lock is
    released."""
    refs = head.live_refs()
    frames = []
    for a in range(0, len(refs), _SERIES_PER_RECORD):
        entries = head.series_entries(refs[a : a + _SERIES_PER_RECORD])
        frames.append(frame(records.REC_SERIES, records.encode_series_entries(entries)))
    return itertools.chain(frames, _sample_frames(refs, head.samples_later(refs, MIN_TIME, MAX_TIME)))


def _sample_frames(refs: I64, read: Callable[[], Samples]) -> Iterator[bytes]:
    offsets, ts, values, sts = read()  # decodes cut chunks
    owners = np.repeat(refs, np.diff(offsets))
    for a in range(0, len(ts), _SAMPLES_PER_RECORD):
        sl = slice(a, a + _SAMPLES_PER_RECORD)
        st = sts[sl] if sts is not None else None
        yield frame(records.REC_SAMPLES, records.encode_samples(owners[sl], ts[sl], values[sl], st))


def write_checkpoint(wal_dir: str, index: int, frames: Iterable[bytes], sync: bool = True) -> str:
    """Write captured ``frames`` as ``checkpoint.<index>`` (tmp dir, fsync, rename)."""
    final = os.path.join(wal_dir, checkpoint_name(index))
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, segment_name(0)), "wb") as f:
        for fr in frames:
            f.write(fr)
        f.write(frame(records.REC_END, records.encode_end(index)))
        f.flush()
        if sync:
            os.fsync(f.fileno())
    if os.path.exists(final):
        shutil.rmtree(final)
    os.rename(tmp, final)
    if sync:
        fsync_dir(wal_dir)
    return final


def delete_checkpoints_before(wal_dir: str, index: int) -> None:
    for cp in list_checkpoints(wal_dir):
        if cp < index:
            shutil.rmtree(os.path.join(wal_dir, checkpoint_name(cp)), ignore_errors=True)
