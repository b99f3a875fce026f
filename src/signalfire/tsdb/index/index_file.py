"""The index file of a block: symbols, series labels, postings and the chunk tables.

The file is a header followed by named sections, each checksummed (CRC-32) and
compressed; integer sections go through the same delta/zigzag/byte-plane transform
as sample columns. Byte layout: docs/format/index.md. The reader loads every section
into numpy arrays at open (the index is small next to the chunks) and decodes symbol
strings lazily.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signalfire._types import I64
from signalfire.errors import CorruptionError
from signalfire.labels import Labels
from signalfire.tsdb.chunks import codec
from signalfire.tsdb.chunks.chunk_file import _zstd
from signalfire.util.ragged import ragged_arange, series_index

MAGIC = b"SFIX"
VERSION = 1
HEADER = struct.Struct("<4sB3sI")  # magic, version, zero padding, number of sections
SECTION = struct.Struct("<16sBBxxIQQ")  # name, kind, codec, crc, count, stored length

KIND_INT = 1  # int64 column: one segment through the integer codec
KIND_BYTES = 2  # opaque bytes
CODEC_NONE = 0
CODEC_ZLIB = 1
CODEC_ZSTD = 2

#: Sections every index has; int64 unless named in _BYTE_SECTIONS.
SECTIONS = (
    "sym_off",  # int64[Y+1] byte offsets of the symbols in sym_data
    "sym_data",  # UTF-8 symbol bytes, symbols sorted, unique
    "lbl_off",  # int64[S+1] series i owns label pairs [lbl_off[i], lbl_off[i+1])
    "lbl_name",  # int64[P] name symbol of each pair
    "lbl_value",  # int64[P] value symbol of each pair
    "key_name",  # int64[K] postings keys, sorted by (name, value) symbol
    "key_value",  # int64[K]
    "post_off",  # int64[K+1] key k owns post_ids[post_off[k]:post_off[k+1]]
    "post_ids",  # int64[sum] series ids, sorted within a key
    "piece_off",  # int64[S+1] series i owns pieces [piece_off[i], piece_off[i+1])
    "piece_mint",  # int64[Pc] first sample time of the piece
    "piece_maxt",  # int64[Pc] last sample time of the piece
    "piece_chunk",  # int64[Pc] value chunk number
    "piece_pos",  # int64[Pc] the piece's position inside its value chunk
    "piece_tscol",  # int64[Pc] timestamp column number
    "tscol_chunk",  # int64[Tc] ts chunk number of the column
    "tscol_pos",  # int64[Tc] the column's position inside its ts chunk
    "chunk_ref",  # int64[C] byte offset of each chunk record in the chunks file
)
_BYTE_SECTIONS = frozenset({"sym_data"})
#: Blocks with at most this many series keep their label sets once built (~130 bytes
#: per series beyond the shared strings and pairs).
LABELS_CACHE_SERIES = 1 << 19
#: Sections of ids and positions, held as int32 in memory when they fit.
_NARROW_SECTIONS = (
    "lbl_name", "lbl_value", "key_name", "key_value", "post_ids",
    "piece_chunk", "piece_pos", "piece_tscol", "tscol_chunk", "tscol_pos",
)  # fmt: skip


def _encode_int(a: I64) -> bytes:
    a = np.ascontiguousarray(a, np.int64)
    counts = np.array([len(a)], np.int64)
    params, z = codec.encode_int_segments(a, counts)
    nplanes, planes = codec.to_planes(z)
    head = struct.pack(
        "<BqqqB", int(params["mode"][0]), int(params["first"][0]), int(params["gcd"][0]),
        int(params["bias"][0]), nplanes,
    )  # fmt: skip
    return head + planes


def _decode_int(raw: bytes, count: int) -> I64:
    mode, first, gcd, bias, nplanes = struct.unpack_from("<BqqqB", raw)
    hdr = struct.calcsize("<BqqqB")
    nres = max(count - 1, 0)
    if len(raw) != hdr + nplanes * nres or nplanes > 8:
        raise ValueError(f"int section of {len(raw)} bytes does not hold {count} values")
    params: dict[str, np.ndarray] = {
        "mode": np.array([mode], np.uint8),
        "first": np.array([first], np.int64),
        "gcd": np.array([gcd], np.int64),
        "bias": np.array([bias], np.int64),
    }
    z = codec.from_planes(nplanes, nres, memoryview(raw)[hdr:])
    return codec.decode_int_segments(params, np.array([count], np.int64), z)


def _compress(raw: bytes) -> tuple[bytes, int]:
    if _zstd is not None:
        return bytes(_zstd.compress(raw, level=9)), CODEC_ZSTD
    return zlib.compress(raw, 6), CODEC_ZLIB  # pragma: no cover


def build_symbols(labels: Sequence[Labels]) -> tuple[list[str], dict[str, int]]:
    """All label names and values, sorted (code point order = UTF-8 byte order)."""
    syms = sorted({s for ls in labels for pair in ls for s in pair})
    return syms, {s: i for i, s in enumerate(syms)}


def write_index(path: Path, labels: Sequence[Labels], tables: dict[str, I64]) -> None:
    """Write the index of series ``labels`` (sorted, unique) plus the piece/chunk ``tables``.

    ``tables`` holds the ``piece_*``, ``tscol_*`` and ``chunk_ref`` sections. The file
    is fsynced before returning.
    """
    syms, sym_id = build_symbols(labels)
    encoded = [s.encode("utf-8", "surrogateescape") for s in syms]
    sym_off = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=sym_off[1:])
    lbl_off = np.zeros(len(labels) + 1, np.int64)
    np.cumsum([len(ls) for ls in labels], out=lbl_off[1:])
    lbl_name = np.fromiter((sym_id[n] for ls in labels for n, _ in ls), np.int64, count=int(lbl_off[-1]))
    lbl_value = np.fromiter((sym_id[v] for ls in labels for _, v in ls), np.int64, count=int(lbl_off[-1]))
    # Postings: sort pairs by (name, value, series) in one lexsort.
    series_of_pair = series_index(lbl_off)
    order = np.lexsort((series_of_pair, lbl_value, lbl_name))
    kn, kv, ids = lbl_name[order], lbl_value[order], series_of_pair[order]
    new_key = np.ones(len(kn), np.bool_)
    if len(kn):
        new_key[1:] = (kn[1:] != kn[:-1]) | (kv[1:] != kv[:-1])
    key_start = np.flatnonzero(new_key)
    post_off = np.append(key_start, len(kn)).astype(np.int64)
    sections: dict[str, np.ndarray | bytes] = {
        "sym_off": sym_off,
        "sym_data": b"".join(encoded),
        "lbl_off": lbl_off,
        "lbl_name": lbl_name,
        "lbl_value": lbl_value,
        "key_name": kn[key_start],
        "key_value": kv[key_start],
        "post_off": post_off,
        "post_ids": ids,
    }
    sections.update(tables)
    missing = [n for n in SECTIONS if n not in sections]
    if missing:
        raise AssertionError(f"BUG: index sections missing: {missing}")
    with open(path, "wb") as f:
        f.write(HEADER.pack(MAGIC, VERSION, b"", len(SECTIONS)))
        for name in SECTIONS:
            data = sections[name]
            if name in _BYTE_SECTIONS:
                raw, kind, count = bytes(data), KIND_BYTES, len(data)
            else:
                arr = np.asarray(data, np.int64)
                raw, kind, count = _encode_int(arr), KIND_INT, len(arr)
            comp, codec_id = _compress(raw)
            hdr = SECTION.pack(name.encode(), kind, codec_id, 0, count, len(comp))
            crc = zlib.crc32(comp, zlib.crc32(hdr[:20] + hdr[24:]))
            f.write(SECTION.pack(name.encode(), kind, codec_id, crc, count, len(comp)))
            f.write(comp)
        f.flush()
        os.fsync(f.fileno())


def read_sections(path: Path) -> tuple[dict[str, I64], bytes]:
    """Every int section as an int64 array, plus the symbol bytes; validates checksums."""
    p = str(path)
    try:
        buf = path.read_bytes()
    except OSError as err:
        raise CorruptionError(p, 0, f"cannot read index: {err}") from err
    if len(buf) < HEADER.size:
        raise CorruptionError(p, len(buf), "index shorter than its header")
    magic, version, pad, nsec = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise CorruptionError(p, 0, f"bad magic {magic!r}")
    if version != VERSION:
        raise CorruptionError(p, 4, f"unsupported index format version {version}")
    if pad != b"\0\0\0":
        # The header is the one part no CRC covers: its padding must read back as written.
        raise CorruptionError(p, 5, f"index header padding is {pad.hex()}, expected zeros")
    pos = HEADER.size
    out: dict[str, I64] = {}
    sym_data = b""
    for _ in range(nsec):
        if pos + SECTION.size > len(buf):
            raise CorruptionError(p, pos, "index truncated in a section header")
        bname, kind, codec_id, crc, count, clen = SECTION.unpack_from(buf, pos)
        name = bname.rstrip(b"\0").decode("ascii", "replace")
        body = pos + SECTION.size
        if body + clen > len(buf):
            raise CorruptionError(p, pos, f"index section {name!r} truncated")
        comp = buf[body : body + clen]
        if zlib.crc32(comp, zlib.crc32(buf[pos : pos + 20] + buf[pos + 24 : pos + SECTION.size])) != crc:
            raise CorruptionError(p, pos, f"index section {name!r} checksum mismatch")
        try:
            if codec_id == CODEC_ZSTD and _zstd is not None:
                raw = bytes(_zstd.decompress(comp))
            elif codec_id == CODEC_ZLIB:
                raw = zlib.decompress(comp)
            elif codec_id == CODEC_NONE:
                raw = comp
            else:
                raise ValueError(f"unknown codec {codec_id}")
            if kind == KIND_BYTES:
                sym_data = raw
            else:
                out[name] = _decode_int(raw, count)
        except Exception as err:
            raise CorruptionError(p, pos, f"cannot decode index section {name!r}: {err}") from err
        pos = body + clen
    if pos != len(buf):
        raise CorruptionError(p, pos, "trailing bytes after the last index section")
    missing = [n for n in SECTIONS if n not in out and n not in _BYTE_SECTIONS]
    if missing:
        raise CorruptionError(p, pos, f"index sections missing: {missing}")
    _check_shapes(p, out, len(sym_data))
    # Ids and positions fit int32 in any realistic block: halve the resident index.
    for name in _NARROW_SECTIONS:
        a = out[name]
        if len(a) == 0 or (a.min() >= 0 and a.max() < 2**31):
            out[name] = a.astype(np.int32)
    return out, sym_data


def _check_shapes(p: str, s: dict[str, I64], nsym_bytes: int) -> None:
    """Cross-check section lengths and ranges so later indexing cannot fail."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise CorruptionError(p, 0, f"inconsistent index: {what}")

    nsym = len(s["sym_off"]) - 1
    S = len(s["lbl_off"]) - 1
    need(nsym >= 0 and S >= 0, "empty offset tables")
    need(int(s["sym_off"][-1]) == nsym_bytes, "symbol offsets do not match symbol bytes")
    need(len(s["lbl_name"]) == len(s["lbl_value"]) == int(s["lbl_off"][-1]), "label pair counts")
    for key in ("lbl_name", "lbl_value", "key_name", "key_value"):
        need(len(s[key]) == 0 or (s[key].min() >= 0 and s[key].max() < nsym), f"{key} symbol range")
    need(len(s["key_name"]) == len(s["key_value"]) == len(s["post_off"]) - 1, "postings key counts")
    need(int(s["post_off"][-1]) == len(s["post_ids"]), "postings length")
    need(len(s["post_ids"]) == 0 or s["post_ids"].max() < S, "postings series range")
    need(len(s["piece_off"]) == S + 1 and int(s["piece_off"][-1]) == len(s["piece_mint"]), "piece offsets")
    npc = len(s["piece_mint"])
    for key in ("piece_maxt", "piece_chunk", "piece_pos", "piece_tscol"):
        need(len(s[key]) == npc, f"{key} length")
    C = len(s["chunk_ref"])
    need(npc == 0 or (s["piece_chunk"].max() < C and s["piece_chunk"].min() >= 0), "piece chunk range")
    ntc = len(s["tscol_chunk"])
    need(npc == 0 or (s["piece_tscol"].max() < ntc and s["piece_tscol"].min() >= 0), "piece ts column range")
    need(ntc == 0 or (s["tscol_chunk"].max() < C and s["tscol_chunk"].min() >= 0), "ts column chunk range")


