"""Compressed head chunks: full slabs, cut and compressed many series at a time.

When series' open slabs fill up (``Head.chunk_samples``), the head cuts them together: the
samples of up to ``GROUP_SERIES`` series become one immutable *group* (one compressed
value record, one compressed timestamp column), and the slabs are emptied for reuse.
A group keeps in memory only what finding it needs: its sorted series refs, the sample
count of each, and its time range.

Groups are *young* until their series hold ``MERGE_SAMPLES`` (120) samples on average;
then the young groups are decoded and written again ``GROUP_SERIES`` series at a time,
one run per series, so small cuts (the head cuts after a few dozen samples to keep the
raw slabs small) and cuts of few series end up as full-size, well-compressed chunks.

Encodings, chosen for a cut that runs on the append path:

* values: per series, the block codec's decimal test (``codec.decimal_scale``): a series
  whose values are exact decimals ``k / 10**e`` stores the deltas of ``k`` (the few
  samples that are not, such as the staleness NaN, -0.0 or ±Inf, are kept verbatim as
  exceptions); any other series stores each value's bits XOR its predecessor's. Both as
  zigzag/byte planes, zstd level 1. Every float64 bit pattern round-trips. This is the
  block codec's idea without its costlier per-series model fitting (delta-of-delta, GCD,
  bias, bit planes), which would halve append throughput; blocks still get it.
* timestamps: per series the first timestamp, the first delta, then deltas of deltas,
  zigzagged, as three sets of byte planes, zstd level 1. Regular scrapes give all-zero
  delta-of-delta planes, which ``to_planes`` drops (and the decoder then needs no
  cumulative sums), so a group's timestamps are a few dozen bytes.

Reads decode whole groups (array work per group, no per-sample Python) and keep the
series asked for; :func:`merge_pieces` interleaves the pieces of several groups and the
slabs into one ragged set per series.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from signalfire._types import F64, I64, MAX_TIME, MIN_TIME
from signalfire.tsdb.chunks import codec
from signalfire.tsdb.chunks.cache import ChunkCache
from signalfire.tsdb.chunks.chunk_file import KIND_VALUES, DecodedChunk
from signalfire.util.ragged import clip_runs, occurrence, ragged_arange

try:
    import cramjam

    def _compress(b: bytes) -> bytes:
        return bytes(cramjam.zstd.compress(b, level=1))

    def _decompress(b: bytes) -> bytes:
        return bytes(cramjam.zstd.decompress(b))

except ImportError:  # pragma: no cover - cramjam is a declared dependency
    import zlib

    def _compress(b: bytes) -> bytes:
        return zlib.compress(b, 1)

    def _decompress(b: bytes) -> bytes:
        return zlib.decompress(b)


#: Series per compressed group: bounds what a read of one series decodes.
GROUP_SERIES = 128
#: Young groups (cut from slabs) are merged into larger ones once their series hold this
#: many samples on average: Prometheus's 120 samples per chunk.
MERGE_SAMPLES = 120
_PLANES = struct.Struct("<BI")  # byte planes kept, their length in bytes
_EXCEPTIONS = struct.Struct("<I")
#: ``scale`` of a series stored as XOR of its bit patterns.
XOR = 255
#: A series stays decimal while at most this share of its samples are exceptions.
MAX_EXCEPTION_SHARE = 0.125
#: Samples per series that ``_decimal`` tries before testing a whole series.
_PROBE = 4
_POW10 = 10.0 ** np.arange(codec.MAX_SCALE + 1, dtype=np.float64)


def seg_starts(counts: I64) -> I64:
    starts = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def encode_ts(ts: I64, counts: I64) -> bytes:
    """Timestamps of ``len(counts)`` series as first / first delta / delta-of-delta planes."""
    n = len(ts)
    if n == 0:
        return b""
    counts = counts[counts > 0]  # empty series hold no bytes; dropping them keeps starts < n
    starts = seg_starts(counts)
    d = np.empty(n, np.int64)
    d[0] = 0
    np.subtract(ts[1:], ts[:-1], out=d[1:])
    dd = np.empty(n, np.int64)
    dd[0] = 0
    np.subtract(d[1:], d[:-1], out=dd[1:])
    dd[starts] = ts[starts]  # first sample: the timestamp itself
    second = starts[counts > 1] + 1
    dd[second] = d[second]  # second sample: the first delta
    z = codec.zigzag(dd)
    # Three plane sets: first timestamps, first deltas, then deltas of deltas (all zero for
    # regular scrapes, which lets the decoder skip both cumulative sums).
    lead = np.zeros(n, np.bool_)
    lead[starts] = True
    is_second = np.zeros(n, np.bool_)
    is_second[second] = True
    rest = ~(lead | is_second)
    return _compress(_put_planes(z[lead]) + _put_planes(z[is_second]) + _put_planes(z[rest]))


def _put_planes(z: np.ndarray) -> bytes:
    nplanes, planes = codec.to_planes(z)
    return _PLANES.pack(nplanes, len(planes)) + planes


def _get_planes(buf: memoryview, pos: int, count: int) -> tuple[np.ndarray, int]:
    """The planes section at ``pos`` as ``count`` values, and the position after it."""
    nplanes, size = _PLANES.unpack_from(buf, pos)
    pos += _PLANES.size
    return codec.from_planes(nplanes, count, buf[pos : pos + size]), pos + size


def decode_ts(buf: bytes, counts: I64) -> I64:
    n = int(counts.sum())
    if n == 0:
        return np.empty(0, np.int64)
    mv = memoryview(_decompress(buf))
    counts = counts[counts > 0]
    starts = seg_starts(counts)
    second = starts[counts > 1] + 1
    first, pos = _get_planes(mv, 0, len(counts))
    d1, pos = _get_planes(mv, pos, len(second))
    nplanes = _PLANES.unpack_from(mv, pos)[0]
    rest, _ = _get_planes(mv, pos, n - len(counts) - len(second))
    seg = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    step = np.zeros(len(counts), np.int64)
    step[counts > 1] = codec.unzigzag(d1)
    base = codec.unzigzag(first)
    if nplanes == 0:  # constant interval per series: ts = first + j * delta (wrapping)
        j = np.arange(n, dtype=np.int64) - starts[seg]
        regular: I64 = (base[seg].view(np.uint64) + j.view(np.uint64) * step[seg].view(np.uint64)).view(
            np.int64
        )
        return regular
    # Undo the two differences segment by segment: cumulative sums restarted per series.
    dd = np.zeros(n, np.int64)
    dd[second] = step[counts > 1]
    keep = np.ones(n, np.bool_)
    keep[starts] = False
    keep[second] = False
    dd[keep] = codec.unzigzag(rest)
    d = _seg_cumsum(dd, starts, seg)
    out: I64 = (_seg_cumsum(d, starts, seg).view(np.uint64) + base[seg].view(np.uint64)).view(np.int64)
    return out


def _seg_cumsum(x: I64, starts: I64, seg: I64) -> I64:
    """Cumulative sum restarted at every series (wrapping int64 arithmetic, exact)."""
    cs = np.cumsum(x.view(np.uint64), dtype=np.uint64)
    base = np.zeros(len(starts), np.uint64)
    nz = starts > 0
    base[nz] = cs[starts[nz] - 1]
    out: I64 = (cs - base[seg]).view(np.int64)
    return out


def _seg_xor_accumulate(x: np.ndarray, starts: I64, seg: I64) -> np.ndarray:
    """Prefix XOR restarted at every series."""
    acc = np.bitwise_xor.accumulate(x)
    base = np.zeros(len(starts), np.uint64)
    nz = starts > 0
    base[nz] = acc[starts[nz] - 1]
    out: np.ndarray = acc ^ base[seg]
    return out


def _decimal(v: F64, counts: I64, starts: I64, seg: I64) -> tuple[I64, I64, np.ndarray]:
    """``codec.decimal_scale``, tried in full only on series whose first few samples include
    a decimal: random-looking floats (which fail every exponent, the slow case) are ruled
    out from ``_PROBE`` samples each."""
    probe = np.minimum(counts, _PROBE)
    pstart = np.cumsum(probe) - probe
    pidx = np.repeat(starts - pstart, probe) + np.arange(int(probe.sum()), dtype=np.int64)
    _, _, pexc = codec.decimal_scale(v[pidx], probe)
    hopeless = np.bincount(np.repeat(np.arange(len(counts)), probe)[pexc], minlength=len(counts)) == probe
    if not hopeless.any():
        return codec.decimal_scale(v, counts)
    k = np.zeros(len(v), np.int64)
    scale = np.zeros(len(counts), np.int64)
    exc = np.ones(len(v), np.bool_)
    test = ~hopeless & (counts > 0)
    if test.any():
        sel = test[seg]
        k[sel], scale[test], exc[sel] = codec.decimal_scale(v[sel], counts[test])
    return k, scale, exc


def encode_values(values: F64, counts: I64) -> tuple[bytes, bytes]:
    """(per-series scale bytes, compressed body) for a value column."""
    n = len(values)
    v = np.ascontiguousarray(values, np.float64)
    bits = v.view(np.uint64)
    starts = seg_starts(counts)
    seg = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    k, scale, exc = _decimal(v, counts, starts, seg)
    n_exc = np.bincount(seg[exc], minlength=len(counts))
    is_dec = n_exc <= MAX_EXCEPTION_SHARE * counts
    dec = is_dec[seg]
    exc &= dec
    if exc.any():  # an exception repeats its predecessor's integer: a zero delta
        idx = np.where(exc, -1, np.arange(n))
        np.maximum.accumulate(idx, out=idx)
        k = np.where(idx >= 0, k[np.maximum(idx, 0)], 0)
    # Decimal series: deltas of k; others: XOR with the previous bits. First samples raw.
    prev = np.empty(n, np.int64)
    if n:
        prev[0] = 0
        prev[1:] = np.where(dec[1:], k[:-1], bits[:-1].view(np.int64))
        prev[starts[counts > 0]] = 0
    z = np.where(dec, codec.zigzag(k - prev), bits ^ prev.view(np.uint64))
    # Three plane sets: first samples (wide), decimal deltas and XORs (narrow, mostly).
    lead = np.zeros(n, np.bool_)
    lead[starts[counts > 0]] = True
    exc_pos = np.flatnonzero(exc)
    raw = b"".join(
        (
            _put_planes(z[lead]),
            _put_planes(z[dec & ~lead]),
            _put_planes(z[~dec & ~lead]),
            _EXCEPTIONS.pack(len(exc_pos)),
            np.diff(exc_pos, prepend=0).astype("<u4").tobytes(),
            bits[exc_pos].astype("<u8").tobytes(),
        )
    )
    scales = np.where(is_dec, scale, XOR).astype(np.uint8).tobytes()
    return scales, _compress(raw)


def decode_values(scales_b: bytes, body: bytes, counts: I64) -> F64:
    """Inverse of :func:`encode_values`."""
    n = int(counts.sum())
    if n == 0:
        return np.empty(0, np.float64)
    scales = np.frombuffer(scales_b, np.uint8).astype(np.int64)
    mv = memoryview(_decompress(body))
    is_dec = scales != XOR
    dec = np.repeat(is_dec, counts)
    starts = seg_starts(counts)
    lead = np.zeros(n, np.bool_)
    lead[starts[counts > 0]] = True
    z = np.empty(n, np.uint64)
    nl = int((counts > 0).sum())
    nd = int((dec & ~lead).sum())
    z[lead], pos = _get_planes(mv, 0, nl)
    z[dec & ~lead], pos = _get_planes(mv, pos, nd)
    z[~dec & ~lead], pos = _get_planes(mv, pos, n - nl - nd)
    out = np.empty(n, np.uint64)
    # Undo both predictions, each kind of series apart: decimal deltas by a wrapping
    # cumulative sum, then k / 10**e; XOR by a prefix XOR.
    if is_dec.any():
        dc = counts[is_dec]
        dseg = np.repeat(np.arange(len(dc), dtype=np.int64), dc)
        k = _seg_cumsum(codec.unzigzag(z[dec]), seg_starts(dc), dseg)
        with np.errstate(all="ignore"):
            f = k.astype(np.float64) / _POW10[scales[is_dec][dseg]]
        out[dec] = f.view(np.uint64)
    if not is_dec.all():
        xc = counts[~is_dec]
        xseg = np.repeat(np.arange(len(xc), dtype=np.int64), xc)
        out[~dec] = _seg_xor_accumulate(z[~dec], seg_starts(xc), xseg)
    (ne,) = _EXCEPTIONS.unpack_from(mv, pos)
    if ne:
        e = mv[pos + _EXCEPTIONS.size :]
        where = np.cumsum(np.frombuffer(e[: 4 * ne], "<u4").astype(np.int64))
        out[where] = np.frombuffer(e[4 * ne : 12 * ne], "<u8")
    res: F64 = out.view(np.float64)
    return res


#: A run of samples per series: (positions of the series in the ``sorted_refs`` asked for,
#: samples per series, ts, values, st or None), the series' runs one after another.
Piece = tuple[I64, I64, I64, F64, "I64 | None"]
#: One group to read: the group, and for each of its wanted series the position in the
#: query's sorted refs, where its samples start in the decoded group and how many there
#: are; last, whether the group is read whole (every series wanted, all inside the range).
PlanEntry = tuple["ChunkGroup", I64, I64, I64, bool]


@dataclass(slots=True)
class ChunkGroup:
    """Up to GROUP_SERIES series' cut samples. ``refs`` sorted, one run per ref."""

    refs: I64
    counts: I64
    scales: bytes  # per series: decimal exponent, or XOR
    values: bytes
    ts: bytes
    st: bytes  # start timestamps, encoded like ts; empty when none was set
    mint: int
    maxt: int
    serial: int = -1  # set by HeadChunks: the group's key in the decoded-chunk cache
    #: Set (under the head lock) once the group left the head; a reader decoding it
    #: without the lock then keeps its decoding out of the cache.
    gone: bool = False

    @property
    def nbytes(self) -> int:
        """Resident size: buffers plus a fixed estimate for the Python objects around them."""
        buffers = len(self.scales) + len(self.values) + len(self.ts) + len(self.st)
        return buffers + self.refs.nbytes + self.counts.nbytes + 500

    def decode(self) -> tuple[I64, F64, I64 | None]:
        """(ts, values, st or None) of every series, in ``refs`` order."""
        counts = self.counts.astype(np.int64)
        st = decode_ts(self.st, counts) if self.st else None
        return decode_ts(self.ts, counts), decode_values(self.scales, self.values, counts), st


