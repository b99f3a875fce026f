"""The write-ahead log: numbered segment files of framed, checksummed records.

Layout (``docs/format/wal.md``)::

    <data>/wal/00000000  00000001  ...            segments, append-only
    <data>/wal/checkpoint.00000003/00000000       state of the head as of segment 3

A record is ``type:u8, 0:u8*3, length:u32le, crc32:u32le`` followed by ``length`` payload
bytes; the CRC (zlib's CRC-32) covers the first eight header bytes and the payload, so a
torn header is caught as surely as a torn payload. A record is written with one ``write``
call and never split across segments: a segment is rotated *before* a record that would
overflow it, and a record larger than a whole segment gets a segment of its own. Rotation
seals the closed segment with an end record holding its number (``records.REC_END``).

Durability: ``write`` returns only after the bytes are in the kernel's page cache, which a
``kill -9`` of this process cannot lose. What a power failure can lose depends on the fsync
policy (see ``DBOptions.fsync``).

Not thread-safe: the DB serialises writers under its commit lock.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from signalfire.errors import CorruptionError, StorageError
from signalfire.tsdb.options import FsyncPolicy
from signalfire.tsdb.wal import records
from signalfire.util.files import fsync_dir

HEADER = struct.Struct("<B3xII")  # type, length, crc
_SEGMENT_RE = re.compile(r"^\d{8}$")
#: Largest payload accepted on read; a length beyond it is a corrupt header, not a huge record.
MAX_RECORD = 1 << 31


def segment_name(index: int) -> str:
    return f"{index:08d}"


def segment_index(name: str) -> int | None:
    """The number of a segment file name (8 decimal digits), or None for any other name."""
    return int(name) if _SEGMENT_RE.match(name) else None


def list_segments(wal_dir: str) -> list[int]:
    """Indexes of the segment files in ``wal_dir``, ascending."""
    return list_numbered(wal_dir, segment_index)


def list_numbered(wal_dir: str, index_of: Callable[[str], int | None]) -> list[int]:
    """The numbers ``index_of`` reads from the names in ``wal_dir`` (skipping names it
    gives None for), ascending; none when the folder does not exist."""
    try:
        names = os.listdir(wal_dir)
    except FileNotFoundError:
        return []
    return sorted(i for n in names if (i := index_of(n)) is not None)


def frame(rec_type: int, payload: bytes) -> bytes:
    """Header + payload of one record."""
    head = struct.pack("<B3xI", rec_type, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


@dataclass(frozen=True, slots=True)
class Record:
    type: int
    payload: memoryview
    segment: int
    offset: int  # byte offset of the record header in its segment


def read_records(path: str, segment: int = 0) -> Iterator[Record]:
    """Records of one segment file, in order.

    Raises CorruptionError(path, offset, reason) at the first record that is torn or whose
    checksum does not match; every record yielded before it is intact.
    """
    with open(path, "rb") as f:
        data = f.read()
    mv = memoryview(data)
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < HEADER.size:
            raise CorruptionError(path, pos, f"torn record header ({end - pos} of {HEADER.size} bytes)")
        rec_type, length, crc = HEADER.unpack_from(mv, pos)
        if rec_type == 0 or length > MAX_RECORD:
            raise CorruptionError(path, pos, f"invalid record header (type {rec_type}, length {length})")
        body = pos + HEADER.size
        if body + length > end:
            raise CorruptionError(path, pos, f"torn record: {end - body} of {length} payload bytes")
        payload = mv[body : body + length]
        if zlib.crc32(payload, zlib.crc32(mv[pos : pos + 8])) != crc:
            raise CorruptionError(path, pos, "record checksum mismatch")
        yield Record(rec_type, payload, segment, pos)
        pos = body + length


class WAL:
    """Appends framed records to the newest segment of ``wal_dir``; rotates by size."""

    def __init__(self, wal_dir: str, segment_size: int, fsync: FsyncPolicy = "segment") -> None:
        self.dir = wal_dir
        self.segment_size = segment_size
        self.fsync_policy = fsync
        os.makedirs(wal_dir, exist_ok=True)
        segs = list_segments(wal_dir)
        self._index = segs[-1] if segs else 0
        self._fd = -1
        self._size = 0
        self._broken: OSError | None = None
        self._open_segment(self._index)

    @property
    def current_segment(self) -> int:
        return self._index

    def _open_segment(self, index: int) -> None:
        path = os.path.join(self.dir, segment_name(index))
        created = not os.path.exists(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._index = index
        self._size = os.fstat(self._fd).st_size
        if created and self.fsync_policy != "never":
            fsync_dir(self.dir)

    def _close_segment(self) -> None:
        if self._fd >= 0:
            if self.fsync_policy != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def next_segment(self) -> int:
        """Seal the current segment with its end record, close it and start the next one;
        returns the new segment's index. A segment is never left behind without its end
        record (unless a write failed), so replay can tell a segment that lost its end
        from one that was simply closed."""
        if self._fd >= 0 and self._broken is None:
            self._append(frame(records.REC_END, records.encode_end(self._index)))
        self._close_segment()
        self._open_segment(self._index + 1)
        return self._index

    def log(self, rec_type: int, payload: bytes) -> None:
        """Append one record, rotating first when it would overflow the current segment."""
        if self._fd < 0:
            raise StorageError(f"write WAL {self.dir}: closed")
        if self._broken is not None:
            raise StorageError(f"write WAL {self.dir}: unusable after an earlier failure") from self._broken
        data = frame(rec_type, payload)
        if self._size > 0 and self._size + len(data) > self.segment_size:
            self.next_segment()
        self._append(data)

    def _append(self, data: bytes) -> None:
        before = self._size
        try:
            self._write_all(data)
            if self.fsync_policy == "commit":
                os.fdatasync(self._fd)
        except OSError as err:
            # Cut a partial record off again: left in place it would make replay stop
            # (and repair drop everything) at this point, including later commits.
            try:
                os.ftruncate(self._fd, before)
                self._size = before
            except OSError:
                self._broken = err
            raise StorageError(f"write WAL segment {segment_name(self._index)}: {err}") from err

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            self._size += n
            view = view[n:]

    def sync(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        self._close_segment()

    def delete_segments_before(self, index: int) -> None:
        """Remove every segment numbered below ``index`` (they are covered by a checkpoint)."""
        for seg in list_segments(self.dir):
            if seg < index:
                os.remove(os.path.join(self.dir, segment_name(seg)))


def repair_segment(wal_dir: str, err: CorruptionError, last: bool) -> int:
    """Cut the damaged segment at the corrupt offset; returns the number of bytes dropped.

    Only what could not be read goes: the corrupt record and the rest of its segment.
    Later segments are whole files with their own checksums and are kept (Prometheus's
    ``wlog.Repair`` deletes them too; our records never span segments, so nothing after
    the damaged file depends on its bytes). A segment that is not the ``last`` gets its end
    record back, so the next open reads it as sealed and does not report it again.
    """
    seg = int(os.path.basename(err.path))
    dropped = os.path.getsize(err.path) - err.offset
    with open(err.path, "r+b") as f:
        f.truncate(err.offset)
        if not last:
            f.seek(err.offset)
            f.write(frame(records.REC_END, records.encode_end(seg)))
        f.flush()
        os.fsync(f.fileno())
    return dropped
