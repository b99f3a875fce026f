"""Column codecs and chunk records (tsdb/chunks/codec.py, chunk_file.py)."""

from __future__ import annotations

import numpy as np
import pytest

from signalfire._types import STALE_NAN_BITS
from signalfire.errors import CorruptionError
from signalfire.tsdb.chunks import codec
from signalfire.tsdb.chunks.chunk_file import (
    FILE_HEADER,
    FILE_MAGIC,
    FILE_VERSION,
    decode_record,
    encode_ts_chunk,
    encode_value_chunk,
)

SPECIAL_BITS = [
    STALE_NAN_BITS,
    0x7FF8000000000000,  # ordinary NaN
    0xFFF8000000000001,  # negative NaN with payload
    0x7FF0000000000001,  # signalling NaN
    0x8000000000000000,  # -0.0
    0x7FF0000000000000,  # +Inf
    0xFFF0000000000000,  # -Inf
    0x0000000000000001,  # smallest subnormal
    0x7FEFFFFFFFFFFFFF,  # largest finite
]


def _f(bits: list[int]) -> np.ndarray:
    return np.array(bits, np.uint64).view(np.float64)


def _roundtrip_values(counts: list[int], values: np.ndarray, st: np.ndarray | None = None) -> None:
    rec = encode_value_chunk(np.array(counts, np.int64), values, st)
    dec = decode_record(FILE_HEADER.pack(FILE_MAGIC, FILE_VERSION, b"") + rec, FILE_HEADER.size, "mem")
    assert dec.counts.tolist() == counts
    assert dec.values is not None
    assert np.array_equal(dec.values.view(np.uint64), values.view(np.uint64))
    if st is not None and np.any(st):
        assert dec.st is not None and dec.st.tolist() == st.tolist()
    else:
        assert dec.st is None


def test_special_values_survive_in_integer_series() -> None:
    # Mostly integers, so the series stays in integer mode with exceptions.
    v = np.arange(100, dtype=np.float64)
    v[[3, 50, 99]] = _f([STALE_NAN_BITS, 0x8000000000000000, 0x7FF0000000000000])
    _roundtrip_values([100], v)


def test_special_values_only() -> None:
    v = _f(SPECIAL_BITS * 3)
    _roundtrip_values([len(v)], v)
    _roundtrip_values([1] * len(v), v)


@pytest.mark.parametrize(
    "values",
    [
        np.cumsum(np.full(500, 0.01)),  # not exact decimals: XOR path
        np.round(np.cumsum(np.full(500, 0.37)), 2),  # 2 decimals
        np.cumsum(np.full(500, 4096.0)) * 1000,  # gcd 4096000
        np.full(500, 1.0),
        np.linspace(-1e300, 1e300, 500),
        np.array([2.0**62, -(2.0**62), 2.0**63, -(2.0**63), 9.2e18, 1e19, -1e19] * 10),
        np.array([0.1, 0.2, 0.3, 1e-6, 1.5e-6, 123456.789012]),
        np.cumsum(np.random.default_rng(2).uniform(0, 1e-3, 500)),  # raw bits as integers
        np.random.default_rng(3).normal(size=500),  # sign changes
    ],
    ids=["xor", "decimals", "gcd", "const", "huge", "int64-edges", "small-decimals", "raw-bits", "normal"],
)
def test_value_kinds_roundtrip(values: np.ndarray) -> None:
    _roundtrip_values([len(values)], values)
    half = len(values) // 2
    _roundtrip_values([half, 0, len(values) - half], values)


def test_empty_and_single_sample_series() -> None:
    _roundtrip_values([], np.empty(0, np.float64))
    _roundtrip_values([0, 1, 0, 2, 1], np.array([1.5, 2.0, 3.0, -0.0]))


def test_start_timestamps_column() -> None:
    v = np.arange(10, dtype=np.float64)
    _roundtrip_values([4, 6], v, np.zeros(10, np.int64))
    _roundtrip_values([4, 6], v, np.array([0, 0, 5, 5, 1, 2, 3, 2**62, -5, 0], np.int64))


def test_ts_chunk_roundtrip_extremes() -> None:
    ts = np.array([-(2**63), -1, 0, 2**63 - 1, 5, 6, 7, 1_700_000_000_000, 1_700_000_015_000], np.int64)
    rec = encode_ts_chunk(np.array([4, 3, 2], np.int64), ts)
    dec = decode_record(FILE_HEADER.pack(FILE_MAGIC, FILE_VERSION, b"") + rec, FILE_HEADER.size, "mem")
    assert dec.ts is not None and dec.ts.tolist() == ts.tolist()