class IndexReader:
    """A block's index in memory: labels, postings (a PostingsIndex) and chunk tables."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t, self._sym_data = read_sections(path)
        self._syms: list[str | None] = [None] * (len(self.t["sym_off"]) - 1)
        kn = self.t["key_name"]
        names, first = np.unique(kn, return_index=True)
        ends = np.append(first[1:], len(kn)) if len(first) else first
        self._name_range = {self.symbol(int(n)): (int(a), int(b)) for n, a, b in zip(names, first, ends)}
        self._value_cache: dict[str, list[str]] = {}
        n = self.num_series
        self._labels: list[Labels | None] | None = [None] * n if n <= LABELS_CACHE_SERIES else None

    @property
    def num_series(self) -> int:
        return len(self.t["lbl_off"]) - 1

    def symbol(self, i: int) -> str:
        s = self._syms[i]
        if s is None:
            a, b = int(self.t["sym_off"][i]), int(self.t["sym_off"][i + 1])
            s = sys.intern(self._sym_data[a:b].decode("utf-8", "surrogateescape"))
            self._syms[i] = s
        return s

    def series_labels(self, ids: I64) -> list[Labels]:
        """Label sets of series ``ids``, built once per series and then kept.

        Blocks are immutable and every query over a block asks for its label sets again,
        so they are cached (up to :data:`LABELS_CACHE_SERIES` series per block; beyond
        that they are rebuilt per call). Symbols are interned, so label sets equal to
        another block's or the head's compare mostly by identity.
        """
        ids = np.asarray(ids, np.int64)
        if self._labels is None:
            return self._build_labels(ids)
        cache = self._labels
        idl = ids.tolist()
        out = [cache[i] for i in idl]
        missing = [i for i, ls in zip(idl, out) if ls is None]
        if missing:
            for i, ls in zip(missing, self._build_labels(np.array(missing, np.int64))):
                cache[i] = ls
            out = [cache[i] for i in idl]
        return out

    def _build_labels(self, ids: I64) -> list[Labels]:
        """Label sets of series ``ids``: one gather for all pairs, then a loop over series only."""
        off = self.t["lbl_off"]
        starts, lens = off[ids], off[ids + 1] - off[ids]
        pos = ragged_arange(starts, lens)
        name_ids = self.t["lbl_name"][pos]
        value_ids = self.t["lbl_value"][pos]
        syms = self._decoded(np.unique(np.concatenate([name_ids, value_ids])))
        # One tuple per distinct (name, value) pair, shared by every series that has it.
        nsym = len(syms)
        codes, inv = np.unique(name_ids.astype(np.int64) * nsym + value_ids, return_inverse=True)
        upairs = [(syms[c // nsym], syms[c % nsym]) for c in codes.tolist()]
        pairs = [upairs[j] for j in inv.reshape(-1).tolist()]
        bounds = np.cumsum(lens).tolist()
        out, a = [], 0
        for b in bounds:
            out.append(Labels(tuple(pairs[a:b])))
            a = b
        return out

    def _decoded(self, needed: I64) -> list[str | None]:
        """The symbol table with at least ``needed`` decoded."""
        syms, off, data = self._syms, self.t["sym_off"], self._sym_data
        for i in needed.tolist():
            if syms[i] is None:
                syms[i] = sys.intern(data[int(off[i]) : int(off[i + 1])].decode("utf-8", "surrogateescape"))
        return syms

    # -- PostingsIndex

    def all_postings(self) -> I64:
        return np.arange(self.num_series, dtype=np.int64)

    def label_names(self) -> list[str]:
        return sorted(self._name_range)

    def label_value_list(self, name: str) -> list[str]:
        vals = self._value_cache.get(name)
        if vals is None:
            a, b = self._name_range.get(name, (0, 0))
            vals = [self.symbol(int(v)) for v in self.t["key_value"][a:b]]
            self._value_cache[name] = vals
        return vals

    def postings_union(self, name: str, value_idx: I64) -> I64:
        a, _ = self._name_range.get(name, (0, 0))
        keys = a + np.asarray(value_idx, np.int64)
        off = self.t["post_off"]
        starts, lens = off[keys], off[keys + 1] - off[keys]
        pos = ragged_arange(starts, lens)
        # A series has one value per name, so the lists are disjoint: a sort is the union.
        out: I64 = np.sort(self.t["post_ids"][pos]).astype(np.int64, copy=False)
        return out

    def value_postings(self, name: str) -> tuple[I64, I64]:
        """(series ids, value index) over all series that have label ``name``."""
        a, b = self._name_range.get(name, (0, 0))
        off = self.t["post_off"]
        ids = self.t["post_ids"][off[a] : off[b]] if b > a else np.empty(0, np.int64)
        vidx = series_index(off[a : b + 1]) if b > a else ids
        return ids, vidx

    def pair_names(self, ids: I64) -> I64:
        """Name symbols of every label pair of series ``ids`` (with repeats)."""
        off = self.t["lbl_off"]
        starts, ends = off[ids], off[ids + 1]
        lens = ends - starts
        pos = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
        out: I64 = self.t["lbl_name"][pos]
        return out
