"""Every way a WAL file can be missing, empty, short or out of sequence, one row each.

A real DB is written (a checkpoint and eight segments after it), closed and damaged. Each
row says what open must do: refuse with a CorruptionError naming the file (and leave the
directory as it was), or repair, and then hold exactly what a plain replay of the
surviving records holds (nothing acknowledged outside the damage is lost, nothing is
invented) while its counters and log lines say what was dropped.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from reference.wal_replay import OPTS, Key, WALFiles, build, dump, expect
from signalfire.errors import CorruptionError
from signalfire.labels import Labels
from signalfire.tsdb import open_db
from signalfire.tsdb.wal import records
from signalfire.tsdb.wal.checkpoint import checkpoint_name
from signalfire.tsdb.wal.segment import segment_name


@dataclass(frozen=True)
class Refused:
    file: str  # relative to the WAL directory
    reason: str


@dataclass(frozen=True)
class Repaired:
    file: str
    lost: frozenset[Key] = field(default_factory=frozenset)
    unknown: bool = False  # the loss leaves later samples without their series record


@dataclass(frozen=True)
class Clean:
    log: str  # a line that must be logged
    lost: frozenset[Key] = frozenset()


Outcome = Refused | Repaired | Clean
Damage = Callable[[Path, WALFiles], Outcome]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, WALFiles]:
    path = tmp_path_factory.mktemp("wal-damage") / "db"
    want = build(str(path))
    files = WALFiles.read(str(path / "wal"))
    assert expect(files, set()).dump == want  # the twin agrees on the undamaged WAL
    assert len(files.segments) >= 6
    return path, want, files


def _mid(f: WALFiles) -> str:
    return segment_name(f.segments[len(f.segments) // 2])


def _truncate(p: Path, size: int) -> None:
    with open(p, "r+b") as fh:
        fh.truncate(size)


def _flip(p: Path, offset: int) -> None:
    data = bytearray(p.read_bytes())
    data[offset] ^= 0x5A
    p.write_bytes(bytes(data))


def _delete_mid(w: Path, f: WALFiles) -> Outcome:
    os.remove(w / _mid(f))
    return Refused(_mid(f), "not sequential")


def _delete_first(w: Path, f: WALFiles) -> Outcome:
    os.remove(w / segment_name(f.segments[0]))
    return Refused(segment_name(f.segments[0]), "missing")


def _delete_all_segments(w: Path, f: WALFiles) -> Outcome:
    for s in f.segments:
        os.remove(w / segment_name(s))
    return Refused(segment_name(f.segments[0]), "followed by no segment")


def _delete_checkpoint(w: Path, f: WALFiles) -> Outcome:
    shutil.rmtree(w / checkpoint_name(f.checkpoint))
    return Refused(checkpoint_name(f.checkpoint), "without a checkpoint")


def _empty_checkpoint_dir(w: Path, f: WALFiles) -> Outcome:
    os.remove(w / f.checkpoint_file)
    return Refused(f.checkpoint_file, "empty checkpoint directory")


def _empty_checkpoint_file(w: Path, f: WALFiles) -> Outcome:
    _truncate(w / f.checkpoint_file, 0)
    return Refused(f.checkpoint_file, "no end record")


def _torn_checkpoint(w: Path, f: WALFiles) -> Outcome:
    r = f.recs[f.checkpoint_file][1]
    _truncate(w / f.checkpoint_file, (r.key[1] + r.end) // 2)
    return Refused(f.checkpoint_file, "torn record")


def _checkpoint_cut_at_a_record(w: Path, f: WALFiles) -> Outcome:
    _truncate(w / f.checkpoint_file, f.recs[f.checkpoint_file][-1].key[1])  # its end record goes
    return Refused(f.checkpoint_file, "no end record")


def _checkpoint_bitflip(w: Path, f: WALFiles) -> Outcome:
    _flip(w / f.checkpoint_file, f.recs[f.checkpoint_file][0].key[1] + 20)
    return Refused(f.checkpoint_file, "checksum")


def _segment_renamed_foreign(w: Path, f: WALFiles) -> Outcome:
    os.rename(w / _mid(f), w / (_mid(f) + ".bak"))
    return Refused(_mid(f) + ".bak", "unexpected entry")


def _segment_renamed_short(w: Path, f: WALFiles) -> Outcome:
    last = f.segments[-1]
    os.rename(w / segment_name(last), w / str(last))
    return Refused(str(last), "unexpected entry")


def _stray_file(w: Path, f: WALFiles) -> Outcome:
    (w / "notes.txt").write_text("x")
    return Refused("notes.txt", "unexpected entry")


def _last_renamed_beyond(w: Path, f: WALFiles) -> Outcome:
    last = f.segments[-1]
    os.rename(w / segment_name(last), w / segment_name(last + 2))
    return Refused(segment_name(last), "not sequential")


def _swapped(w: Path, f: WALFiles) -> Outcome:
    a, b = (segment_name(s) for s in f.segments[2:4])
    os.rename(w / a, w / "x")
    os.rename(w / b, w / a)
    os.rename(w / "x", w / b)
    return Refused(a, "out of sequence")


def _empty_mid(w: Path, f: WALFiles) -> Outcome:
    _truncate(w / _mid(f), 0)
    return Repaired(_mid(f), frozenset(f.keys(_mid(f))), unknown=True)


def _torn_mid(w: Path, f: WALFiles) -> Outcome:
    r = f.recs[_mid(f)][1]
    _truncate(w / _mid(f), r.key[1] + 30)
    return Repaired(_mid(f), frozenset(f.keys(_mid(f), r.key[1])), unknown=True)


def _mid_cut_at_a_record(w: Path, f: WALFiles) -> Outcome:
    r = f.recs[_mid(f)][-2]  # the last commit and the end record go
    _truncate(w / _mid(f), r.key[1])
    return Repaired(_mid(f), frozenset(f.keys(_mid(f), r.key[1])), unknown=True)


def _mid_end_record_cut(w: Path, f: WALFiles) -> Outcome:
    _truncate(w / _mid(f), f.recs[_mid(f)][-1].key[1])  # only the end record goes: no sample
    return Repaired(_mid(f))


def _mid_shorter_than_a_header(w: Path, f: WALFiles) -> Outcome:
    _truncate(w / _mid(f), 5)
    return Repaired(_mid(f), frozenset(f.keys(_mid(f))), unknown=True)


def _mid_bitflip(w: Path, f: WALFiles) -> Outcome:
    r = f.recs[_mid(f)][2]
    _flip(w / _mid(f), r.key[1] + 40)
    return Repaired(_mid(f), frozenset(f.keys(_mid(f), r.key[1])), unknown=True)


def _first_emptied(w: Path, f: WALFiles) -> Outcome:
    name = segment_name(f.segments[0])
    _truncate(w / name, 0)
    return Repaired(name, frozenset(f.keys(name)), unknown=True)


def _torn_last(w: Path, f: WALFiles) -> Outcome:
    name = segment_name(f.segments[-1])
    r = f.recs[name][-1]
    _truncate(w / name, r.end - 3)
    return Repaired(name, frozenset({r.key}))


def _last_bitflip(w: Path, f: WALFiles) -> Outcome:
    name = segment_name(f.segments[-1])
    r = f.recs[name][1]
    _flip(w / name, r.key[1] + 2)  # the zero padding of its header
    return Repaired(name, frozenset(f.keys(name, r.key[1])))


def _last_deleted(w: Path, f: WALFiles) -> Outcome:
    # The one before it is sealed, so it is known that a segment followed.
    name = segment_name(f.segments[-1])
    os.remove(w / name)
    return Repaired(name, frozenset(f.keys(name)))


def _last_two_deleted(w: Path, f: WALFiles) -> Outcome:
    os.remove(w / segment_name(f.segments[-1]))
    os.remove(w / segment_name(f.segments[-2]))
    lost = f.keys(segment_name(f.segments[-1])) | f.keys(segment_name(f.segments[-2]))
    return Repaired(segment_name(f.segments[-2]), frozenset(lost))


def _leftover_tmp(w: Path, f: WALFiles) -> Outcome:
    shutil.copytree(w / checkpoint_name(f.checkpoint), w / (checkpoint_name(f.segments[3]) + ".tmp"))
    return Clean(f"removed {w / checkpoint_name(f.segments[3])}.tmp")


def _last_emptied(w: Path, f: WALFiles) -> Outcome:
    # Not detectable, by design: a newest segment that lost whole records at its end
    # reads like a log that ended there, as after a crash (Prometheus has the same limit).
    # Everything before it must still be there.
    name = segment_name(f.segments[-1])
    _truncate(w / name, 0)
    return Clean("", frozenset(f.keys(name)))


CASES: dict[str, Damage] = {
    "middle segment deleted": _delete_mid,
    "first segment after the checkpoint deleted": _delete_first,
    "every segment after the checkpoint deleted": _delete_all_segments,
    "checkpoint deleted": _delete_checkpoint,
    "checkpoint directory empty": _empty_checkpoint_dir,
    "checkpoint file 0 bytes": _empty_checkpoint_file,
    "checkpoint file torn": _torn_checkpoint,
    "checkpoint file cut at a record boundary": _checkpoint_cut_at_a_record,
    "checkpoint bit flip": _checkpoint_bitflip,
    "segment renamed to a foreign name": _segment_renamed_foreign,
    "segment renamed without its zeros": _segment_renamed_short,
    "stray file": _stray_file,
    "newest segment renumbered past a gap": _last_renamed_beyond,
    "two segments swapped": _swapped,
    "middle segment 0 bytes": _empty_mid,
    "middle segment torn": _torn_mid,
    "middle segment cut at a record boundary": _mid_cut_at_a_record,
    "middle segment lost only its end record": _mid_end_record_cut,
    "middle segment shorter than a record header": _mid_shorter_than_a_header,
    "middle segment bit flip": _mid_bitflip,
    "first segment after the checkpoint 0 bytes": _first_emptied,
    "newest segment torn": _torn_last,
    "newest segment bit flip": _last_bitflip,
    "newest segment deleted": _last_deleted,
    "newest two segments deleted": _last_two_deleted,
    "leftover checkpoint tmp": _leftover_tmp,
    "newest segment 0 bytes (undetectable)": _last_emptied,
}


def _series(i: str) -> Labels:
    return Labels.from_strings("__name__", "m", "i", i)


def _listing(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", CASES.values(), ids=CASES.keys())
def test_wal_damage_is_refused_or_repaired_and_reported(pristine, tmp_path, caplog, damage):
    src, _, files = pristine
    path = tmp_path / "db"
    shutil.copytree(src, path)
    wal = path / "wal"
    outcome = damage(wal, files)
    before = _listing(wal)
    caplog.set_level(logging.INFO, logger="signalfire.tsdb.head_wal")

    if isinstance(outcome, Refused):
        for repair in (True, False):
            with pytest.raises(CorruptionError) as ei:
                open_db(path, OPTS, repair=repair)
            assert ei.value.path == str(wal / outcome.file)
            assert outcome.reason in ei.value.reason and str(wal / outcome.file) in str(ei.value)
        assert _listing(wal) == before  # refused before touching anything
        return

    if isinstance(outcome, Repaired):
        with pytest.raises(CorruptionError) as ei:
            open_db(path, OPTS, repair=False)
        assert ei.value.path == str(wal / outcome.file)

    exp = expect(files, set(outcome.lost))
    with open_db(path, OPTS) as db:
        assert dump(db) == exp.dump  # exactly what survived: nothing else lost, nothing invented
        rs = db.replay_stats
        m = {d.name: db.metrics.sample_value(d.name) for d in db.metrics.describe()}
        assert rs.unknown_refs == exp.unknown_samples == m["signalfire_tsdb_wal_replay_unknown_refs_total"]
        assert rs.unknown_series == exp.unknown_series == m["signalfire_tsdb_wal_replay_unknown_series_total"]
        logs = [r.getMessage() for r in caplog.records]
        if isinstance(outcome, Clean):
            assert not rs.repaired and m["signalfire_tsdb_wal_corruptions_total"] == 0
            assert exp.unknown_samples == 0
            assert not outcome.log or any(outcome.log in line for line in logs), logs
            return
        assert [e.path for e in rs.repaired] == [str(wal / outcome.file)]
        assert m["signalfire_tsdb_wal_corruptions_total"] == 1
        assert (
            m["signalfire_tsdb_wal_repair_dropped_bytes_total"]
            == rs.bytes_dropped
            == (len(before.get(outcome.file, b"")) - rs.repaired[0].offset)
        )
        assert any(str(wal / outcome.file) in line and "dropped" in line for line in logs), logs
        assert (exp.unknown_samples > 0) == outcome.unknown
        if outcome.unknown:
            assert any(
                f"dropped {exp.unknown_samples} samples of {exp.unknown_series} series" in line
                and f"t={exp.unknown_mint}..{exp.unknown_maxt}" in line
                for line in logs
            ), logs
        # The reported range covers every sample lost, whether it was in the damaged part
        # or left without its series; the newest segment's loss is open-ended.
        lost = exp.lost_samples + ([exp.unknown_mint, exp.unknown_maxt] if exp.unknown_samples else [])
        if lost and outcome.file not in [segment_name(s) for s in files.segments[-2:]]:
            assert m["signalfire_tsdb_wal_replay_lost_min_time"] <= min(lost)
            assert m["signalfire_tsdb_wal_replay_lost_max_time"] >= max(lost)
        want_after = dump(db)
        # Writes go on and a second open finds nothing new to repair.
        with db.appender() as app:
            app.append_batch(app.refs([_series("0")]), 10**9, np.array([1.0]))
    with open_db(path, OPTS) as db:
        assert not db.replay_stats.repaired
        got = dump(db)
        assert {k: v for k, v in got.items() if k != "0"} == {k: v for k, v in want_after.items() if k != "0"}
        assert got["0"][0][-1] == 10**9


def test_an_empty_head_checkpoint_is_not_damage(tmp_path):
    path = tmp_path / "db"
    with open_db(path, OPTS) as db:
        with db.appender() as app:
            app.append_batch(app.refs([_series("x")]), 1000, np.array([1.0]))
        db.truncate_head(2000)  # the head is empty: the checkpoint holds only its end record
        files = WALFiles.read(str(path / "wal"))
        assert [r.type for r in files.recs[files.checkpoint_file]] == [records.REC_END]
        with db.appender() as app:
            app.append_batch(app.refs([_series("x")]), 3000, np.array([2.0]))
    with open_db(path, OPTS) as db:
        assert not db.replay_stats.repaired
        assert dump(db) == {"x": ([3000], [int(np.float64(2.0).view(np.uint64))])}
