"""``signalfire tsdb list|analyze|dump|dump-openmetrics`` on blocks made with the library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signalfire.cli.main import main
from signalfire.labels import Labels
from signalfire.storage import series_set_from_lists
from signalfire.tsdb.block import write_block

T0 = 1_700_000_000_007  # off whole seconds, as scrapes are
TWO_H = 7_200_000


def _labels(name: str, **kv: str) -> Labels:
    return Labels.from_dict({"__name__": name, **kv})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two 2h blocks: 4 `up` series in the first, 3 `up` + 1 `load` in the second."""
    first = [_labels("up", job=j, instance=i) for j in ("a", "b") for i in ("x", "y")]
    second = [*first[:3], _labels("load", job="a", instance="x")]
    for k, series in enumerate((first, second)):
        ts = [T0 + k * TWO_H + np.arange(0, TWO_H - 7, 15_000) for _ in series]
        vs = [np.arange(len(t)) * 0.5 + n for n, t in enumerate(ts)]
        ss = series_set_from_lists(series, ts, vs)
        write_block(tmp_path, ss, min_time=T0 + k * TWO_H, max_time=T0 + (k + 1) * TWO_H)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_list(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "tsdb", "list", str(db))
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 3
    assert lines[0].split("  ")[0] == "BLOCK ULID"
    assert lines[0].endswith("NUM SERIES   SIZE")
    cols = lines[1].split()
    assert cols[1:7] == [str(T0), str(T0 + TWO_H), "2h0m0s", "1920", str(int(cols[5])), "4"]
    assert int(cols[7]) > 0


def test_list_human_readable(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "tsdb", "list", "-r", str(db))
    assert rc == 0
    assert "2023-11-14 22:13:20 +0000 UTC  2023-11-15 00:13:20 +0000 UTC  2h0m0s" in out
    assert out.splitlines()[1].endswith("B")


def test_list_missing_folder_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "tsdb", "list", str(tmp_path / "nope"))
    assert rc == 1 and "no such file or directory" in err


def test_analyze_last_block(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "tsdb", "analyze", "--limit", "2", str(db))
    assert rc == 0
    lines = out.splitlines()
    assert lines[1:6] == [
        "Duration: 2h0m0s",
        "Total Series: 4",
        "Label names: 3",
        "Postings (unique label pairs): 6",
        "Postings entries (total label pairs): 12",
    ]
    i = lines.index("Highest cardinality metric names:")
    assert lines[i + 1 : i + 3] == ["3 up", "1 load"]
    i = lines.index("Highest cardinality labels:")
    assert lines[i + 1 : i + 3] == ["2 __name__", "2 instance"]
    i = lines.index("Most common label pairs:")
    assert lines[i + 1] == "4 job=a" or lines[i + 1].startswith("3 ")


def test_analyze_named_block_with_match_and_extended(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, listing, _ = run(capsys, "tsdb", "list", str(db))
    first = listing.splitlines()[1].split()[0]
    rc, out, _ = run(capsys, "tsdb", "analyze", "--extended", "--match", 'up{job="b"}', str(db), first)
    assert rc == 0
    assert f"Block ID: {first}" in out
    assert 'Matcher: up{job="b"}' in out and "Matched series: 2" in out
    assert "samples per series (min/avg/max): 480/480/480" in out
    assert "chunks: " in out and "bytes per sample: " in out


def test_analyze_unknown_block(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "tsdb", "analyze", str(db), "01AAAAAAAAAAAAAAAAAAAAAAAA")
    assert rc == 1 and "not found" in err


def test_dump_merges_blocks_in_label_order(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "tsdb", "dump", str(db))
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 8 * 480
    assert lines[0] == f'{{__name__="load", instance="x", job="a"}} 3 {T0 + TWO_H}'
    assert lines[480] == f'{{__name__="up", instance="x", job="a"}} 0 {T0}'
    # The series present in both blocks continues into the second one.
    assert lines[480 + 480] == f'{{__name__="up", instance="x", job="a"}} 0 {T0 + TWO_H}'


def test_dump_time_range_and_matchers(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tsdb", "dump", "--min-time", str(T0 + 15_000), "--max-time", str(T0 + 30_000)]
    rc, out, _ = run(capsys, *argv, "--match", 'up{job="b"}', "--match", '{instance="y"}', str(db))
    assert rc == 0
    assert out.splitlines() == [
        f'{{__name__="up", instance="x", job="b"}} 2.5 {T0 + 15_000}',
        f'{{__name__="up", instance="x", job="b"}} 3 {T0 + 30_000}',
        f'{{__name__="up", instance="y", job="a"}} 1.5 {T0 + 15_000}',
        f'{{__name__="up", instance="y", job="a"}} 2 {T0 + 30_000}',
        f'{{__name__="up", instance="y", job="b"}} 3.5 {T0 + 15_000}',
        f'{{__name__="up", instance="y", job="b"}} 4 {T0 + 30_000}',
    ]


def test_dump_openmetrics(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "tsdb", "dump-openmetrics", "--max-time", str(T0), "--match", "up", str(db))
    assert rc == 0
    assert out.splitlines() == [
        'up{instance="x",job="a"} 0 1700000000.007',
        'up{instance="x",job="b"} 2 1700000000.007',
        'up{instance="y",job="a"} 1 1700000000.007',
        'up{instance="y",job="b"} 3 1700000000.007',
        "# EOF",
    ]


def test_dump_bad_selector(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "tsdb", "dump", "--match", "up{", str(db))
    assert rc == 1 and err


def test_dump_live_database_includes_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import signalfire

    with signalfire.open(tmp_path / "db") as db:
        db.append([{"__name__": "up", "job": "a"}], ts=np.array([T0, T0 + 15_000]), values=[1.0, 0.0])
    rc, out, _ = run(capsys, "tsdb", "dump", str(tmp_path / "db"))
    assert rc == 0
    assert out.splitlines() == [
        f'{{__name__="up", job="a"}} 1 {T0}',
        f'{{__name__="up", job="a"}} 0 {T0 + 15_000}',
    ]


def _tree(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


def test_dump_merges_blocks_and_head_without_touching_the_folder(
    db: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    import signalfire

    with signalfire.open(db) as live:  # the block fixture's folder, now with a head too
        live.append(
            [{"__name__": "up", "job": "a", "instance": "x"}], ts=np.array([T0 + 3 * TWO_H]), values=[7.0]
        )
    before = _tree(db)
    sandbox = tmp_path_factory.mktemp("sandbox")
    rc, out, _ = run(
        capsys,
        "tsdb",
        "dump",
        "--sandbox-dir-root",
        str(sandbox),
        "--match",
        'up{job="a",instance="x"}',
        str(db),
    )
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 2 * 480 + 1 and lines[-1].endswith(f" 7 {T0 + 3 * TWO_H}")
    assert _tree(db) == before
    assert list(sandbox.iterdir()) == []  # the sandbox is removed after the dump
