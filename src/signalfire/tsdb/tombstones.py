"""Tombstones: deleted time intervals per series of a block, and their file.

A block is immutable, so deleting series (the admin API's ``delete_series``) only
records intervals ``[mint, maxt]`` (ms, both ends inclusive, as Prometheus) per series
id; queriers hide the samples inside them and compaction drops them for good.
Byte layout of the file: docs/format/tombstones.md.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from signalfire._types import I64, Bool
from signalfire.errors import CorruptionError
from signalfire.util.files import fsync_dir
from signalfire.util.ragged import series_index

FILE_NAME = "tombstones"
MAGIC = b"SFTB"
VERSION = 1
HEADER = struct.Struct("<4sBxxxQ")  # magic, version, number of intervals


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping intervals; touching ones (``b + 1 == c``) are joined."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class Tombstones:
    """Deleted intervals per series id.

    Writers (the owning block) are serialised by the caller; readers may run
    concurrently with a writer, since :meth:`add` swaps in a new mapping.
    """

    def __init__(self, intervals: dict[int, list[tuple[int, int]]] | None = None) -> None:
        self._iv: dict[int, list[tuple[int, int]]] = {}
        for ref, ivs in (intervals or {}).items():
            if ivs:
                self._iv[int(ref)] = merge_intervals(list(ivs))

    def __len__(self) -> int:
        """Number of intervals (Prometheus's ``numTombstones``)."""
        return sum(len(v) for v in self._iv.values())

    def __bool__(self) -> bool:
        return bool(self._iv)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tombstones) and self._iv == other._iv

    def add(self, refs: I64, mint: int, maxt: int) -> None:
        """Delete ``[mint, maxt]`` from every series in ``refs``."""
        if mint > maxt:
            return
        # Copy on write: a querier reading concurrently keeps the old, consistent dict.
        iv = dict(self._iv)
        for ref in np.asarray(refs, np.int64).tolist():
            iv[ref] = merge_intervals([*iv.get(ref, []), (mint, maxt)])
        self._iv = iv

    def get(self, ref: int) -> list[tuple[int, int]]:
        return list(self._iv.get(int(ref), []))

    def refs(self) -> I64:
        return np.array(sorted(self._iv), np.int64)

    def items(self) -> list[tuple[int, list[tuple[int, int]]]]:
        return sorted((k, list(v)) for k, v in self._iv.items())

    def deleted_mask(self, refs: I64, offsets: I64, ts: I64) -> Bool:
        """Mask of the samples of a ragged set that fall in a deleted interval.

        Series ``i`` of the ragged arrays is block series ``refs[i]`` and owns
        ``ts[offsets[i]:offsets[i+1]]``. Vectorised over samples; the only loop is over
        the k-th interval of each series (k < the most intervals any series has).
        """
        mask = np.zeros(len(ts), np.bool_)
        if not self._iv:
            return mask
        iv_ref, iv_lo, iv_hi = self._flat()
        refs = np.asarray(refs, np.int64)
        first = np.searchsorted(iv_ref, refs, "left")
        count = np.searchsorted(iv_ref, refs, "right") - first
        owner = series_index(offsets)
        for k in range(int(count.max()) if len(count) else 0):
            has = count > k
            j = np.where(has, first + k, 0)
            lo = np.where(has, iv_lo[j], 1)  # an empty interval where there is none
            hi = np.where(has, iv_hi[j], 0)
            mask |= (ts >= lo[owner]) & (ts <= hi[owner])
        return mask

    def _flat(self) -> tuple[I64, I64, I64]:
        """All intervals as arrays sorted by (ref, mint)."""
        items = self.items()
        ref = np.array([r for r, ivs in items for _ in ivs], np.int64)
        lo = np.array([a for _, ivs in items for a, _ in ivs], np.int64)
        hi = np.array([b for _, ivs in items for _, b in ivs], np.int64)
        return ref, lo, hi


def write_tombstones(dir_: Path, tombstones: Tombstones) -> int:
    """Atomically replace ``dir_/tombstones``; returns the file size."""
    items = tombstones.items()
    refs = np.array([r for r, ivs in items for _ in ivs], np.int64)
    mints = np.array([a for _, ivs in items for a, _ in ivs], np.int64)
    maxts = np.array([b for _, ivs in items for _, b in ivs], np.int64)
    body = HEADER.pack(MAGIC, VERSION, len(refs)) + b"".join(
        a.astype("<i8").tobytes() for a in (refs, mints, maxts)
    )
    data = body + struct.pack("<I", zlib.crc32(body))
    tmp = dir_ / (FILE_NAME + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dir_ / FILE_NAME)
    fsync_dir(dir_)
    return len(data)


def read_tombstones(dir_: Path) -> Tombstones:
    """Read ``dir_/tombstones``; a missing file means no tombstones."""
    path = dir_ / FILE_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Tombstones()
    p = str(path)
    if len(data) < HEADER.size + 4:
        raise CorruptionError(p, len(data), "tombstones file shorter than its header")
    magic, version, n = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptionError(p, 0, f"bad magic {magic!r}")
    if version != VERSION:
        raise CorruptionError(p, 4, f"unsupported tombstones format version {version}")
    want = HEADER.size + 24 * n + 4
    if len(data) != want:
        raise CorruptionError(p, min(len(data), want), f"tombstones file is {len(data)} bytes, want {want}")
    (crc,) = struct.unpack_from("<I", data, want - 4)
    if zlib.crc32(data[: want - 4]) != crc:
        raise CorruptionError(p, want - 4, "tombstones checksum mismatch")
    arr = np.frombuffer(data, "<i8", count=3 * n, offset=HEADER.size).reshape(3, n)
    ivs: dict[int, list[tuple[int, int]]] = {}
    for r, a, b in zip(arr[0].tolist(), arr[1].tolist(), arr[2].tolist()):
        ivs.setdefault(r, []).append((a, b))
    return Tombstones(ivs)
