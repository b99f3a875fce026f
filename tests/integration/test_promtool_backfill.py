"""Backfill one OpenMetrics file with Debian's promtool and with signalfire; the dumps must match.

``promtool tsdb dump`` of Prometheus's blocks and ``signalfire tsdb dump`` of ours print the
same series and samples, line for line, and ``tsdb list`` shows the same block ranges,
sample and series counts (chunk counts and sizes differ: the codecs do).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from signalfire.cli.main import main

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SAMPLE = Path(__file__).resolve().parents[2] / "src" / "signalfire" / "data" / "sample.om"
T0 = 1_700_000_000  # seconds; 2023-11-14 22:13:20 UTC


def edge_cases() -> str:
    """Metadata, escapes, special floats, exponents, and one series across three 2h windows."""
    lines = ["# HELP jobs Jobs done.", "# TYPE jobs counter"]
    for k in range(12):  # every 40 minutes for 8 hours: several block windows
        t = T0 + 40 * 60 * k
        lines.append(f'jobs_total{{queue="q\\"1\\\\",env="prod"}} {k * 1.5e6} {t}.{k * 37 % 1000:03d}')
        lines.append(f'jobs_created{{queue="q\\"1\\\\",env="prod"}} {T0 - 3600} {t}.{k * 37 % 1000:03d}')
    lines += ["# TYPE weird gauge"]
    specials = ["NaN", "+Inf", "-Inf", "1e-07", "123456789012345678", "0.1", "-0", "3.14159"]
    for k, v in enumerate(specials):
        lines.append(f'weird{{path="/a\\nb",name="ünï"}} {v} {T0 + 15 * k}.5')
    lines += ["# TYPE lat histogram"]
    for k in range(3):
        t = f"{T0 + 60 * k}.250"
        for le, n in (("0.1", 1 + k), ("1.0", 3 + 2 * k), ("+Inf", 4 + 3 * k)):
            lines.append(f'lat_bucket{{le="{le}"}} {n} {t}')
        lines += [f"lat_count {4 + 3 * k} {t}", f"lat_sum {0.5 * (k + 1)} {t}"]
    lines.append("plain_no_metadata 42 1700003600.001")
    return "\n".join(lines) + "\n# EOF\n"


def promtool_dump(om: Path, out: Path, *flags: str) -> tuple[list[str], list[str]]:
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", *flags, str(om), str(out)],
        check=True,
        capture_output=True,
    )
    (out / "wal").mkdir(exist_ok=True)  # promtool 2.42's dump insists on a wal/ folder
    dump = subprocess.run([PROMTOOL, "tsdb", "dump", str(out)], check=True, capture_output=True, text=True)
    listing = subprocess.run([PROMTOOL, "tsdb", "list", str(out)], check=True, capture_output=True, text=True)
    return dump.stdout.splitlines(), listing.stdout.splitlines()[1:]


def signalfire_dump(
    om: Path, out: Path, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[list[str], list[str]]:
    assert main(["tsdb", "create-blocks-from", "openmetrics", *flags, str(om), str(out)]) == 0
    capsys.readouterr()
    assert main(["tsdb", "dump", str(out)]) == 0
    dump = capsys.readouterr().out.splitlines()
    assert main(["tsdb", "list", str(out)]) == 0
    return dump, capsys.readouterr().out.splitlines()[1:]


def ranges(listing: list[str]) -> list[tuple[str, ...]]:
    """MIN TIME, MAX TIME, DURATION, NUM SAMPLES and NUM SERIES of each block, by min time."""
    return sorted((c[1], c[2], c[3], c[4], c[6]) for c in (line.split() for line in listing))


@pytest.mark.parametrize(
    ("name", "flags"),
    [("sample", ()), ("edge", ()), ("edge", ("--max-block-duration=6h",))],
    ids=["bundled-sample", "edge-cases", "edge-cases-6h-blocks"],
)
def test_same_dump_as_promtool(
    name: str, flags: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    om = tmp_path / "in.om"
    if name == "sample":
        shutil.copy(SAMPLE, om)
    else:
        om.write_text(edge_cases(), encoding="utf-8")
    want, want_blocks = promtool_dump(om, tmp_path / "prom", *flags)
    got, got_blocks = signalfire_dump(om, tmp_path / "sf", capsys, *flags)
    assert len(got) == len(want) > 0
    assert got == want
    assert ranges(got_blocks) == ranges(want_blocks)


def test_edge_cases_span_several_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    om = tmp_path / "in.om"
    om.write_text(edge_cases(), encoding="utf-8")
    _, blocks = signalfire_dump(om, tmp_path / "sf", capsys)
    windows = {(T0 * 1000 + 2_400_000 * k) // 7_200_000 for k in range(12)}
    assert len(blocks) == len(windows) == 4
    for line in blocks:  # each block stays inside one 2h-aligned window
        mint, maxt = int(line.split()[1]), int(line.split()[2])
        assert mint // 7_200_000 == (maxt - 1) // 7_200_000


def test_move_data_to_prometheus_with_dump_openmetrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our blocks -> ``signalfire tsdb dump-openmetrics`` -> promtool backfill: same samples."""
    om = tmp_path / "in.om"
    om.write_text(edge_cases(), encoding="utf-8")
    ours, _ = signalfire_dump(om, tmp_path / "sf", capsys)
    assert main(["tsdb", "dump-openmetrics", str(tmp_path / "sf")]) == 0
    exported = tmp_path / "export.om"
    exported.write_text(capsys.readouterr().out, encoding="utf-8")
    theirs, _ = promtool_dump(exported, tmp_path / "prom")
    assert theirs == ours


def test_prometheus_blocks_get_a_way_forward(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    om = tmp_path / "in.om"
    shutil.copy(SAMPLE, om)
    promtool_dump(om, tmp_path / "prom")
    assert main(["tsdb", "list", str(tmp_path / "prom")]) == 1
    assert "this is a Prometheus block" in capsys.readouterr().err
