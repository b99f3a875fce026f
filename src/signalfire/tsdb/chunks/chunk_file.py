"""The chunks file of a block: checksummed, compressed chunk records read through mmap.

A chunk record holds several series' samples for one time window (a *value* chunk:
values and optional start timestamps) or several distinct timestamp columns (a *ts*
chunk). Byte layout: docs/format/chunks.md. Records are addressed by their byte
offset in the file (the chunk *ref*).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signalfire._types import F64, I64
from signalfire.errors import CorruptionError, StorageError
from signalfire.tsdb.chunks import codec

_zstd: Any
try:  # cramjam's zstd is the fast general codec; zlib is the fallback.
    import cramjam

    _zstd = cramjam.zstd
except ImportError:  # pragma: no cover - cramjam is a declared dependency
    _zstd = None

FILE_MAGIC = b"SFCK"
FILE_VERSION = 1
FILE_HEADER = struct.Struct("<4sB3s")  # magic, version, zero padding
RECORD_HEADER = struct.Struct("<BBHIIIII")  # kind, codec, flags, crc, clen, rlen, n_series, n_samples

KIND_VALUES = 1
KIND_TS = 2
CODEC_NONE = 0
CODEC_ZLIB = 1
CODEC_ZSTD = 2
FLAG_ST = 1

#: zstd level used for chunks; 19 is slow to write but chunks are written once.
ZSTD_LEVEL = 9


@dataclass(frozen=True, slots=True)
class DecodedChunk:
    """Samples of one chunk: ``counts[m]`` per series (or ts column), data in order."""

    kind: int
    counts: I64
    values: F64 | None = None  # KIND_VALUES
    st: I64 | None = None  # KIND_VALUES with start timestamps
    ts: I64 | None = None  # KIND_TS


# ---------------------------------------------------------------- payload framing


class _Out:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def arr(self, a: np.ndarray, dtype: str) -> None:
        b = np.ascontiguousarray(a).astype(dtype, copy=False).tobytes()
        self.parts.append(struct.pack("<I", len(b)))
        self.parts.append(b)

    def planes(self, z: np.ndarray) -> None:
        nplanes, b = codec.to_planes(z)
        self.parts.append(struct.pack("<IB", len(b), nplanes))
        self.parts.append(b)

    def bitplanes(self, z: np.ndarray, runs: I64) -> None:
        nbits, b = codec.to_bitplanes(z, runs)
        self.parts.append(struct.pack("<IB", len(b), nbits))
        self.parts.append(b)

    def bytes(self) -> bytes:
        return b"".join(self.parts)


class _In:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ValueError(f"payload section overruns the chunk at byte {self.pos}")
        mv = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return mv

    def arr(self, dtype: str, count: int | None) -> np.ndarray:
        """The next section as an array; ``count`` None accepts any length."""
        (n,) = struct.unpack("<I", self._take(4))
        a = np.frombuffer(self._take(n), dtype)
        if count is not None and len(a) != count:
            raise ValueError(f"section has {len(a)} entries, want {count}")
        return a.astype(dtype.lstrip("<"), copy=False)

    def planes(self, count: int) -> np.ndarray:
        n, nplanes = struct.unpack("<IB", self._take(5))
        if n != nplanes * count or nplanes > 8:
            raise ValueError(f"byte planes of {n} bytes do not hold {count} values")
        return codec.from_planes(nplanes, count, self._take(n))

    def bitplanes(self, runs: I64) -> np.ndarray:
        n, nbits = struct.unpack("<IB", self._take(5))
        total = int(((runs + 7) // 8 * 8).sum())
        if n != nbits * (total // 8) or nbits > 64:
            raise ValueError(f"bit planes of {n} bytes do not hold runs of {int(runs.sum())} values")
        return codec.from_bitplanes(nbits, runs, self._take(n))


def _put_ints(out: _Out, params: dict[str, np.ndarray], z: np.ndarray, counts: I64) -> None:
    out.arr(params["mode"], "u1")
    out.arr(params["first"], "<i8")
    out.arr(params["gcd"], "<i8")
    out.arr(params["bias"], "<i8")
    out.bitplanes(z, np.maximum(np.asarray(counts, np.int64) - 1, 0))


def _get_ints(inp: _In, counts: I64) -> I64:
    m = len(counts)
    params = {
        "mode": inp.arr("u1", m),
        "first": inp.arr("<i8", m),
        "gcd": inp.arr("<i8", m),
        "bias": inp.arr("<i8", m),
    }
    return codec.decode_int_segments(params, counts, inp.bitplanes(np.maximum(counts - 1, 0)))


# ---------------------------------------------------------------- encode


def encode_value_chunk(counts: I64, values: F64, st: I64 | None = None) -> bytes:
    """One value chunk record (header + compressed payload) for ``len(counts)`` series."""
    counts = np.asarray(counts, np.int64)
    out = _Out()
    out.arr(counts, "<u4")
    p = codec.encode_float_segments(values, counts)
    out.arr(p["is_int"], "u1")
    out.arr(p["scale"], "u1")
    icounts = counts[p["is_int"].astype(bool)]
    _put_ints(out, {k: p["i" + k] for k in ("mode", "first", "gcd", "bias")}, p["iresid"], icounts)
    out.arr(p["xfirst"], "<u8")
    out.planes(p["xresid"])
    exc_pos = np.asarray(p["exc_pos"], np.int64)
    out.arr(np.diff(exc_pos, prepend=0), "<u4")
    out.arr(p["exc_bits"], "<u8")
    flags = 0
    if st is not None and np.any(st):
        flags |= FLAG_ST
        params, z = codec.encode_int_segments(np.asarray(st, np.int64), counts)
        _put_ints(out, params, z, counts)
    return _record(KIND_VALUES, flags, len(counts), len(values), out.bytes())


def encode_ts_chunk(counts: I64, ts: I64) -> bytes:
    """One ts chunk record holding ``len(counts)`` timestamp columns."""
    counts = np.asarray(counts, np.int64)
    out = _Out()
    out.arr(counts, "<u4")
    params, z = codec.encode_int_segments(np.asarray(ts, np.int64), counts)
    _put_ints(out, params, z, counts)
    return _record(KIND_TS, 0, len(counts), len(ts), out.bytes())


def _record(kind: int, flags: int, n_series: int, n_samples: int, raw: bytes) -> bytes:
    if _zstd is not None:
        comp, codec_id = bytes(_zstd.compress(raw, level=ZSTD_LEVEL)), CODEC_ZSTD
    else:  # pragma: no cover
        comp, codec_id = zlib.compress(raw, 6), CODEC_ZLIB
    hdr = RECORD_HEADER.pack(kind, codec_id, flags, 0, len(comp), len(raw), n_series, n_samples)
    crc = zlib.crc32(comp, zlib.crc32(hdr[:4] + hdr[8:]))
    return RECORD_HEADER.pack(kind, codec_id, flags, crc, len(comp), len(raw), n_series, n_samples) + comp


# ---------------------------------------------------------------- decode


def decode_record(buf: bytes | memoryview | mmap.mmap, ref: int, path: str) -> DecodedChunk:
    """Decode the record at byte ``ref``; raises CorruptionError naming ``path`` and the offset."""
    size = len(buf)
    if ref < FILE_HEADER.size or ref + RECORD_HEADER.size > size:
        raise CorruptionError(path, ref, "chunk reference beyond the end of the file")
    hdr = bytes(buf[ref : ref + RECORD_HEADER.size])
    kind, codec_id, flags, crc, clen, rlen, n_series, n_samples = RECORD_HEADER.unpack(hdr)
    start = ref + RECORD_HEADER.size
    if start + clen > size:
        raise CorruptionError(path, ref, f"chunk of {clen} bytes truncated at {size}")
    comp = buf[start : start + clen]
    if zlib.crc32(comp, zlib.crc32(hdr[:4] + hdr[8:])) != crc:
        raise CorruptionError(path, ref, "chunk checksum mismatch")
    try:
        if codec_id == CODEC_ZSTD and _zstd is not None:
            raw = bytes(_zstd.decompress(bytes(comp)))
        elif codec_id == CODEC_ZLIB:
            raw = zlib.decompress(comp)
        elif codec_id == CODEC_NONE:
            raw = bytes(comp)
        else:
            raise ValueError(f"unknown codec {codec_id}")
        if len(raw) != rlen:
            raise ValueError(f"payload is {len(raw)} bytes, header says {rlen}")
        return _decode_payload(kind, flags, n_series, n_samples, raw)
    except CorruptionError:
        raise
    except Exception as err:  # any decoding failure of checksummed bytes is corruption
        raise CorruptionError(path, ref, f"cannot decode chunk: {err}") from err


def _decode_payload(kind: int, flags: int, m: int, n: int, raw: bytes) -> DecodedChunk:
    inp = _In(raw)
    counts = inp.arr("<u4", m).astype(np.int64)
    if int(counts.sum()) != n:
        raise ValueError(f"series counts add up to {int(counts.sum())}, header says {n}")
    if kind == KIND_TS:
        return DecodedChunk(kind, counts, ts=_get_ints(inp, counts))
    if kind != KIND_VALUES:
        raise ValueError(f"unknown chunk kind {kind}")
    is_int = inp.arr("u1", m)
    m_int = int(is_int.astype(bool).sum())
    icounts = counts[is_int.astype(bool)]
    fcounts = counts[~is_int.astype(bool)]
    parts: dict[str, np.ndarray] = {"is_int": is_int, "scale": inp.arr("u1", m_int)}
    parts["imode"] = inp.arr("u1", m_int)
    parts["ifirst"] = inp.arr("<i8", m_int)
    parts["igcd"] = inp.arr("<i8", m_int)
    parts["ibias"] = inp.arr("<i8", m_int)
    parts["iresid"] = inp.bitplanes(np.maximum(icounts - 1, 0))
    parts["xfirst"] = inp.arr("<u8", len(fcounts))
    parts["xresid"] = inp.planes(int(np.maximum(fcounts - 1, 0).sum()))
    exc_delta = inp.arr("<u4", None).astype(np.int64)
    parts["exc_pos"] = np.cumsum(exc_delta)
    parts["exc_bits"] = inp.arr("<u8", len(exc_delta))
    if len(parts["exc_pos"]) and (parts["exc_pos"][-1] >= n):
        raise ValueError("exception position beyond the chunk")
    values = codec.decode_float_segments(parts, counts)
    st = _get_ints(inp, counts) if flags & FLAG_ST else None
    return DecodedChunk(kind, counts, values=values, st=st)


# ---------------------------------------------------------------- files


class ChunkWriter:
    """Appends records to a new chunks file; ``refs`` are their byte offsets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._f.write(FILE_HEADER.pack(FILE_MAGIC, FILE_VERSION, b""))
        self.offset = FILE_HEADER.size

    def write(self, record: bytes) -> int:
        ref = self.offset
        self._f.write(record)
        self.offset += len(record)
        return ref

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


