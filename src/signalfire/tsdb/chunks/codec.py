"""Column codecs: many series' samples encoded at once, losslessly, with numpy.

A *column* here is the ragged concatenation of several series' samples (``counts[m]``
samples each, in order). Every transform below works on the whole column with
segment-aware numpy operations; no Python loop touches single samples.

Integer columns (timestamps, start timestamps, and values that are exact decimals):
  per series choose the cheaper of two predictors, both after dividing by the GCD of
  the series' deltas (multiples of 4096 bytes become small numbers):

  * ``MODE_DELTA``: residual = delta - bias, bias = the series' mean delta (a counter
    that grows by ~300 per scrape leaves residuals of its noise, not of its rate);
  * ``MODE_DOD``: residual = delta-of-delta (smooth series, e.g. regular timestamps).

  Residuals are zigzagged and written as byte planes (all low bytes, then all second
  bytes, ...), trailing all-zero planes dropped.

Float columns: a value is stored as a decimal integer ``k / 10**e`` when that
reproduces its float64 bit pattern exactly (counters, bytes, "2 decimal" gauges); the
few samples that do not (the staleness NaN, -0.0, ±Inf) are kept verbatim as
*exceptions*. Series where that fails too often fall back to XOR with the previous
sample's bits (Gorilla's idea without the bit packing), again as byte planes.

Everything is lossless: every float64 bit pattern (NaN payloads included) comes back
identical. The byte stream is later compressed with a general codec (see
:mod:`signalfire.tsdb.chunks.chunk_file`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from signalfire._types import F64, I64, U64
from signalfire.util.ragged import ragged_arange, segment_ids

MODE_DELTA = 0
MODE_DOD = 1
MODE_CROSS = 2

#: Largest decimal exponent tried (values with up to 6 decimals become integers).
MAX_SCALE = 6
#: ``scale`` of a series stored as its raw float64 bit patterns read as int64.
RAW_BITS = 255
#: A series stays in integer mode while at most this share of its samples are exceptions.
MAX_EXCEPTION_SHARE = 0.125

_POW10: F64 = 10.0 ** np.arange(MAX_SCALE + 1, dtype=np.float64)
_I64_LIMIT = float(2**62)


# ---------------------------------------------------------------- segment helpers


def seg_starts(counts: I64) -> I64:
    """Where each segment of ``counts[k]`` elements starts (exclusive cumulative sum)."""
    starts = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def seg_cumsum(x: I64, counts: I64) -> I64:
    """Cumulative sum restarting at every segment (int64, wrapping modulo 2**64)."""
    cs = np.cumsum(x.view(np.uint64), dtype=np.uint64)
    starts = seg_starts(counts)
    base = np.zeros(len(counts), np.uint64)
    nz = starts > 0
    base[nz] = cs[starts[nz] - 1]
    out: U64 = cs - np.repeat(base, counts)
    return out.view(np.int64)


def seg_xor_accumulate(x: U64, counts: I64) -> U64:
    """Prefix XOR restarting at every segment."""
    acc = np.bitwise_xor.accumulate(x) if len(x) else x.copy()
    starts = seg_starts(counts)
    base = np.zeros(len(counts), np.uint64)
    nz = starts > 0
    base[nz] = acc[starts[nz] - 1]
    out: U64 = np.bitwise_xor(acc, np.repeat(base, counts), dtype=np.uint64)
    return out


def _seg_gcd(x: I64, counts: I64) -> I64:
    """GCD of each segment's absolute values; 1 for empty or all-zero segments."""
    out = np.ones(len(counts), np.int64)
    keep = counts > 0
    if not keep.any():
        return out
    a = np.abs(x)
    a[a < 0] = 1  # abs(INT64_MIN) stays negative: forces gcd 1
    g = np.gcd.reduceat(a, seg_starts(counts)[keep])
    g[g == 0] = 1
    out[keep] = g
    return out


def zigzag(x: I64) -> U64:
    """Signed to unsigned so that small magnitudes give small numbers."""
    out: U64 = ((x << 1) ^ (x >> 63)).view(np.uint64)
    return out


def unzigzag(z: U64) -> I64:
    out: I64 = ((z >> np.uint64(1)) ^ (np.uint64(0) - (z & np.uint64(1)))).view(np.int64)
    return out


# ---------------------------------------------------------------- byte planes