def test_integer_predictors_pick_the_cheaper_mode() -> None:
    # A counter with noisy increments prefers delta-with-bias; a steadily growing
    # rate prefers delta-of-delta; regular timestamps leave nothing but zeros.
    rng = np.random.default_rng(0)
    counter = np.cumsum(rng.poisson(300, 1000)).astype(np.int64)
    accel = 3 * np.arange(1000, dtype=np.int64) ** 2
    regular = 1_700_000_000_000 + 15_000 * np.arange(1000, dtype=np.int64)
    x = np.concatenate([counter, accel, regular])
    counts = np.array([1000, 1000, 1000], np.int64)
    params, z = codec.encode_int_segments(x, counts)
    assert params["mode"].tolist()[:2] == [codec.MODE_DELTA, codec.MODE_DOD]
    assert int(z[999:1998].max()) <= 4 and int(z[1998:].max()) == 0
    back = codec.decode_int_segments(params, counts, z)
    assert back.tolist() == x.tolist()


def test_cross_series_chains() -> None:
    # Cumulative histogram buckets: each bucket's increments are the previous bucket's
    # plus a few more observations, so they chain on the series before them.
    rng = np.random.default_rng(5)
    bins = rng.poisson(50, (6, 400))
    buckets = np.cumsum(np.cumsum(bins, axis=0), axis=1).astype(np.int64)
    other = np.cumsum(rng.poisson(3, 399)).astype(np.int64)  # different length: no cross
    x = np.concatenate([buckets.reshape(-1), other])
    counts = np.array([400] * 6 + [399], np.int64)
    params, z = codec.encode_int_segments(x, counts)
    assert params["mode"][0] != codec.MODE_CROSS and params["mode"][6] != codec.MODE_CROSS
    assert (params["mode"][2:6] == codec.MODE_CROSS).all()
    assert codec.decode_int_segments(params, counts, z).tolist() == x.tolist()
    with pytest.raises(ValueError, match="first series"):
        bad = dict(params, mode=np.full(7, codec.MODE_CROSS, np.uint8))
        codec.decode_int_segments(bad, counts, z)


def test_decimal_scale() -> None:
    v = np.array([1.0, 2.5, 3.25, 0.125, np.nan, 7.0])
    k, scale, exc = codec.decimal_scale(v, np.array([2, 2, 2], np.int64))
    assert scale.tolist() == [1, 3, 0]
    assert exc.tolist() == [False, False, False, False, True, False]
    assert k[:4].tolist() == [10, 25, 3250, 125]


def test_float_forms_are_chosen_per_series() -> None:
    rng = np.random.default_rng(4)
    slow = 1e5 + np.cumsum(rng.uniform(0, 1e-3, 300))  # a histogram _sum: raw bits
    # Only the low mantissa bits vary at random: XOR keeps them, deltas add a bit.
    noisy = (np.uint64(0x3FF0000000000000) | rng.integers(0, 256, 300).astype(np.uint64)).view(np.float64)
    counter = np.cumsum(rng.poisson(4, 300)).astype(np.float64)  # decimal integers
    counts = np.array([300, 300, 300], np.int64)
    p = codec.encode_float_segments(np.concatenate([slow, noisy, counter]), counts)
    assert p["is_int"].tolist() == [1, 0, 1]
    assert p["scale"].tolist() == [codec.RAW_BITS, 0]


def test_bitplanes_keep_series_byte_aligned() -> None:
    runs = np.array([3, 0, 9, 8], np.int64)
    z = np.arange(20, dtype=np.uint64) * 37
    nbits, b = codec.to_bitplanes(z, runs)
    assert nbits == int(z.max()).bit_length()
    assert len(b) == nbits * (8 + 0 + 16 + 8) // 8
    assert codec.from_bitplanes(nbits, runs, b).tolist() == z.tolist()
    assert codec.to_bitplanes(np.zeros(4, np.uint64), np.array([4])) == (0, b"")


def test_zigzag_and_planes() -> None:
    x = np.array([0, -1, 1, -(2**63), 2**63 - 1], np.int64)
    z = codec.zigzag(x)
    assert z[:3].tolist() == [0, 1, 2]
    assert codec.unzigzag(z).tolist() == x.tolist()
    n, b = codec.to_planes(np.array([1, 2, 300], np.uint64))
    assert n == 2 and len(b) == 6
    assert codec.from_planes(n, 3, b).tolist() == [1, 2, 300]
    assert codec.to_planes(np.zeros(5, np.uint64)) == (0, b"")


def test_corrupt_record_is_reported_with_offset() -> None:
    rec = bytearray(encode_value_chunk(np.array([50], np.int64), np.arange(50, dtype=np.float64)))
    rec[-3] ^= 1
    buf = FILE_HEADER.pack(FILE_MAGIC, FILE_VERSION, b"") + bytes(rec)
    with pytest.raises(CorruptionError) as err:
        decode_record(buf, FILE_HEADER.size, "some/file")
    assert err.value.path == "some/file" and err.value.offset == FILE_HEADER.size
    with pytest.raises(CorruptionError, match="truncated"):
        decode_record(buf[:-4], FILE_HEADER.size, "some/file")
    with pytest.raises(CorruptionError, match="beyond"):
        decode_record(buf, len(buf), "some/file")