class ChunkReader:
    """Read-only mmap of a chunks file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed right below; the mmap outlives it
        except OSError as err:
            raise CorruptionError(str(path), 0, f"cannot open chunks file: {err}") from err
        with f:
            self.size = os.fstat(f.fileno()).st_size
            if self.size < FILE_HEADER.size:
                raise CorruptionError(str(path), self.size, "chunks file shorter than its header")
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        magic, version, pad = FILE_HEADER.unpack(self._mm[: FILE_HEADER.size])
        if magic != FILE_MAGIC:
            raise CorruptionError(str(path), 0, f"bad magic {magic!r}")
        if version != FILE_VERSION:
            raise CorruptionError(str(path), 4, f"unsupported chunks format version {version}")
        if pad != b"\0\0\0":
            # No CRC covers the file header: its padding must read back as written.
            raise CorruptionError(str(path), 5, f"chunks header padding is {pad.hex()}, expected zeros")

    def read(self, ref: int) -> DecodedChunk:
        """Decode the record at byte offset ``ref``; StorageError once the reader is closed."""
        if self._mm.closed:
            raise StorageError(f"read chunks {self.path}: block already closed")
        return decode_record(self._mm, ref, str(self.path))

    def close(self) -> None:
        # A view still alive keeps the mapping; it goes when the view does.
        with contextlib.suppress(BufferError):
            self._mm.close()
