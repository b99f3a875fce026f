"""WAL framing, records, segments, corruption detection and repair."""

from __future__ import annotations

import os

import numpy as np
import pytest

from signalfire.errors import CorruptionError
from signalfire.labels import Labels
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.segment import WAL, list_segments, read_records, repair_segment, segment_name


def test_samples_roundtrip_is_bit_exact():
    refs = np.array([3, 1, 2], np.int64)
    ts = np.array([-5, 0, 2**62], np.int64)
    vals = np.array([np.nan, -0.0, 1e308])
    vals[0] = np.array([0x7FF0000000000002], np.uint64).view(np.float64)[0]
    rec = records.decode_samples(records.encode_samples(refs, ts, vals))
    assert rec.st is None
    np.testing.assert_array_equal(rec.refs, refs)
    np.testing.assert_array_equal(rec.ts, ts)
    assert rec.values.view(np.uint64).tolist() == vals.view(np.uint64).tolist()
    rec = records.decode_samples(records.encode_samples(refs, ts, vals, st=np.array([1, 0, 2], np.int64)))
    assert rec.st is not None and rec.st.tolist() == [1, 0, 2]


def test_series_and_commit_roundtrip():
    labels = [Labels.from_strings("__name__", "up", "job", 'ä\n"x'), Labels.from_strings("a", "b")]
    series = records.encode_series([7, 9], labels)
    refs, out, samples = records.decode_commit(
        records.encode_commit(series, records.encode_samples(np.array([7]), np.array([1]), np.array([2.0])))
    )
    assert refs == [7, 9] and out == labels and samples.values.tolist() == [2.0]


def test_tombstones_roundtrip():
    t = records.decode_tombstones(records.encode_tombstones(np.array([1, 5]), -10, 20))
    assert t.refs.tolist() == [1, 5] and (t.mint, t.maxt) == (-10, 20)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x01\x00", records.encode_samples(np.array([1]), np.array([1]), np.array([1.0]))[:-1]],
    ids=["empty", "short", "truncated"],
)
def test_bad_payloads_raise_decode_error(payload):
    with pytest.raises(records.RecordDecodeError):
        records.decode_samples(payload)


def _write(tmp_path, n, segment_size=1 << 20):
    w = WAL(str(tmp_path), segment_size, fsync="never")
    for i in range(n):
        w.log(records.REC_SAMPLES, records.encode_samples(np.array([i]), np.array([i]), np.array([float(i)])))
    w.close()
    return [r for s in list_segments(str(tmp_path)) for r in read_records(str(tmp_path / segment_name(s)), s)]


def test_segments_rotate_by_size_and_closed_segments_end_with_their_number(tmp_path):
    recs = _write(tmp_path, 20, segment_size=100)
    segs = list_segments(str(tmp_path))
    assert len(segs) > 1
    ends = [r for r in recs if r.type == records.REC_END]
    assert [(r.segment, records.decode_end(r.payload)) for r in ends] == [(s, s) for s in segs[:-1]]
    assert all(recs[i + 1].segment > r.segment for i, r in enumerate(recs[:-1]) if r.type == records.REC_END)
    samples = [r for r in recs if r.type == records.REC_SAMPLES]
    assert [records.decode_samples(r.payload).ts[0] for r in samples] == list(range(20))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:-3], "torn record"),
        (lambda b: b[:-40], "torn record"),
        (lambda b: b[:-30] + bytes([b[-30] ^ 0xFF]) + b[-29:], "checksum"),
        (lambda b: b + b"\x00" * 5, "torn record header"),
        (lambda b: b + b"\x00" * 12, "invalid record header"),
    ],
    ids=["torn-payload", "torn-header", "bitflip", "short-garbage", "zero-header"],
)
def test_corruption_names_file_and_offset_and_repair_drops_only_tail(tmp_path, damage, reason):
    _write(tmp_path, 10)
    path = str(tmp_path / "00000000")
    data = (tmp_path / "00000000").read_bytes()
    rec_size = len(data) // 10
    with open(path, "wb") as f:
        f.write(damage(data))
    with pytest.raises(CorruptionError) as ei:
        list(read_records(path))
    err = ei.value
    assert err.path == path and reason in err.reason
    assert err.offset % rec_size == 0 and err.offset >= len(data) - 2 * rec_size
    assert path in str(err) and str(err.offset) in str(err)
    repair_segment(str(tmp_path), err, last=True)
    good = list(read_records(path))
    assert len(good) == err.offset // rec_size
    assert [records.decode_samples(r.payload).ts[0] for r in good] == list(range(len(good)))


def test_repair_of_a_closed_segment_keeps_later_segments_and_seals_it(tmp_path):
    _write(tmp_path, 30, segment_size=150)
    segs = list_segments(str(tmp_path))
    assert len(segs) >= 3
    later = {s: (tmp_path / segment_name(s)).read_bytes() for s in segs[2:]}
    p = str(tmp_path / segment_name(segs[1]))
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 1)
    with pytest.raises(CorruptionError) as ei:
        list(read_records(p, segs[1]))
    size = os.path.getsize(p)
    assert repair_segment(str(tmp_path), ei.value, last=False) == size - ei.value.offset
    assert os.path.getsize(p) == ei.value.offset + 20  # the end record put back (12 + 8 bytes)
    assert list_segments(str(tmp_path)) == segs
    assert {s: (tmp_path / segment_name(s)).read_bytes() for s in segs[2:]} == later
    recs = list(read_records(p, segs[1]))
    assert recs[-1].type == records.REC_END and records.decode_end(recs[-1].payload) == segs[1]