def to_planes(z: U64) -> tuple[int, bytes]:
    """(number of planes kept, plane-major bytes); planes above the largest value are dropped."""
    if len(z) == 0:
        return 0, b""
    top = int(z.max())
    nplanes = (top.bit_length() + 7) // 8
    if nplanes == 0:
        return 0, b""
    b = z.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)[:, :nplanes]
    return nplanes, np.ascontiguousarray(b.T).tobytes()


def from_planes(nplanes: int, n: int, buf: bytes | memoryview) -> U64:
    out = np.zeros((n, 8), np.uint8)
    if nplanes:
        planes = np.frombuffer(buf, np.uint8, count=nplanes * n).reshape(nplanes, n)
        out[:, :nplanes] = planes.T
    res: U64 = out.view("<u8").reshape(n).astype(np.uint64, copy=False)
    return res


def _padded_positions(runs: I64) -> tuple[I64, int]:
    """Where each value of ``runs``-long runs lands when every run is padded to a multiple of 8."""
    padded = (runs + 7) // 8 * 8
    starts = np.zeros(len(runs), np.int64)
    np.cumsum(padded[:-1], out=starts[1:])
    return ragged_arange(starts, runs), int(padded.sum())


def to_bitplanes(z: U64, runs: I64) -> tuple[int, bytes]:
    """(number of bit planes, bytes): bit b of every value, plane by plane.

    Each series' run of values starts on a byte boundary (runs are padded to a multiple
    of 8 with zeros), so series with equal residuals give equal bytes that the general
    codec matches. Small residuals leave the high planes out entirely, and a plane that
    is mostly zeros compresses to a fraction of a bit per value.
    """
    if len(z) == 0:
        return 0, b""
    nbits = int(z.max()).bit_length()
    if nbits == 0:
        return 0, b""
    pos, total = _padded_positions(runs)
    zp = np.zeros(total, np.uint64)
    zp[pos] = z
    out = []
    for b in range(nbits):  # loop over bit planes (<= 64), each a whole-array pass
        bits = ((zp >> np.uint64(b)) & np.uint64(1)).astype(np.uint8)
        out.append(np.packbits(bits, bitorder="little").tobytes())
    return nbits, b"".join(out)


_ACC_TYPES = ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32), (np.uint64, 64))


def from_bitplanes(nbits: int, runs: I64, buf: bytes | memoryview) -> U64:
    """Inverse of :func:`to_bitplanes`.

    Planes are OR-ed into the narrowest unsigned type that holds ``nbits`` (most
    residuals need one or two bytes), and the run padding is dropped with a mask built
    from the few padding positions at each run's end.
    """
    runs = np.asarray(runs, np.int64)
    padded = (runs + 7) // 8 * 8
    total = int(padded.sum())
    plane_bytes = total // 8
    raw = np.frombuffer(buf, np.uint8, count=nbits * plane_bytes)
    acc_type = next(t for t, bits in _ACC_TYPES if nbits <= bits)
    zp: npt.NDArray[np.unsignedinteger[Any]] = np.zeros(total, acc_type)
    for b in range(nbits):  # loop over bit planes, each a whole-array pass
        bits = np.unpackbits(raw[b * plane_bytes : (b + 1) * plane_bytes], bitorder="little")
        if acc_type is np.uint8:
            bits <<= np.uint8(b)
            zp |= bits
        else:
            zp |= np.left_shift(bits.astype(acc_type), b, dtype=acc_type)
    pad = padded - runs
    if total and pad.any():
        keep = np.ones(total, np.bool_)
        ends = np.cumsum(padded)
        for k in range(1, 8):  # at most 7 padding values per run
            keep[ends[pad >= k] - k] = False
        zp = zp[keep]
    out: U64 = zp.astype(np.uint64, copy=False)
    return out


# ---------------------------------------------------------------- integer segments


def _fit(d: I64, dcounts: I64) -> tuple[I64, tuple[I64, I64], tuple[I64, I64]]:
    """Fit both own-history predictors to per-series deltas ``d``.

    Returns (gcd, (delta bias, residuals), (dod bias, residuals)), residuals in GCD units.
    """
    m = len(dcounts)
    gcd = _seg_gcd(d, dcounts)
    d = d // np.repeat(gcd, dcounts)
    # Delta mode: subtract the rounded mean delta of the series.
    seg = segment_ids(dcounts)
    sums = np.bincount(seg, weights=d.astype(np.float64), minlength=m)
    mean = np.clip(np.rint(sums / np.maximum(dcounts, 1)), -_I64_LIMIT, _I64_LIMIT)
    bias_delta = mean.astype(np.int64)
    r_delta = d - np.repeat(bias_delta, dcounts)
    # Dod mode: the first delta is the bias; then differences of deltas.
    dstarts = seg_starts(dcounts)
    dhas = dcounts > 0
    bias_dod = np.zeros(m, np.int64)
    bias_dod[dhas] = d[dstarts[dhas]]
    r_dod = np.empty(len(d), np.int64)
    if len(d):
        r_dod[0] = 0
        np.subtract(d[1:], d[:-1], out=r_dod[1:])
    r_dod[dstarts[dhas]] = 0
    return gcd, (bias_delta, r_delta), (bias_dod, r_dod)


