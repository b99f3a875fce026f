"""WAL record payloads, encoded and decoded a whole column at a time.

The byte layout is in ``docs/format/wal.md``. A record is framed by ``segment.py`` (type,
length, CRC); this module only builds and parses payloads. Samples travel as three (or four)
little-endian numpy columns written with ``tobytes`` and read back with ``frombuffer``, so a
commit of a million samples costs a few memory copies, not a million Python operations.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from signalfire._types import F64, I64
from signalfire.labels import Labels

#: Record types (one byte in the frame header).
REC_SERIES = 1
REC_SAMPLES = 2
REC_TOMBSTONES = 3
REC_COMMIT = 4
#: Last record of a closed segment and of a checkpoint; its payload is the file's number.
#: Without it a file that lost whole records at its end (or all of them: 0 bytes) would
#: read as complete. The newest segment has none while it is written to.
REC_END = 5

_U32 = struct.Struct("<I")
_SERIES_HEAD = struct.Struct("<qI")  # ref, number of label pairs
_SAMPLES_HEAD = struct.Struct("<IB")  # number of samples, flags
_TOMB_HEAD = struct.Struct("<Iqq")  # number of refs, mint, maxt
_COMMIT_HEAD = struct.Struct("<II")  # series payload length, samples payload length
_END = struct.Struct("<q")  # segment or checkpoint number
_FLAG_ST = 1


class RecordDecodeError(ValueError):
    """A payload whose CRC matched but whose contents do not parse (a bug or a foreign file)."""


@dataclass(frozen=True, slots=True)
class SamplesRecord:
    """Accepted samples of one commit, in commit order. Arrays are read-only views."""

    refs: I64
    ts: I64
    values: F64
    st: I64 | None = None


@dataclass(frozen=True, slots=True)
class TombstonesRecord:
    refs: I64
    mint: int
    maxt: int


def series_entry(ref: int, labels: Labels) -> bytes:
    """One series of a series payload: ``ref, n, (len, name, len, value) * n``.

    The head caches this per series (built once, when the series is created), so commits
    and checkpoints only join bytes.
    """
    parts = [_SERIES_HEAD.pack(int(ref), len(labels))]
    for name, value in labels:
        nb = name.encode("utf-8", "surrogateescape")
        vb = value.encode("utf-8", "surrogateescape")
        parts.append(_U32.pack(len(nb)))
        parts.append(nb)
        parts.append(_U32.pack(len(vb)))
        parts.append(vb)
    return b"".join(parts)


def encode_series_entries(entries: Sequence[bytes]) -> bytes:
    """A series payload from :func:`series_entry` results."""
    return _U32.pack(len(entries)) + b"".join(entries)


def encode_series(refs: Sequence[int], labels: Sequence[Labels]) -> bytes:
    """Series definitions (a Python loop over *new* series only)."""
    return encode_series_entries([series_entry(r, ls) for r, ls in zip(refs, labels)])


def decode_series(buf: bytes | memoryview) -> tuple[list[int], list[Labels]]:
    """Inverse of :func:`encode_series`."""
    try:
        mv = memoryview(buf)
        (count,) = _U32.unpack_from(mv, 0)
        pos = 4
        refs: list[int] = []
        out: list[Labels] = []
        for _ in range(count):
            ref, n = _SERIES_HEAD.unpack_from(mv, pos)
            pos += _SERIES_HEAD.size
            pairs = []
            for _ in range(n):
                (ln,) = _U32.unpack_from(mv, pos)
                name = bytes(mv[pos + 4 : pos + 4 + ln]).decode("utf-8", "surrogateescape")
                pos += 4 + ln
                (lv,) = _U32.unpack_from(mv, pos)
                value = bytes(mv[pos + 4 : pos + 4 + lv]).decode("utf-8", "surrogateescape")
                pos += 4 + lv
                pairs.append((name, value))
            refs.append(ref)
            out.append(Labels.from_pairs(pairs))
        if pos != len(mv):
            raise RecordDecodeError(f"series record: {len(mv) - pos} trailing bytes")
        return refs, out
    except struct.error as err:
        raise RecordDecodeError(f"series record: {err}") from err


def encode_samples(refs: I64, ts: I64, values: F64, st: I64 | None = None) -> bytes:
    """Columns ``refs, ts, values[, st]`` as little-endian int64/float64 arrays."""
    n = len(refs)
    flags = _FLAG_ST if st is not None else 0
    parts = [
        _SAMPLES_HEAD.pack(n, flags),
        np.ascontiguousarray(refs, "<i8").tobytes(),
        np.ascontiguousarray(ts, "<i8").tobytes(),
        np.ascontiguousarray(values, "<f8").tobytes(),
    ]
    if st is not None:
        parts.append(np.ascontiguousarray(st, "<i8").tobytes())
    return b"".join(parts)


def decode_samples(buf: bytes | memoryview) -> SamplesRecord:
    """Inverse of :func:`encode_samples`; the arrays are views into ``buf``."""
    if len(buf) < _SAMPLES_HEAD.size:
        raise RecordDecodeError("samples record: short header")
    n, flags = _SAMPLES_HEAD.unpack_from(buf, 0)
    cols = 4 if flags & _FLAG_ST else 3
    want = _SAMPLES_HEAD.size + cols * 8 * n
    if len(buf) != want:
        raise RecordDecodeError(f"samples record: {len(buf)} bytes, want {want} for {n} samples")
    o = _SAMPLES_HEAD.size
    refs = np.frombuffer(buf, "<i8", n, o).astype(np.int64, copy=False)
    ts = np.frombuffer(buf, "<i8", n, o + 8 * n).astype(np.int64, copy=False)
    values = np.frombuffer(buf, "<f8", n, o + 16 * n).astype(np.float64, copy=False)
    st = np.frombuffer(buf, "<i8", n, o + 24 * n).astype(np.int64, copy=False) if cols == 4 else None
    return SamplesRecord(refs, ts, values, st)


def encode_tombstones(refs: I64, mint: int, maxt: int) -> bytes:
    return _TOMB_HEAD.pack(len(refs), mint, maxt) + np.ascontiguousarray(refs, "<i8").tobytes()


def decode_tombstones(buf: bytes | memoryview) -> TombstonesRecord:
    if len(buf) < _TOMB_HEAD.size:
        raise RecordDecodeError("tombstones record: short header")
    n, mint, maxt = _TOMB_HEAD.unpack_from(buf, 0)
    if len(buf) != _TOMB_HEAD.size + 8 * n:
        raise RecordDecodeError("tombstones record: length does not match count")
    refs = np.frombuffer(buf, "<i8", n, _TOMB_HEAD.size).astype(np.int64, copy=False)
    return TombstonesRecord(refs, mint, maxt)


def encode_commit(series_payload: bytes, samples_payload: bytes) -> bytes:
    """One commit as one record: the series it created, then its samples.

    A commit is a single framed record so that a torn write drops the whole commit and
    never leaves part of a batch (or series without their samples) to be replayed.
    """
    return _COMMIT_HEAD.pack(len(series_payload), len(samples_payload)) + series_payload + samples_payload


def decode_commit(buf: bytes | memoryview) -> tuple[list[int], list[Labels], SamplesRecord]:
    if len(buf) < _COMMIT_HEAD.size:
        raise RecordDecodeError("commit record: short header")
    ls, lv = _COMMIT_HEAD.unpack_from(buf, 0)
    if _COMMIT_HEAD.size + ls + lv != len(buf):
        raise RecordDecodeError("commit record: section lengths do not add up")
    mv = memoryview(buf)
    a = _COMMIT_HEAD.size
    refs, labels = decode_series(mv[a : a + ls]) if ls else ([], [])
    return refs, labels, decode_samples(mv[a + ls : a + ls + lv])


def encode_end(index: int) -> bytes:
    """Payload of the end record of segment (or checkpoint) number ``index``."""
    return _END.pack(index)


def decode_end(buf: bytes | memoryview) -> int:
    if len(buf) != _END.size:
        raise RecordDecodeError(f"end record: {len(buf)} bytes, want {_END.size}")
    (index,) = _END.unpack_from(buf, 0)
    return int(index)
