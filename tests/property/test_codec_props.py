"""Property tests: every chunk codec gives back bit-identical columns (tsdb/chunks)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire._types import STALE_NAN_BITS
from signalfire.tsdb.chunks import codec
from signalfire.tsdb.chunks.chunk_file import (
    FILE_HEADER,
    FILE_MAGIC,
    FILE_VERSION,
    decode_record,
    encode_ts_chunk,
    encode_value_chunk,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_HDR = FILE_HEADER.pack(FILE_MAGIC, FILE_VERSION, b"")

special_bits = st.sampled_from(
    [STALE_NAN_BITS, 0x7FF8000000000000, 0xFFF8000000000123, 0x8000000000000000, 0x7FF0000000000000,
     0xFFF0000000000000, 0, 1, 0x7FEFFFFFFFFFFFFF]
)  # fmt: skip
any_bits = st.integers(0, 2**64 - 1)


@st.composite
def series_values(draw: st.DrawFn) -> np.ndarray:
    """One series' values in one of the shapes real data takes, plus sprinkled specials."""
    n = draw(st.integers(0, 60))
    kind = draw(st.sampled_from(["counter", "decimal", "float", "bits", "const", "big"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "counter":
        v = np.cumsum(rng.poisson(draw(st.sampled_from([0.5, 5, 300, 1e6])), n)).astype(np.float64)
    elif kind == "decimal":
        v = np.round(np.cumsum(rng.uniform(0, 10, n)), draw(st.integers(0, 7)))
    elif kind == "float":
        v = rng.normal(0, draw(st.sampled_from([1e-300, 1.0, 1e300])), n)
    elif kind == "bits":
        v = np.array(draw(st.lists(any_bits, min_size=n, max_size=n)), np.uint64).view(np.float64)
    elif kind == "const":
        v = np.full(n, draw(st.floats(allow_nan=False)))
    else:
        v = rng.choice([2.0**53, 2.0**62, 2.0**63, -(2.0**63), 1e19, -4096.0], n)
    if n:
        for _ in range(draw(st.integers(0, 3))):
            v[draw(st.integers(0, n - 1))] = np.array([draw(special_bits)], np.uint64).view(np.float64)[0]
    return np.asarray(v, np.float64)


@SETTINGS
@given(st.lists(series_values(), max_size=8), st.booleans())
def test_value_chunk_roundtrip(series: list[np.ndarray], with_st: bool) -> None:
    counts = np.array([len(s) for s in series], np.int64)
    values = np.concatenate(series) if series else np.empty(0, np.float64)
    st_col = np.arange(len(values), dtype=np.int64) * 7 - 3 if with_st else None
    dec = decode_record(_HDR + encode_value_chunk(counts, values, st_col), len(_HDR), "mem")
    assert dec.counts.tolist() == counts.tolist()
    assert dec.values is not None
    assert np.array_equal(dec.values.view(np.uint64), values.view(np.uint64))
    if with_st and np.any(st_col):
        assert dec.st is not None and dec.st.tolist() == st_col.tolist()  # type: ignore[union-attr]


@st.composite
def ts_columns(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(0, 50))
    kind = draw(st.sampled_from(["regular", "jitter", "any"]))
    if kind == "any":
        return np.array(sorted(set(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=n)))), np.int64)
    start = draw(st.integers(-(2**40), 2**45))
    step = draw(st.sampled_from([1, 1000, 15_000, 60_000]))
    t = start + step * np.arange(n, dtype=np.int64)
    if kind == "jitter":
        t = t + np.random.default_rng(draw(st.integers(0, 99))).integers(-4, 5, n)
    return t


@SETTINGS
@given(st.lists(ts_columns(), max_size=8))
def test_ts_chunk_roundtrip(cols: list[np.ndarray]) -> None:
    counts = np.array([len(c) for c in cols], np.int64)
    ts = np.concatenate(cols) if cols else np.empty(0, np.int64)
    dec = decode_record(_HDR + encode_ts_chunk(counts, ts), len(_HDR), "mem")
    assert dec.ts is not None and dec.ts.tolist() == ts.tolist()


@SETTINGS
@given(st.lists(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30), max_size=6))
def test_int_segments_roundtrip_any_int64(segs: list[list[int]]) -> None:
    counts = np.array([len(s) for s in segs], np.int64)
    x = np.array([v for s in segs for v in s], np.int64)
    params, z = codec.encode_int_segments(x, counts)
    assert codec.decode_int_segments(params, counts, z).tolist() == x.tolist()


@SETTINGS
@given(st.lists(any_bits, max_size=200))
def test_random_bit_patterns_single_series(bits: list[int]) -> None:
    v = np.array(bits, np.uint64).view(np.float64)
    counts = np.array([len(v)], np.int64)
    parts = codec.encode_float_segments(v, counts)
    back = codec.decode_float_segments(parts, counts)  # type: ignore[arg-type]
    assert np.array_equal(back.view(np.uint64), v.view(np.uint64))