def make_group(refs: I64, counts: I64, ts: I64, values: F64, st: I64 | None) -> ChunkGroup:
    c64 = counts.astype(np.int64)
    scales, body = encode_values(values, c64)
    return ChunkGroup(
        refs=refs.astype(np.int32 if refs[-1] < 2**31 else np.int64),
        counts=counts.astype(_narrowest(int(counts.max()))),
        scales=scales,
        values=body,
        ts=encode_ts(ts, c64),
        st=encode_ts(np.asarray(st, np.int64), c64) if st is not None and np.any(st) else b"",
        mint=int(ts.min()),
        maxt=int(ts.max()),
    )


def _narrowest(top: int) -> type[np.integer]:
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return dt
    return np.int64


class HeadChunks:
    """The head's cut groups, oldest cut first, with their bounds as arrays for pruning."""

    def __init__(self, cache: ChunkCache | None = None) -> None:
        self.groups: list[ChunkGroup] = []
        # Decoded groups are kept in the database's chunk cache (a dashboard re-reads the
        # same recent hours); groups are immutable, so a serial number is a safe key.
        self._cache = cache
        self._owner = cache.new_owner() if cache is not None else 0
        self._closed = False
        self._serials = itertools.count()
        self._bounds: np.ndarray | None = None  # int64[G, 4]: mint, maxt, min ref, max ref
        self._index: tuple[I64, I64, I64, I64] | None = None  # see _ref_index
        self.num_samples = 0
        self.nbytes = 0
        self._series_chunks = 0
        # Groups from ``_young`` on were cut from slabs and not merged yet; per ref, how
        # many samples they hold, and in all (see ``_maybe_merge``).
        self._young = 0
        self._young_n = np.zeros(0, np.int64)
        self._young_series = 0
        self._young_samples = 0

    def add(self, refs: I64, counts: I64, ts: I64, values: F64, st: I64 | None) -> None:
        """Compress the samples of ``refs`` (sorted, unique; ragged by ``counts``) as young
        groups, merging the young groups when their series have enough samples."""
        first_new = len(self.groups)
        self._add(refs, counts, ts, values, st)
        if len(refs) == 0:
            return
        top = int(refs[-1]) + 1
        if top > len(self._young_n):
            grown = np.zeros(max(top, 2 * len(self._young_n)), np.int64)
            grown[: len(self._young_n)] = self._young_n
            self._young_n = grown
        self._young_series += int((self._young_n[refs] == 0).sum())
        self._young_n[refs] += counts
        self._young_samples += int(counts.sum())
        if self._young_samples >= MERGE_SAMPLES * self._young_series:
            if self._young < first_new:
                self._merge_young()
            else:  # only this cut is young, and it is large enough as it is
                self._young = len(self.groups)
                self._reset_young()

    def _merge_young(self) -> None:
        """Decode the young groups and write their series again as full-size groups: each
        series' runs become one, so small cuts (and cuts of few series, as a small scrape
        target gives) end up compressed like Prometheus's 120-sample chunks.

        Works GROUP_SERIES series at a time, so its temporaries stay small (one output
        group's worth) and the process does not keep a large freed heap around."""
        tail = self.groups[self._young :]
        del self.groups[self._young :]
        self.num_samples -= sum(int(g.counts.sum()) for g in tail)
        self.nbytes -= sum(g.nbytes for g in tail)
        self._series_chunks -= sum(len(g.refs) for g in tail)
        self._bounds = None
        self._index = None
        refs = np.flatnonzero(self._young_n).astype(np.int64)
        lo_ref = np.array([int(g.refs[0]) for g in tail], np.int64)
        hi_ref = np.array([int(g.refs[-1]) for g in tail], np.int64)
        cache: dict[int, tuple[I64, F64, I64 | None]] = {}
        for a in range(0, len(refs), GROUP_SERIES):
            window = refs[a : a + GROUP_SERIES]
            pieces: list[Piece] = []
            for gi in np.flatnonzero((hi_ref >= window[0]) & (lo_ref <= window[-1])).tolist():
                g = tail[gi]
                if gi not in cache:
                    cache[gi] = self.decoded(g, keep=False)
                ts, v, st = cache[gi]
                counts = g.counts.astype(np.int64)
                inside = (g.refs >= window[0]) & (g.refs <= window[-1])
                if hi_ref[gi] <= window[-1]:
                    del cache[gi]  # no later window needs it
                if not inside.all():
                    sample_in = np.repeat(inside, counts)
                    ts, v = ts[sample_in], v[sample_in]
                    st = None if st is None else st[sample_in]
                pieces.append((np.searchsorted(window, g.refs[inside]), counts[inside], ts, v, st))
            with_st = any(p[4] is not None for p in pieces)
            offsets, ts, v, st = merge_pieces(window, np.arange(len(window), dtype=np.int64), pieces, with_st)
            self._add(window, np.diff(offsets), ts, v, st)
        self._forget(tail)
        self._young = len(self.groups)
        self._reset_young()

    def _reset_young(self) -> None:
        """Count the young groups' samples per ref again (after a merge or a removal)."""
        self._young_n[:] = 0
        tail = self.groups[self._young :]
        for g in tail:
            self._young_n[g.refs] += g.counts
        self._young_series = int(np.count_nonzero(self._young_n))
        self._young_samples = sum(int(g.counts.sum()) for g in tail)
        if not tail:
            self._young = len(self.groups)

    def _add(self, refs: I64, counts: I64, ts: I64, values: F64, st: I64 | None) -> None:
        starts = seg_starts(counts)
        for a in range(0, len(refs), GROUP_SERIES):
            b = min(a + GROUP_SERIES, len(refs))
            lo = int(starts[a])
            hi = int(starts[b - 1] + counts[b - 1])
            g = make_group(
                refs[a:b], counts[a:b], ts[lo:hi], values[lo:hi], None if st is None else st[lo:hi]
            )
            self._append(g)

    @property
    def num_series_chunks(self) -> int:
        """Chunks in Prometheus's sense: one per series per group."""
        return self._series_chunks

    def decoded(self, g: ChunkGroup, keep: bool = True) -> tuple[I64, F64, I64 | None]:
        """``g.decode()`` through the cache: read-only arrays, shared by concurrent readers.
        ``keep=False`` uses a cached decoding but does not add one (``g`` is going away)."""
        if self._cache is None:
            return g.decode()
        hit = self._cache.get(self._owner, g.serial)
        if hit is None:
            ts, v, st = g.decode()
            if not keep or g.gone:
                return ts, v, st
            hit = self._cache.put(self._owner, g.serial, DecodedChunk(KIND_VALUES, g.counts, v, st, ts))
            # A reader decodes after the head lock is released, so ``g`` may have left the
            # head meanwhile. ``_forget`` marks before it discards and this checks after it
            # puts: whichever runs second removes the entry, so none outlives its group.
            if g.gone or self._closed:
                self._cache.discard(self._owner, g.serial)
        assert hit.ts is not None and hit.values is not None
        return hit.ts, hit.values, hit.st

    def _forget(self, groups: list[ChunkGroup]) -> None:
        """Drop the cached decodings of groups that are no longer part of the head."""
        for g in groups:
            g.gone = True
            if self._cache is not None:
                self._cache.discard(self._owner, g.serial)

    def close(self) -> None:
        """Release this head's share of the cache (the database is closing)."""
        self._closed = True
        if self._cache is not None:
            self._cache.drop_owner(self._owner)

    def _append(self, g: ChunkGroup) -> None:
        if g.serial < 0:
            g.serial = next(self._serials)
        self.groups.append(g)
        self.num_samples += int(g.counts.sum())
        self.nbytes += g.nbytes
        self._series_chunks += len(g.refs)
        self._bounds = None
        self._index = None

    def bounds(self) -> np.ndarray:
        if self._bounds is None:
            b = np.empty((len(self.groups), 4), np.int64)
            for i, g in enumerate(self.groups):
                b[i] = (g.mint, g.maxt, g.refs[0], g.refs[-1])
            self._bounds = b
        return self._bounds

    def time_range(self) -> tuple[int, int]:
        if not self.groups:
            return MAX_TIME, MIN_TIME
        b = self.bounds()
        return int(b[:, 0].min()), int(b[:, 1].max())

    def candidates(self, sorted_refs: I64, mint: int, maxt: int) -> list[int]:
        """Groups that may hold samples of ``sorted_refs`` in ``[mint, maxt]``, oldest first."""
        if not self.groups or len(sorted_refs) == 0:
            return []
        b = self.bounds()
        ok = (
            (b[:, 1] >= mint) & (b[:, 0] <= maxt) & (b[:, 3] >= sorted_refs[0]) & (b[:, 2] <= sorted_refs[-1])
        )
        out: list[int] = np.flatnonzero(ok).tolist()
        return out

    def pieces(self, sorted_refs: I64, mint: int, maxt: int) -> list[Piece]:
        """Samples of ``sorted_refs`` in ``[mint, maxt]``, one :data:`Piece` per group that
        holds any, oldest cut first."""
        return decode_plan(self.plan(sorted_refs, mint, maxt), mint, maxt, self.decoded)

    def _ref_index(self) -> tuple[I64, I64, I64, I64]:
        """Every group's refs end to end (int64), where each group's slice starts
        (int64[G+1]), each ref's first sample within its group's decoded arrays and
        each ref's sample count.
        Built once per change of the group list, so :meth:`plan` matches a query's refs
        against all groups with one search instead of one per group."""
        if self._index is None:
            G = len(self.groups)
            lens = np.array([len(g.refs) for g in self.groups], np.int64)
            off = np.zeros(G + 1, np.int64)
            np.cumsum(lens, out=off[1:])
            if G:
                refs = np.concatenate([g.refs.astype(np.int64) for g in self.groups])
                counts = np.concatenate([g.counts.astype(np.int64) for g in self.groups])
            else:
                refs = counts = np.empty(0, np.int64)
            starts = np.cumsum(counts) - counts
            starts -= np.repeat(starts[off[:-1][lens > 0]], lens[lens > 0])  # restart per group
            self._index = (refs, off, starts, counts)
        return self._index

    def plan(self, sorted_refs: I64, mint: int, maxt: int) -> list[PlanEntry]:
        """The groups :meth:`pieces` would decode, each with its wanted series (see
        :data:`PlanEntry`). Cheap, and valid after the lock is released (groups are
        immutable), so :func:`decode_plan` can run without it. The wanted series of all
        groups are found by one search, so a metric spread thinly over many groups costs
        a few slices per group here, not a round of numpy calls."""
        cands = np.asarray(self.candidates(sorted_refs, mint, maxt), np.int64)
        if len(cands) == 0:
            return []
        refs, off, starts, counts = self._ref_index()
        lens = off[cands + 1] - off[cands]
        # Only the candidate groups' refs are searched: a narrow query of a large head
        # does not pay for every group.
        at = np.arange(len(refs)) if len(cands) == len(self.groups) else ragged_arange(off[cands], lens)
        r = refs[at]
        pos = np.minimum(np.searchsorted(sorted_refs, r), len(sorted_refs) - 1)
        w = np.flatnonzero(sorted_refs[pos] == r)  # wanted, in candidate order
        local = np.zeros(len(cands) + 1, np.int64)
        np.cumsum(lens, out=local[1:])
        cut = np.searchsorted(w, local).tolist()  # each candidate's slice of w
        nwant = np.diff(cut)
        b = self.bounds()
        whole = ((b[cands, 0] >= mint) & (b[cands, 1] <= maxt) & (nwant == lens)).tolist()
        pos_w, starts_w, counts_w = pos[w], starts[at[w]], counts[at[w]]
        out: list[PlanEntry] = []
        for k in np.flatnonzero(nwant).tolist():
            x, y = cut[k], cut[k + 1]
            g = self.groups[int(cands[k])]
            out.append((g, pos_w[x:y], starts_w[x:y], counts_w[x:y], whole[k]))
        return out

    def series_in_range(self, sorted_refs: I64, mint: int, maxt: int) -> np.ndarray:
        """Which of ``sorted_refs`` have a cut sample in ``[mint, maxt]``: a group inside the
        range answers from its refs, only a group straddling an end decodes timestamps."""
        return self.series_in_range_later(sorted_refs, mint, maxt)()

    def series_in_range_later(self, sorted_refs: I64, mint: int, maxt: int) -> Callable[[], np.ndarray]:
        """:meth:`series_in_range` in two steps: this call picks the candidate groups
        (under the head lock); the function returned decodes, and may run without it."""
        groups = [self.groups[gi] for gi in self.candidates(sorted_refs, mint, maxt)]
        return lambda: _series_in_range(groups, sorted_refs, mint, maxt)

    def remove(self, sorted_refs: I64 | None, mint: int, maxt: int) -> I64:
        """Drop samples in ``[mint, maxt]`` of ``sorted_refs`` (None: of every series);
        groups left empty go, others are re-encoded. Returns the ref of each removed sample."""
        removed: list[I64] = []
        probe = np.array([MIN_TIME, MAX_TIME], np.int64) if sorted_refs is None else sorted_refs
        hit = set(self.candidates(probe, mint, maxt))
        if not hit:
            return np.empty(0, np.int64)
        kept: list[ChunkGroup] = []
        old = 0  # kept groups from before the young ones (order is kept)
        for gi, g in enumerate(self.groups):
            if gi == self._young:
                old = len(kept)
            if gi not in hit:
                kept.append(g)
                continue
            owner = np.repeat(g.refs, g.counts)
            if sorted_refs is None and mint <= g.mint and g.maxt <= maxt:
                removed.append(owner)  # all of it (a head truncation): no decoding
                self._forget([g])
                continue
            ts, v, st = self.decoded(g)
            drop = (ts >= mint) & (ts <= maxt)
            if sorted_refs is not None:
                i = np.minimum(np.searchsorted(sorted_refs, g.refs), len(sorted_refs) - 1)
                drop &= np.repeat(sorted_refs[i] == g.refs, g.counts)
            if not drop.any():
                kept.append(g)
                continue
            self._forget([g])
            removed.append(owner[drop])
            keep = ~drop
            if keep.any():
                left = np.bincount(np.repeat(np.arange(len(g.refs)), g.counts)[keep], minlength=len(g.refs))
                nz = left > 0
                kept.append(
                    make_group(g.refs[nz], left[nz], ts[keep], v[keep], None if st is None else st[keep])
                )
        if self._young >= len(self.groups):
            old = len(kept)
        self.groups = []
        self.num_samples = 0
        self.nbytes = 0
        self._series_chunks = 0
        self._bounds = None
        self._index = None
        for g in kept:
            self._append(g)
        self._young = old
        self._reset_young()
        return np.concatenate(removed) if removed else np.empty(0, np.int64)


