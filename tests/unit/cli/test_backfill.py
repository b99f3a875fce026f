"""``tsdb create-blocks-from openmetrics``: block planning and writing, without the parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signalfire.cli import backfill
from signalfire.cli.backfill import Samples, compatible_block_duration, parse_label_flags, plan_blocks
from signalfire.cli.main import main
from signalfire.errors import BadDataError
from signalfire.labels import Labels

H = 3_600_000


@pytest.mark.parametrize(
    ("max_ms", "want"),
    [
        (0, 2 * H),
        (H, 2 * H),
        (2 * H, 2 * H),
        (5 * H, 2 * H),
        (6 * H, 6 * H),
        (24 * H, 18 * H),
        (10**12, 2 * H * 3**9),
    ],
)
def test_compatible_block_duration(max_ms: int, want: int) -> None:
    assert compatible_block_duration(max_ms) == want


def test_label_flags() -> None:
    assert parse_label_flags(["a=b", "c=d=e", "x="]) == {"a": "b", "c": "d=e", "x": ""}
    with pytest.raises(BadDataError, match="expected KEY=VALUE got 'oops'"):
        parse_label_flags(["oops"])
    with pytest.raises(BadDataError, match="empty label name"):
        parse_label_flags(["=v"])


def test_body_needs_eof() -> None:
    assert backfill._body_end(b"a 1 1\n# EOF\n") == len(b"a 1 1\n")
    assert backfill._body_end(b"a 1 1\n# EOF\n\n\n") == len(b"a 1 1\n")
    assert backfill._body_end(b"# EOF") == 0
    for bad in (b"", b"\n", b"a 1 1\n", b"a 1 1\n# EOF x\n", b"a 1 1 # EOF\n", b"x# EOF\n"):
        with pytest.raises(BadDataError, match="does not end with # EOF"):
            backfill._body_end(bad)


def test_pieces_cut_whole_lines_before_metadata() -> None:
    body = b"".join(f"m{i} {i} {i}\n".encode() for i in range(50)) + b"# TYPE x gauge\nx 1 1\n"
    pieces = list(backfill._pieces(body + b"# EOF\n", len(body), size=64))
    assert b"".join(body[a:b] for a, b, _ in pieces) == body
    assert all(body[a:b].endswith(b"\n") for a, b, _ in pieces)
    assert any(body[a:b].startswith(b"# TYPE") for a, b, _ in pieces)
    for a, _, line in pieces:  # first_line is the 1-based line number of the piece's start
        assert body[:a].count(b"\n") + 1 == line


def samples(rows: list[tuple[int, int, float]], names: list[str]) -> Samples:
    ids, ts, vs = (np.array(c) for c in zip(*rows))
    labels = [Labels.from_dict({"__name__": n}) for n in names]
    return Samples(labels, ids.astype(np.int64), ts.astype(np.int64), vs.astype(np.float64))


def test_plan_blocks_sorts_windows_series_and_time() -> None:
    s = samples([(1, 2 * H + 5, 1.0), (0, 10, 2.0), (1, 5, 3.0), (0, 5, 4.0), (1, 10, 5.0)], ["b", "a"])
    blocks = plan_blocks(s, 2 * H)
    assert len(blocks) == 2
    first, second = blocks
    assert [ls.get("__name__") for ls in first.labels] == ["a", "b"]
    assert first.offsets.tolist() == [0, 2, 4]
    assert first.ts.tolist() == [5, 10, 5, 10]
    assert first.values.tolist() == [3.0, 5.0, 4.0, 2.0]
    assert second.ts.tolist() == [2 * H + 5] and [str(ls) for ls in second.labels] == ["a"]


def test_plan_blocks_duplicates() -> None:
    same = samples([(0, 5, 1.0), (0, 5, 1.0), (0, 6, 2.0)], ["a"])
    (block,) = plan_blocks(same, 2 * H)
    assert block.ts.tolist() == [5, 6]
    conflict = samples([(0, 5, 1.0), (0, 5, 1.5)], ["a"])
    with pytest.raises(BadDataError, match="duplicate sample for timestamp 5 of series a"):
        plan_blocks(conflict, 2 * H)


def test_write_blocks_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = samples([(0, t, float(t)) for t in range(1000, 5 * H, 60_000)], ["up"])
    paths = backfill.write_blocks(plan_blocks(s, 2 * H), tmp_path)
    assert len(paths) == 3
    assert main(["tsdb", "list", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    firsts = [int(s.ts[s.ts >= w].min()) for w in (0, 2 * H, 4 * H)]
    assert [int(r.split()[1]) for r in rows] == firsts
    assert [int(r.split()[2]) for r in rows] == [int(s.ts[s.ts < w].max()) + 1 for w in (2 * H, 4 * H, 6 * H)]
    assert sum(int(r.split()[4]) for r in rows) == len(s.ts)


# --------------------------------------------------------------------------- through the parser

OM = """# HELP reqs Requests.
# TYPE reqs counter
reqs_total{code="200"} 1 1700000000.5
reqs_total{code="200"} 3 1700000015.5
reqs_total{code="500"} 1 1700000015.5
# TYPE temp gauge
temp 21.5 1700007300.25
# EOF
"""


def backfill_cli(tmp_path: Path, text: str, *flags: str) -> tuple[int, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    om = tmp_path / "in.om"
    om.write_text(text, encoding="utf-8")
    out = tmp_path / "blocks"
    return main(["tsdb", "create-blocks-from", "openmetrics", *flags, str(om), str(out)]), out


def test_create_blocks_then_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = backfill_cli(tmp_path, OM)
    assert rc == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("BLOCK ULID") and len(printed) == 3  # header + two blocks
    assert main(["tsdb", "dump", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        '{__name__="reqs_total", code="200"} 1 1700000000500',
        '{__name__="reqs_total", code="200"} 3 1700000015500',
        '{__name__="reqs_total", code="500"} 1 1700000015500',
        '{__name__="temp"} 21.5 1700007300250',
    ]
    # The blocks are ordinary signalfire blocks: the library's block querier reads them.
    from signalfire.cli._blocks import list_blocks
    from signalfire.labels import Matcher
    from signalfire.tsdb.block import Block

    first = list_blocks(out)[0]
    with Block.open(first.path) as block:
        q = block.querier(first.min_time, first.max_time - 1)
        ss = q.select([Matcher.equal("code", "200")])
        assert ss.ts.tolist() == [1700000000500, 1700000015500]
        q.close()


def test_backfilled_blocks_answer_promql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import signalfire

    rc, out = backfill_cli(tmp_path, OM, "-q")
    assert rc == 0
    with signalfire.open(out) as db:
        ss = db.select('reqs_total{code="200"}')
        assert ss.ts.tolist() == [1700000000500, 1700000015500]
        res = db.query("sum(reqs_total)", 1700000020)
        assert res.values.tolist() == [[4.0]]


def test_create_blocks_quiet_labels_and_human(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = backfill_cli(tmp_path, OM, "-q", "--label", "env=dev", "--label", "code=x")
    # --label code=x makes the two reqs_total series one; at 1700000015.5 they disagree.
    assert rc == 1 and "duplicate sample for timestamp 1700000015500" in capsys.readouterr().err
    rc, out = backfill_cli(tmp_path / "q", OM, "-q", "--label", "env=dev")
    assert rc == 0 and capsys.readouterr().out == ""
    assert main(["tsdb", "dump", "--match", '{env="dev"}', str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '{__name__="reqs_total", code="200", env="dev"} 1 1700000000500'
    assert len(lines) == 4
    rc, _ = backfill_cli(tmp_path / "h", OM, "-r", "--max-block-duration", "24h")
    rows = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(rows) == 2 and "+0000 UTC" in rows[1]  # one 18h block


@pytest.mark.parametrize(
    ("text", "err"),
    [
        ("m 1\n# EOF\n", "expected timestamp for series m, got none"),
        ("m 1 1\n", "does not end with # EOF"),
        ("m 1 1\nm 2 1\n# EOF\n", "duplicate sample for timestamp 1000"),
        ("m 1 1\nm{ 1 1\n# EOF\n", "2:"),
    ],
    ids=["no-timestamp", "no-eof", "conflict", "parse-error-line"],
)
def test_create_blocks_errors(
    text: str, err: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _ = backfill_cli(tmp_path, text)
    assert rc == 1
    assert err in capsys.readouterr().err


def test_parse_error_line_counts_across_pieces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill, "PIECE_BYTES", 32)
    text = "".join(f"m{i} {i} {i}\n" for i in range(40)) + "bad{ 1 1\n# EOF\n"
    rc, _ = backfill_cli(tmp_path, text)
    assert rc == 1 and "41:" in capsys.readouterr().err


def test_two_spellings_of_one_series_are_one_series(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill, "PIECE_BYTES", 24)  # and across pieces, through the label cache
    text = 'm{a="1",b="2"} 1 1\nm{b="2",a="1"} 2 2\nm{a="1",b="2"} 3 3\n# EOF\n'
    rc, out = backfill_cli(tmp_path, text, "-q")
    assert rc == 0
    assert main(["tsdb", "dump", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        '{__name__="m", a="1", b="2"} 1 1000',
        '{__name__="m", a="1", b="2"} 2 2000',
        '{__name__="m", a="1", b="2"} 3 3000',
    ]