def encode_int_segments(x: I64, counts: I64) -> tuple[dict[str, np.ndarray], U64]:
    """Predict each segment of ``x`` and return (per-series params, zigzag residuals).

    The residual stream has one entry for every sample that is not the first of its
    series. Params: ``mode`` (uint8), ``first``, ``gcd``, ``bias`` (int64 each).
    Per series the cheapest of three predictors wins: delta minus mean delta, delta
    of delta, or (``MODE_CROSS``, for a series as long as the one before it) the
    difference to the previous series' deltas, minus its mean: buckets of one
    histogram, or a ``_count`` beside its ``+Inf`` bucket, move together.
    """
    m = len(counts)
    x = np.ascontiguousarray(x, np.int64)
    n = len(x)
    starts = seg_starts(counts)
    has = counts > 0
    first = np.zeros(m, np.int64)
    first[has] = x[starts[has]]
    # Deltas at every non-first position (wrapping arithmetic keeps this exact).
    is_first = np.zeros(n, np.bool_)
    is_first[starts[has]] = True
    d_full = np.empty(n, np.int64)
    if n:
        d_full[0] = 0
        np.subtract(x[1:], x[:-1], out=d_full[1:])
    d_full[is_first] = 0
    dcounts = np.maximum(counts - 1, 0)
    d = d_full[~is_first]
    # Cross candidates: the previous series has as many samples, so deltas align.
    same = np.zeros(m, np.bool_)
    same[1:] = (counts[1:] == counts[:-1]) & (counts[1:] >= 2)
    shift = np.repeat(np.where(same, counts, 0), counts)
    c = (d_full - d_full[np.arange(n, dtype=np.int64) - shift])[~is_first]
    g_own, (b_delta, r_delta), (b_dod, r_dod) = _fit(d, dcounts)
    g_x, (b_x, r_x), _ = _fit(c, dcounts)
    # Pick per series by the total bit length of its residuals.
    seg = segment_ids(dcounts)
    costs = np.stack(
        [np.bincount(seg, weights=_bitlen(zigzag(r)), minlength=m) for r in (r_delta, r_dod, r_x)]
    ).astype(np.float64)
    costs[2, ~same] = np.inf
    mode = np.argmin(costs, axis=0).astype(np.uint8)  # ties go to the simpler predictor
    gcd = np.where(mode == MODE_CROSS, g_x, g_own)
    bias = np.choose(mode, [b_delta, b_dod, b_x])
    r = np.choose(np.repeat(mode, dcounts), [r_delta, r_dod, r_x])
    params: dict[str, np.ndarray] = {"mode": mode, "first": first, "gcd": gcd, "bias": bias}
    return params, zigzag(r)


def decode_int_segments(params: dict[str, np.ndarray], counts: I64, z: U64) -> I64:
    """Inverse of :func:`encode_int_segments`."""
    r = unzigzag(z)
    dcounts = np.maximum(counts - 1, 0)
    mode = params["mode"]
    use_dod = np.repeat(mode == MODE_DOD, dcounts)
    # Dod residuals accumulate into deltas; delta residuals are deltas already.
    acc = seg_cumsum(r, dcounts)
    d = np.where(use_dod, acc, r) + np.repeat(params["bias"].astype(np.int64), dcounts)
    d = d * np.repeat(params["gcd"].astype(np.int64), dcounts)
    if np.any(mode == MODE_CROSS):
        d = _resolve_cross(d, dcounts, mode == MODE_CROSS)
    # Re-insert the first value of each series, then accumulate deltas into values.
    return seg_cumsum(_with_firsts(params["first"], d, counts, np.int64), counts)