def _series_in_range(groups: list[ChunkGroup], sorted_refs: I64, mint: int, maxt: int) -> np.ndarray:
    """:meth:`HeadChunks.series_in_range` over the candidate ``groups`` picked before."""
    out = np.zeros(len(sorted_refs), np.bool_)
    for g in groups:
        i = np.minimum(np.searchsorted(sorted_refs, g.refs), len(sorted_refs) - 1)
        want = sorted_refs[i] == g.refs
        if not want.any():
            continue
        if mint <= g.mint and g.maxt <= maxt:
            out[i[want]] = True
            continue
        counts = g.counts.astype(np.int64)
        ts = decode_ts(g.ts, counts)
        inside = (ts >= mint) & (ts <= maxt)
        hit = np.bincount(np.repeat(np.arange(len(counts)), counts)[inside], minlength=len(counts)) > 0
        out[i[want & hit]] = True
    return out


#: Up to this many wanted series in a group, each is cut with its own searchsorted and
#: the pieces of all such groups are joined into one, instead of a vectorised cut per group.
_FEW_RUNS = 16


def decode_plan(
    plan: list[PlanEntry],
    mint: int,
    maxt: int,
    decode: Callable[[ChunkGroup], tuple[I64, F64, I64 | None]] = ChunkGroup.decode,
) -> list[Piece]:
    """Decode the groups of a :meth:`HeadChunks.plan` (with ``decode``, e.g.
    :meth:`HeadChunks.decoded`), keeping the samples asked for.

    Only the wanted series are cut to the range, by a binary search of their own samples
    (a series' samples are contiguous and sorted in its group), so reading a few series
    or a short range costs nothing in the size of a group. A query for a handful of
    series per group (one metric of many targets) touches every group for a few runs:
    those runs are sliced whole and collected, then cut together into a single piece,
    so the cost per group is a few slices, not a dozen array operations."""
    out: list[Piece] = []
    few: list[tuple[I64, I64, I64, I64, F64, I64 | None]] = []  # groups of few runs, in order
    pending: set[int] = set()  # positions of the series in ``few``

    def flush() -> None:
        # Pieces keep plan order (oldest cut first) and hold each series once: a series
        # with runs in several of these groups gets one piece per repeat, in order.
        if not few:
            return
        pos = np.concatenate([f[0] for f in few])
        lens = np.concatenate([f[2] for f in few])
        runs = [(a, n, f) for f in few for a, n in zip(f[1].tolist(), f[2].tolist())]
        ts = np.concatenate([f[3][a : a + n] for a, n, f in runs])
        vals = np.concatenate([f[4][a : a + n] for a, n, f in runs])
        st = None
        if any(f[5] is not None for f in few):
            st = np.concatenate(
                [f[5][a : a + n] if f[5] is not None else np.zeros(n, np.int64) for a, n, f in runs]
            )
        few.clear()
        pending.clear()
        lo, hi = clip_runs(ts, np.cumsum(lens) - lens, lens, mint, maxt)
        n = hi - lo
        nz = np.flatnonzero(n > 0)
        if len(nz) == 0:
            return
        pos, lo, n = pos[nz], lo[nz], n[nz]
        repeat = occurrence(pos)
        for k in range(int(repeat.max()) + 1):
            sel = np.flatnonzero(repeat == k)
            out.append(_gather(pos[sel], lo[sel], n[sel], ts, vals, st))

    for g, pos, starts, counts, whole in plan:
        ts, v, st = decode(g)
        if not whole and len(pos) <= _FEW_RUNS:
            few.append((pos, starts, counts, ts, v, st))
            pending.update(pos.tolist())
            continue
        if pending and not pending.isdisjoint(pos.tolist()):
            flush()  # older runs of these series first, so merge_pieces need not sort
        if whole:
            out.append((pos, counts, ts, v, st))  # the whole group: no cutting
            continue
        lo_a, hi_a = clip_runs(ts, starts, counts, mint, maxt)
        lens = hi_a - lo_a
        nz = np.flatnonzero(lens > 0)
        if len(nz) == 0:
            continue
        out.append(_gather(pos[nz], lo_a[nz], lens[nz], ts, v, st))
    flush()
    return out


