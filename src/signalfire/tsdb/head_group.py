"""A cut chunk group of the head: its record and its column encodings.

A group holds the cut samples of up to ``head_chunks.GROUP_SERIES`` series: one
compressed value record and one compressed timestamp column (and start timestamps,
when any was set), plus what finding it needs in memory: its sorted series refs, the
sample count of each, and its time range.

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
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from signalfire._types import F64, I64
from signalfire.tsdb.chunks import codec
from signalfire.tsdb.chunks.codec import seg_cumsum, seg_starts, seg_xor_accumulate
from signalfire.util.ragged import ragged_arange, segment_ids

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


_PLANES = struct.Struct("<BI")  # byte planes kept, their length in bytes
_EXCEPTIONS = struct.Struct("<I")
#: ``scale`` of a series stored as XOR of its bit patterns.
XOR = 255
#: A series stays decimal while at most this share of its samples are exceptions.
MAX_EXCEPTION_SHARE = 0.125
#: Samples per series that ``_decimal`` tries before testing a whole series.
_PROBE = 4
_POW10 = 10.0 ** np.arange(codec.MAX_SCALE + 1, dtype=np.float64)


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
    seg = segment_ids(counts)
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
    d = seg_cumsum(dd, counts)
    out: I64 = (seg_cumsum(d, counts).view(np.uint64) + base[seg].view(np.uint64)).view(np.int64)
    return out


def _decimal(v: F64, counts: I64, starts: I64, seg: I64) -> tuple[I64, I64, np.ndarray]:
    """``codec.decimal_scale``, tried in full only on series whose first few samples include
    a decimal: random-looking floats (which fail every exponent, the slow case) are ruled
    out from ``_PROBE`` samples each."""
    probe = np.minimum(counts, _PROBE)
    pidx = ragged_arange(starts, probe)
    _, _, pexc = codec.decimal_scale(v[pidx], probe)
    hopeless = np.bincount(segment_ids(probe)[pexc], minlength=len(counts)) == probe
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
    seg = segment_ids(counts)
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
        dseg = segment_ids(dc)
        k = seg_cumsum(codec.unzigzag(z[dec]), dc)
        with np.errstate(all="ignore"):
            f = k.astype(np.float64) / _POW10[scales[is_dec][dseg]]
        out[dec] = f.view(np.uint64)
    if not is_dec.all():
        xc = counts[~is_dec]
        out[~dec] = seg_xor_accumulate(z[~dec], xc)
    (ne,) = _EXCEPTIONS.unpack_from(mv, pos)
    if ne:
        e = mv[pos + _EXCEPTIONS.size :]
        where = np.cumsum(np.frombuffer(e[: 4 * ne], "<u4").astype(np.int64))
        out[where] = np.frombuffer(e[4 * ne : 12 * ne], "<u8")
    res: F64 = out.view(np.float64)
    return res


@dataclass(slots=True)
class ChunkGroup:
    """Up to ``head_chunks.GROUP_SERIES`` series' cut samples. ``refs`` sorted, one run per ref."""

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