def _with_firsts(first: np.ndarray, rest: np.ndarray, counts: I64, dtype: type[np.integer]) -> np.ndarray:
    """A column of ``counts`` segments: each non-empty segment starts with its entry of
    ``first`` (one per segment), and ``rest`` fills the other places in order."""
    out = np.empty(int(counts.sum()), dtype)
    has = counts > 0
    is_first = np.zeros(len(out), np.bool_)
    is_first[seg_starts(counts)[has]] = True
    out[is_first] = first[has]
    out[~is_first] = rest
    return out


def _resolve_cross(d: I64, dcounts: I64, cross: np.ndarray) -> I64:
    """Turn cross residual rows into deltas: row i = row i-1 + its differences.

    A chain is an own-predicted series followed by cross series of the same length,
    so its rows stack into a matrix whose cumulative sum down the rows gives every
    member's deltas. Loops over distinct row lengths only (usually one).
    """
    m = len(dcounts)
    if m and cross[0]:
        raise ValueError("the first series of a chunk cannot be cross-predicted")
    idx = np.arange(m)
    head = np.maximum.accumulate(np.where(~cross, idx, 0))
    in_chain = cross.copy()
    in_chain[head[cross]] = True
    if np.any(dcounts[cross] != dcounts[head[cross]]):
        raise ValueError("cross-predicted series differs in length from its chain")
    dstarts = seg_starts(dcounts)
    out = d.copy()
    for L in np.unique(dcounts[in_chain]).tolist():  # loop over row lengths, each array work
        rows = np.flatnonzero(in_chain & (dcounts == L))
        if L == 0:
            continue
        pos = dstarts[rows][:, None] + np.arange(L)[None, :]
        mat = d[pos].view(np.uint64)
        cs = np.cumsum(mat, axis=0, dtype=np.uint64)
        # Subtract the running sum just before each row's chain head (wrapping).
        head_row = np.searchsorted(rows, head[rows])
        base = np.zeros((len(rows), L), np.uint64)
        nz = head_row > 0
        base[nz] = cs[head_row[nz] - 1]
        out[pos] = (cs - base).view(np.int64)
    return out


def _bitlen(z: U64) -> F64:
    """Approximate bit length of each value (cost model only)."""
    return np.log2(z.astype(np.float64) + 1.0)


# ---------------------------------------------------------------- float segments


def decimal_scale(values: F64, counts: I64) -> tuple[I64, I64, np.ndarray]:
    """Find, per series, the decimal exponent that turns its values into integers.

    Returns (ints, per-series scale, exception mask). ``ints[i] / 10**scale`` reproduces
    ``values[i]``'s bits exactly wherever the exception mask is False.
    """
    m = len(counts)
    v = np.ascontiguousarray(values, np.float64)
    vbits = v.view(np.uint64)
    seg = segment_ids(counts)
    n = len(v)
    # Smallest exponent at which each sample round-trips (MAX_SCALE + 1 = never).
    # Most samples settle at e=0 (counters, bytes), so each pass only retries the rest.
    best = np.full(n, MAX_SCALE + 1, np.int64)
    todo = np.arange(n)
    with np.errstate(all="ignore"):
        for e in range(MAX_SCALE + 1):
            ok = _roundtrips(v[todo], vbits[todo], _POW10[e])
            best[todo[ok]] = e
            todo = todo[~ok]
            if len(todo) == 0:
                break
    finite = best <= MAX_SCALE
    scale = np.zeros(m, np.int64)
    if n:
        np.maximum.at(scale, seg[finite], best[finite])
    # Re-check every sample at its series' exponent; failures are exceptions.
    p: F64 = _POW10[np.repeat(scale, counts)]
    with np.errstate(all="ignore"):
        ok = _roundtrips(v, vbits, p)
        k = np.where(ok, np.rint(v * p), 0.0).astype(np.int64)
    return k, scale, ~ok


def _roundtrips(v: F64, vbits: U64, p: F64 | float) -> np.ndarray:
    """Samples where ``rint(v * p) / p`` gives back the same bits (and fits int64)."""
    k = np.rint(v * p)
    fits = np.abs(k) < _I64_LIMIT  # False for NaN and ±Inf
    kk = np.where(fits, k, 0.0).astype(np.int64).astype(np.float64)
    back = kk / p
    result: np.ndarray = fits & (back.view(np.uint64) == vbits)
    return result


def _xor_residuals(bits: U64, counts: I64) -> tuple[U64, U64]:
    """(first bits per series, XOR of every later sample with its predecessor)."""
    starts = seg_starts(counts)
    has = counts > 0
    first = np.zeros(len(counts), np.uint64)
    first[has] = bits[starts[has]]
    x = np.empty(len(bits), np.uint64)
    if len(bits):
        x[0] = 0
        np.bitwise_xor(bits[1:], bits[:-1], out=x[1:])
    is_first = np.zeros(len(bits), np.bool_)
    is_first[starts[has]] = True
    return first, x[~is_first]