def _gather(pos: I64, lo: I64, n: I64, ts: I64, v: F64, st: I64 | None) -> Piece:
    """The samples ``[lo, lo + n)`` of each run, as the piece of the series at ``pos``."""
    idx = ragged_arange(lo, n)
    return (pos, n, ts[idx], v[idx], None if st is None else st[idx])


def merge_pieces(
    sorted_refs: I64, sorted_rank: I64, pieces: list[Piece], with_st: bool
) -> tuple[I64, I64, F64, I64 | None]:
    """Ragged (offsets, ts, values, st) of ``len(sorted_refs)`` output series from ``pieces``.

    Output series ``sorted_rank[i]`` is the series ``sorted_refs[i]``. Pieces come oldest
    first, so placing each series' runs one after another keeps time order; only where a
    run does not start after the run before it (out-of-order samples older than a cut
    chunk) are the series sorted, the first stored sample winning at equal times.
    """
    nseries = len(sorted_refs)
    counts = np.zeros(nseries, np.int64)
    for pos, lens, *_ in pieces:
        counts[sorted_rank[pos]] += lens  # positions are unique within a piece
    offsets = np.zeros(nseries + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    ts = np.empty(total, np.int64)
    vals = np.empty(total, np.float64)
    st = np.zeros(total, np.int64) if with_st else None
    cursor = offsets[:-1].copy()
    joins = []
    for pos, lens, pts, pv, pst in pieces:
        rk = sorted_rank[pos]
        d0 = cursor[rk]
        run_start = np.cumsum(lens) - lens
        dst = np.repeat(d0 - run_start, lens) + np.arange(len(pts), dtype=np.int64)
        ts[dst] = pts
        vals[dst] = pv
        if st is not None and pst is not None:
            st[dst] = pst
        cursor[rk] += lens
        joins.append(d0[d0 > offsets[rk]])  # runs placed after an earlier run
    if len(joins) > 1:
        j = np.concatenate(joins)
        if len(j) and np.any(ts[j - 1] >= ts[j]):
            seg = np.repeat(np.arange(nseries, dtype=np.int64), counts)
            return _sort_series(seg, ts, vals, st, nseries)
    return offsets, ts, vals, st


def _sort_series(
    seg: I64, ts: I64, vals: F64, st: I64 | None, nseries: int
) -> tuple[I64, I64, F64, I64 | None]:
    """Sort each series by time, keeping the first of repeated timestamps (rare path)."""
    order = np.lexsort((ts, seg))  # stable: earlier-stored samples first at equal times
    seg, ts = seg[order], ts[order]
    keep = np.ones(len(ts), np.bool_)
    keep[1:] = (ts[1:] != ts[:-1]) | (seg[1:] != seg[:-1])
    sel = order[keep]
    counts = np.bincount(seg[keep], minlength=nseries).astype(np.int64)
    offsets = np.zeros(nseries + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, ts[keep], vals[sel], None if st is None else st[sel]