def encode_float_segments(values: F64, counts: I64) -> dict[str, np.ndarray]:
    """Encode a float64 column; returns the named arrays the chunk writer stores.

    Each series takes one of three forms: decimal integers (``scale`` 0..6, with
    exceptions), its raw bit patterns read as int64 (``scale`` RAW_BITS; slowly moving
    floats such as a histogram's ``_sum`` leave smaller deltas than XORs), or XOR.
    The last two are chosen per series by the bit length of their residuals.
    """
    m = len(counts)
    v = np.ascontiguousarray(values, np.float64)
    bits = v.view(np.uint64)
    k, scale, exc = decimal_scale(v, counts)
    seg = segment_ids(counts)
    n_exc = np.bincount(seg[exc], minlength=m)
    is_dec = n_exc <= MAX_EXCEPTION_SHARE * counts
    # The other series: raw bits as integers, or XOR, whichever leaves fewer bits.
    rest = np.flatnonzero(~is_dec)
    use_raw = np.zeros(m, np.bool_)
    if len(rest):
        rcounts = counts[rest]
        rbits = bits[~np.repeat(is_dec, counts)]
        _, zi = encode_int_segments(rbits.view(np.int64), rcounts)
        _, xr = _xor_residuals(rbits, rcounts)
        rseg = segment_ids(np.maximum(rcounts - 1, 0))
        cost_raw = np.bincount(rseg, weights=_bitlen(zi), minlength=len(rest))
        cost_xor = np.bincount(rseg, weights=_bitlen(xr), minlength=len(rest))
        use_raw[rest] = cost_raw < cost_xor
    is_int = is_dec | use_raw
    per_sample_dec = np.repeat(is_dec, counts)
    per_sample_int = np.repeat(is_int, counts)
    # Decimal series: exceptions take the previous good integer so they cost ~nothing.
    exc_int = exc & per_sample_dec
    if exc_int.any():
        idx = np.where(exc_int, -1, np.arange(len(k)))
        np.maximum.accumulate(idx, out=idx)
        k = np.where(idx >= 0, k[np.maximum(idx, 0)], 0)
    k = np.where(per_sample_dec, k, bits.view(np.int64))
    scale = np.where(use_raw, RAW_BITS, scale)
    iparams, iz = encode_int_segments(k[per_sample_int], counts[is_int])
    xfirst, x = _xor_residuals(bits[~per_sample_int], counts[~is_int])
    exc_pos = np.flatnonzero(exc_int).astype(np.int64)
    return {
        "is_int": is_int.astype(np.uint8),
        "scale": scale[is_int].astype(np.uint8),
        "imode": iparams["mode"],
        "ifirst": iparams["first"],
        "igcd": iparams["gcd"],
        "ibias": iparams["bias"],
        "iresid": iz,
        "xfirst": xfirst,
        "xresid": x,
        "exc_pos": exc_pos,
        "exc_bits": bits[exc_pos],
    }


def decode_float_segments(parts: dict[str, np.ndarray], counts: I64) -> F64:
    """Inverse of :func:`encode_float_segments`."""
    is_int = parts["is_int"].astype(np.bool_)
    per_sample_int = np.repeat(is_int, counts)
    out = np.empty(int(counts.sum()), np.uint64)
    icounts = counts[is_int]
    iparams = {"mode": parts["imode"], "first": parts["ifirst"], "gcd": parts["igcd"], "bias": parts["ibias"]}
    ints = decode_int_segments(iparams, icounts, parts["iresid"])
    scales = np.repeat(parts["scale"].astype(np.int64), icounts)
    raw = scales == RAW_BITS
    with np.errstate(all="ignore"):
        as_float = ints.astype(np.float64) / _POW10[np.where(raw, 0, scales)]
    out[per_sample_int] = np.where(raw, ints.view(np.uint64), as_float.view(np.uint64))
    # XOR series: put the first bits back, then prefix-XOR within each series.
    fcounts = counts[~is_int]
    x = _with_firsts(parts["xfirst"], parts["xresid"], fcounts, np.uint64)
    out[~per_sample_int] = seg_xor_accumulate(x, fcounts)
    out[parts["exc_pos"]] = parts["exc_bits"]
    res: F64 = out.view(np.float64)
    return res
